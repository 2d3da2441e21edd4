"""An AccessPolicy's own pass: what it reports as covered and in conflict, and the one
status write it sends (against the fake API server, tests/support/fake_kube.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from deskfleet.controllers import events, status
from deskfleet.controllers.policies import PolicySnapshot, conflicts, reconcile_policy
from deskfleet.controllers.process import ProcessState
from deskfleet.policy.enforcement import valid_policies
from deskfleet.policy.selection import LabelGroups
from deskfleet.settings import Settings

from ..support.fake_kube import FakeKube

NOW = "2026-12-03T08:00:00Z"
UIDS = itertools.count()  # a parsed policy is kept by uid and generation
APPS = LabelGroups([("ehr", {"tier": "clinical"}), ("pacs", {"tier": "clinical"}),
                    ("mail", {"tier": "office"})])


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "now_rfc3339", lambda: NOW)
    monkeypatch.setattr(events, "now_rfc3339", lambda: NOW)


def policy(name: str, *, action: str = "allow", priority: int = 100, tier: str = "clinical",
           groups: tuple[str, ...] = ("nurses",), mode: str = "enforce") -> dict[str, Any]:
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
            "metadata": {"name": name, "namespace": "ward", "uid": f"uid-{next(UIDS)}",
                         "generation": 1},
            "spec": {"action": action, "priority": priority, "mode": mode,
                     "subjects": {"groups": list(groups)},
                     "apps": {"selector": {"matchLabels": {"tier": tier}}}}}


def clashes(mine: dict[str, Any], *others: dict[str, Any]) -> list[str]:
    policies = valid_policies([mine, *others])
    me = next(p for p in policies if p.name == mine["metadata"]["name"])
    return conflicts(me, policies, APPS)


def test_a_deny_of_the_same_priority_over_shared_apps_and_subjects_conflicts() -> None:
    assert clashes(policy("open"), policy("shut", action="deny"),
                   policy("shut-too", action="deny", groups=("nurses", "porters"))) == [
        "shut", "shut-too"]
    assert clashes(policy("shut", action="deny"), policy("open")) == ["open"]


@pytest.mark.parametrize("other", [
    policy("shut", action="deny", priority=200),  # another priority: the order is clear
    policy("also-open"),  # the same action
    policy("shut", action="deny", tier="office"),  # no app in common
    policy("shut", action="deny", groups=("porters",)),  # no subject in common
    policy("shut", action="deny", mode="dryRun"),  # never enforced
])
def test_no_conflict_without_all_of_priority_action_apps_and_subjects(
        other: dict[str, Any]) -> None:
    assert clashes(policy("open"), other) == []


def test_a_dry_run_policy_conflicts_with_nothing() -> None:
    assert clashes(policy("open", mode="dryRun"), policy("shut", action="deny")) == []


def test_the_pass_writes_coverage_and_the_conflict_once() -> None:
    bodies = [policy("open"), policy("shut", action="deny")]
    kube = FakeKube(*bodies)
    snap = PolicySnapshot(bodies[0], APPS, bodies)
    reconcile_policy(kube, Settings(), snap, ProcessState())
    patches = [w for w in kube.writes if w.verb == "merge_patch"]
    assert len(patches) == 1
    written = patches[0].body["status"]
    assert (written["appsMatched"], written["matchedApps"], written["inEffect"]) == (
        2, ["ehr", "pacs"], True)
    degraded = next(c for c in written["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ConflictingPolicies")
    assert "shut" in degraded["message"]
