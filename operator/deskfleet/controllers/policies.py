"""Reconcile an AccessPolicy's status: what it covers, whether it is in effect, and
whether it conflicts with another policy. (Its enforcement happens on the apps' routes
and the pools' host config, which are re-rendered whenever a policy changes.)"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..api.accesspolicy import AppSelection, Subjects
from ..api.kinds import ACCESS_POLICY, PUBLISHED_APP
from ..api.parse import InvalidSpec, parse
from ..clock import format_time
from ..conditions import Cond
from ..kube.client import Kube
from ..metrics import STATE, PolicyMetrics
from ..policy.enforcement import Policy, app_labels, valid_policies
from ..policy.selection import LabelGroups, PolicySet
from ..portal_stats import DryRunFigures
from ..settings import Settings
from . import fanout
from .controller import Body, Controller, Job, policies_of, present
from .fanout import Delayed, Facts, Key
from .pass_result import PassResult
from .process import ProcessState
from .status import write_invalid, write_status

if TYPE_CHECKING:
    from .runtime import Runtime

KIND = ACCESS_POLICY.kind
MAX_LISTED_APPS = 200  # keep status small; appsMatched has the full count


@dataclass(frozen=True)
class PolicySnapshot:
    body: dict[str, Any]
    # The namespace's apps grouped by labels as the watch handlers keep them
    # (fanout.FactsMemory.label_groups): listing and regrouping 10,000 apps per policy
    # pass, while apps kept arriving, was most of a policy pass.
    groups: LabelGroups
    policies: list[dict[str, Any]]
    policies_version: Hashable | None = None  # see fanout.FactsMemory.version
    dry_run: DryRunFigures | None = None  # what the portal saw, for a dryRun policy


def live_app_groups(rt: Runtime, namespace: str) -> LabelGroups:
    """The namespace's apps by labels, without those the API server said are gone
    although no watch event said so yet (rare: then the bodies are grouped afresh)."""
    if not len(rt.process.gone):
        return rt.facts.label_groups(PUBLISHED_APP.kind, namespace)
    apps = present(rt, rt.cache.in_namespace(PUBLISHED_APP.kind, namespace))
    return LabelGroups((a["metadata"]["name"], app_labels(a)) for a in apps)


def _name_the_same(a: Subjects, b: Subjects) -> bool:
    # A conflict is reported only where the two policies name the same group or user:
    # any deny naming a group *may* hit an allow's members (who-can-open says so), but
    # flagging every such pair would bury the clashes an author wants to see.
    return bool(set(a.groups) & set(b.groups) or set(a.users) & set(b.users))


def conflicts(policy: Policy, others: PolicySet, apps: LabelGroups) -> list[str]:
    """Enforced policies of the same priority and opposite action over shared apps and
    subjects. Deny still wins; the condition tells the author the outcome may surprise."""
    if policy.spec.mode != "enforce":
        return []
    rivals = [other for other in others.enforced_by_priority.get(policy.spec.priority, ())
              if other.name != policy.name and other.spec.action != policy.spec.action]
    if not rivals:
        return []
    mine = set(apps.covered_by(policy.spec.apps))
    out = []
    for other in rivals:
        deny, allow = (policy, other) if policy.spec.action == "deny" else (other, policy)
        if mine & set(apps.covered_by(other.spec.apps)) and _name_the_same(deny.spec.subjects,
                                                                      allow.spec.subjects):
            out.append(other.name)
    return sorted(out)


def reconcile_policy(kube: Kube, settings: Settings, snap: PolicySnapshot,
                     process: ProcessState | None = None) -> PassResult:
    process = ProcessState() if process is None else process
    body = snap.body
    try:
        policy: Policy = parse(body)
    except InvalidSpec as err:
        write_invalid(kube, body, err, {"inEffect": False}, process=process)
        return PassResult()
    matched = snap.groups.covered_by(policy.spec.apps)
    in_effect = policy.spec.mode == "enforce"
    clash = conflicts(policy, valid_policies(snap.policies, snap.policies_version),
                      snap.groups)
    fields: dict[str, Any] = {"matchedApps": matched[:MAX_LISTED_APPS],
                              "appsMatched": len(matched), "inEffect": in_effect}
    if not in_effect and snap.dry_run is not None:
        fields["dryRun"] = {"since": format_time(snap.dry_run.since),
                            "requestsEvaluated": snap.dry_run.evaluated,
                            "wouldHaveChanged": snap.dry_run.would_change}
    ready = Cond("Ready", True, "InEffect" if in_effect else "DryRun",
                 f"covers {len(matched)} apps" + ("" if in_effect else
                                                  "; evaluated and reported, never enforced"))
    if not matched:
        degraded = Cond("Degraded", True, "SelectsNothing",
                        "no PublishedApp in the namespace matches spec.apps")
    elif clash:
        degraded = Cond("Degraded", True, "ConflictingPolicies",
                        f"same priority, opposite action, shared apps and subjects: "
                        f"{', '.join(clash)} (deny wins)")
    else:
        degraded = Cond("Degraded", False, "AsExpected", "")
    STATE.set_policy(policy.namespace, policy.name, PolicyMetrics(enforced=in_effect))
    write_status(kube, body, fields, [ready, degraded], process=process)
    return PassResult()


# -- the declaration ------------------------------------------------------------------------

def _keys(rt: Runtime, key: Key, old: Facts | None, new: Facts | None
          ) -> list[Key | Delayed]:
    namespace = key[1]
    groups = rt.facts.label_groups(PUBLISHED_APP.kind, namespace)

    def covered(apps: Any) -> list[str] | None:
        try:
            return groups.covered_by(AppSelection.model_validate(apps or {}))
        except ValidationError:
            return None

    def pool_of(app: str) -> str:
        facts = rt.facts.get((PUBLISHED_APP.kind, namespace, app))
        return str(facts["pool"]) if facts else ""

    return fanout.policy_keys(namespace, key[2], old, new, covered, pool_of)


def _snapshot(rt: Runtime, namespace: str, name: str, body: Body | None) -> Job:
    assert body is not None and rt.kube is not None
    policies, version = policies_of(rt, namespace)
    snap = PolicySnapshot(body, live_app_groups(rt, namespace), policies,
                          policies_version=version,
                          dry_run=rt.portal_stats.dry_run(namespace, name))
    kube, settings, process = rt.kube, rt.settings, rt.process
    return lambda: reconcile_policy(kube, settings, snap, process)


CONTROLLER = Controller(
    kind=KIND, plural=ACCESS_POLICY.plural, snapshot=_snapshot,
    facts=fanout.policy_event_facts, keys=_keys, versioned_by=("generation",),
    compared_status=("matchedApps",))
