"""The controller functions against a fake API server (tests/support/fake_kube.py): each
test names the exact requests a function sends — path, body, options, in order — and
that it sends nothing when nothing changed. No cluster."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deskfleet.api.parse import InvalidSpec
from deskfleet.conditions import Cond
from deskfleet.controllers import events, leader, status
from deskfleet.controllers.children import sync_children
from deskfleet.controllers.leader import LeaderElector
from deskfleet.controllers.process import ProcessState
from deskfleet.controllers.scaling import (
    AUTOSCALER,
    BUSY_COST,
    DELETION_COST,
    VICTIM_COST,
    scale_pool,
)
from deskfleet.controllers.status import write_invalid, write_status
from deskfleet.scaling.decide import Memory

from ..support.fake_kube import FakeKube, Write
from .test_scaling_shell import NS, deployment, pod, seen, spec

NOW = "2026-12-02T08:00:00Z"
POOLS = "/apis/deskfleet.io/v1alpha1/namespaces/ward/sessionhostpools"
EVENTS = "/api/v1/namespaces/ward/events"


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "now_rfc3339", lambda: NOW)
    monkeypatch.setattr(events, "now_rfc3339", lambda: NOW)


def pool(status_: dict[str, Any] | None = None, generation: int = 3) -> dict[str, Any]:
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
            "metadata": {"name": "desk", "namespace": "ward", "uid": "u1",
                         "generation": generation},
            "spec": {}, "status": status_ or {}}


def condition(type_: str, status_: str, reason: str, message: str = "",
              since: str = NOW, generation: int = 3) -> dict[str, Any]:
    return {"type": type_, "status": status_, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": since}


def event(type_: str, reason: str, message: str) -> Write:
    return Write("POST", EVENTS, {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": "desk.", "namespace": "ward"},
        "involvedObject": {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
                           "name": "desk", "namespace": "ward", "uid": "u1"},
        "type": type_, "reason": reason, "message": message,
        "source": {"component": "deskfleet"}, "reportingComponent": "deskfleet",
        "firstTimestamp": NOW, "lastTimestamp": NOW, "count": 1}, {})


# --- write_status / write_invalid --------------------------------------------------------

def sent(kube: FakeKube) -> list[Write]:
    """The writes, without the patches' field validation option (whether a status patch
    asks for fieldValidation=Strict is test_status_writes.py's to say)."""
    return [replace(w, options={k: v for k, v in w.options.items() if k != "strict"})
            for w in kube.writes]


def test_write_status_sends_one_strict_merge_patch_and_the_ready_event() -> None:
    kube, process = FakeKube(pool()), ProcessState()
    assert write_status(kube, pool(), {"readyHosts": 2, "hosts": "2/2"},
                        [Cond("Ready", True, "HostsReady", "2 of 2 hosts ready"),
                         Cond("Degraded", False, "AsExpected")], process=process)
    assert sent(kube) == [
        Write("merge_patch", f"{POOLS}/desk/status", {"status": {
            "readyHosts": 2, "hosts": "2/2", "observedGeneration": 3,
            "conditions": [condition("Ready", "True", "HostsReady", "2 of 2 hosts ready"),
                           condition("Degraded", "False", "AsExpected")]}},
              {}),
        event("Normal", "HostsReady", "2 of 2 hosts ready")]


def test_write_status_writes_nothing_when_the_stored_status_is_the_same() -> None:
    stored = {"readyHosts": 2, "observedGeneration": 3,
              "conditions": [condition("Ready", "True", "HostsReady", "ok",
                                       since="2026-12-01T00:00:00Z")]}
    kube = FakeKube(pool(stored))
    assert not write_status(kube, pool(stored), {"readyHosts": 2},
                            [Cond("Ready", True, "HostsReady", "ok")], process=ProcessState())
    assert kube.writes == []


def test_a_changed_message_keeps_the_transition_time_and_posts_no_event() -> None:
    stored = {"readyHosts": 2, "observedGeneration": 3,
              "conditions": [condition("Ready", "True", "HostsReady", "2 of 2",
                                       since="2026-12-01T00:00:00Z")]}
    kube = FakeKube(pool(stored))
    assert write_status(kube, pool(stored), {"readyHosts": 3},
                        [Cond("Ready", True, "HostsReady", "3 of 3")], process=ProcessState())
    assert sent(kube) == [Write("merge_patch", f"{POOLS}/desk/status", {"status": {
        "readyHosts": 3, "observedGeneration": 3,
        "conditions": [condition("Ready", "True", "HostsReady", "3 of 3",
                                 since="2026-12-01T00:00:00Z")]}}, {})]


def test_an_object_deleted_meanwhile_is_marked_gone_and_nothing_else_is_sent() -> None:
    kube, process = FakeKube(), ProcessState()
    kube.fail("merge_patch", f"{POOLS}/desk/status", 404, "NotFound")
    assert not write_status(kube, pool(), {}, [Cond("Ready", True, "HostsReady")],
                            process=process)
    assert [w.verb for w in kube.writes] == ["merge_patch"]  # no Event about it
    assert "u1" in process.gone and process.gone.version == 1


def test_other_api_errors_fail_the_pass() -> None:
    kube = FakeKube()
    kube.fail("merge_patch", f"{POOLS}/desk/status", 500, "InternalError")
    with pytest.raises(Exception, match="500"):
        write_status(kube, pool(), {}, [Cond("Ready", True, "HostsReady")])


def test_write_invalid_names_every_field_at_fault_and_keeps_the_given_fields() -> None:
    kube = FakeKube(pool())
    err = InvalidSpec("SessionHostPool", "desk", ["spec.schedule.timeZone: unknown zone",
                                                  "spec.scaling.maxHosts: below minHosts"])
    assert write_invalid(kube, pool(), err, {"readyHosts": 1}, process=ProcessState())
    message = ("SessionHostPool desk: spec.schedule.timeZone: unknown zone; "
               "spec.scaling.maxHosts: below minHosts")
    assert sent(kube) == [
        Write("merge_patch", f"{POOLS}/desk/status", {"status": {
            "readyHosts": 1, "observedGeneration": 3,
            "conditions": [condition("Ready", "False", "InvalidSpec", message),
                           condition("Degraded", "True", "InvalidSpec",
                                     "spec.schedule.timeZone: unknown zone; "
                                     "spec.scaling.maxHosts: below minHosts")]}},
              {}),
        event("Warning", "InvalidSpec", message)]
    # The same again: nothing to send.
    again = FakeKube()
    stored = kube.objects[f"{POOLS}/desk"]
    assert not write_invalid(again, stored, err, {"readyHosts": 1})
    assert again.writes == []


# --- the child sync ----------------------------------------------------------------------

CONFIGMAPS = "/api/v1/namespaces/ward/configmaps"


def configmap(name: str, data: dict[str, str], uid: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ward",
                            "labels": {"app.kubernetes.io/managed-by": "deskfleet"}}
    if uid:
        meta["uid"] = uid
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_children_that_match_cost_no_request() -> None:
    live = configmap("a", {"k": "v"}, uid="c1")
    kube = FakeKube(live)
    result = sync_children(kube, [configmap("a", {"k": "v"})], [live], owner=pool())
    assert kube.writes == [] and kube.reads == []
    assert (result.applied, result.deleted, result.errors) == ([], [], [])


def test_a_changed_child_is_applied_and_an_unwanted_one_deleted_by_uid() -> None:
    a_live, b_live = configmap("a", {"k": "old"}, uid="c1"), configmap("b", {}, uid="c2")
    kube = FakeKube(a_live, b_live)
    wanted = configmap("a", {"k": "new"})
    result = sync_children(kube, [wanted], [a_live, b_live], owner=pool())
    assert kube.writes == [Write("apply", f"{CONFIGMAPS}/a", wanted, {"fieldManager": "deskfleet"}),
                           Write("delete", f"{CONFIGMAPS}/b", None, {"uid": "c2"})]
    assert (result.applied, result.deleted) == (["ConfigMap/a"], ["ConfigMap/b"])


def test_a_child_going_away_already_is_left_to_finish() -> None:
    going = configmap("b", {}, uid="c2")
    going["metadata"]["deletionTimestamp"] = NOW
    kube = FakeKube(going)
    assert sync_children(kube, [], [going]).deleted == [] and kube.writes == []


def test_a_missing_child_of_an_owner_that_is_gone_is_not_recreated() -> None:
    reconciled = pool({"observedGeneration": 3})
    kube, process = FakeKube(), ProcessState()  # the owner is not there any more
    result = sync_children(kube, [configmap("a", {})], [], owner=reconciled,
                           gone=process.gone)
    assert result.owner_gone and kube.writes == []
    assert kube.reads == [("get", f"{POOLS}/desk")] and "u1" in process.gone
    # Recreated under the same name (another uid): gone as well.
    kube = FakeKube({**reconciled, "metadata": {**reconciled["metadata"], "uid": "u2"}})
    assert sync_children(kube, [configmap("a", {})], [], owner=reconciled).owner_gone
    # Still there: the child is created.
    kube = FakeKube(reconciled)
    assert sync_children(kube, [configmap("a", {})], [], owner=reconciled).applied == [
        "ConfigMap/a"]


def test_an_apply_refused_once_merged_with_another_writer_falls_back_to_a_merge_patch() -> None:
    live = configmap("a", {"k": "old"}, uid="c1")
    live["metadata"]["annotations"] = {"x": "y"}
    kube = FakeKube(live)
    kube.fail("apply", f"{CONFIGMAPS}/a", 422, "Invalid")
    wanted = configmap("a", {"k": "new"})
    result = sync_children(kube, [wanted], [live])
    assert kube.writes == [
        Write("apply", f"{CONFIGMAPS}/a", wanted, {"fieldManager": "deskfleet"}),
        Write("merge_patch", f"{CONFIGMAPS}/a", {
            "data": {"k": "new"},
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "deskfleet"}}})]
    assert result.applied == ["ConfigMap/a"] and result.errors == []


def test_a_failed_apply_is_reported_and_the_rest_goes_on() -> None:
    kube = FakeKube(configmap("b", {}, uid="c2"))
    kube.fail("apply", f"{CONFIGMAPS}/a", 403, "Forbidden", "no")
    result = sync_children(kube, [configmap("a", {})], [configmap("b", {}, uid="c2")])
    assert result.errors == ["ConfigMap a: 403 Forbidden: no"]
    assert [w.verb for w in kube.writes] == ["apply", "delete"]


# --- host labelling and replicas (the scaling shell) ---------------------------------------

PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/desk"
NO_DRAIN = {"deskfleet.io/draining-since": None, "deskfleet.io/drain-message": None,
            "deskfleet.io/logoff-deadline": None, "deskfleet.io/logoff-requested-at": None}


def test_hosts_are_labelled_accepting_and_busy_and_only_once() -> None:
    kube = FakeKube()
    pods = [pod("a", 3), pod("b", 0)]
    scale_pool(kube, spec(), deployment(2), seen(pods), Memory())
    assert kube.writes == [
        Write("merge_patch", f"{PODS}/a", {"metadata": {
            "labels": {"deskfleet.io/accepting": "true", "deskfleet.io/busy": "true"},
            "annotations": {**NO_DRAIN, DELETION_COST: BUSY_COST}}}),
        Write("merge_patch", f"{PODS}/b", {"metadata": {
            "labels": {"deskfleet.io/accepting": "true", "deskfleet.io/busy": "false"}}})]
    # The hosts as patched: the next pass sends nothing.
    for p in pods:
        patch = next(w.body["metadata"] for w in kube.writes if w.path.endswith(
            "/" + p["metadata"]["name"]))
        p["metadata"]["labels"].update(patch["labels"])
        p["metadata"]["annotations"].update(
            {k: v for k, v in patch.get("annotations", {}).items() if v is not None})
    again = FakeKube()
    scale_pool(again, spec(), deployment(2), seen(pods), Memory())
    assert again.writes == []


def test_a_replica_count_written_is_read_through_a_stale_snapshot_until_seen() -> None:
    stale = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "desk", "namespace": NS, "uid": "d1", "generation": 4},
             "spec": {"replicas": 2}}
    kube, process = FakeKube(stale), ProcessState()
    full = [pod("a", 8), pod("b", 7)]  # one free slot of the four the pool keeps

    def scaled(k: FakeKube) -> None:
        fleet = deployment(2)
        fleet.deployments[""] = stale
        scale_pool(k, spec(), fleet, seen(full), Memory(), written=process.replicas)

    scaled(kube)
    applies = [w for w in kube.writes if w.verb == "apply"]
    assert applies == [Write("apply", DEPLOYMENT, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "desk", "namespace": NS}, "spec": {"replicas": 3}},
        {"fieldManager": AUTOSCALER})]
    # The pods' watch is ahead of the Deployment's: the same stale snapshot again.
    again = FakeKube(stale)
    scaled(again)
    assert [w for w in again.writes if w.verb == "apply"] == []
    # Its deletion seen, the Deployment's entry goes with it.
    assert len(process.replicas) == 1
    process.forget_child("Deployment", NS, "desk")
    assert len(process.replicas) == 0
    assert VICTIM_COST not in str(kube.writes)  # nothing was chosen for removal


# --- the Lease ---------------------------------------------------------------------------

LEASES = "/apis/coordination.k8s.io/v1/namespaces/ops/leases"
T0 = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


class Clock:
    moment = T0


class FixedDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> FixedDatetime:  # type: ignore[override]
        return cls.fromtimestamp(Clock.moment.timestamp(), tz)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[Clock]:
    monkeypatch.setattr(leader, "datetime", FixedDatetime)
    Clock.moment = T0
    return Clock


def elector(kube: FakeKube, identity: str) -> LeaderElector:
    return LeaderElector(kube, "ops", "deskfleet", identity)  # type: ignore[arg-type]


def micro(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(holder: str, acquired: int, renewed: int, transitions: int) -> dict[str, Any]:
    return {"holderIdentity": holder, "leaseDurationSeconds": 15,
            "acquireTime": micro(acquired), "renewTime": micro(renewed),
            "leaseTransitions": transitions}


def test_the_lease_is_created_renewed_and_taken_over_only_once_expired(clock: type[Clock]
                                                                       ) -> None:
    kube = FakeKube()
    a, b = elector(kube, "a"), elector(kube, "b")
    assert a.try_acquire()
    assert kube.writes == [Write("POST", LEASES, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "deskfleet", "namespace": "ops"},
        "spec": lease_spec("a", 0, 0, 0)}, {})]

    clock.moment = T0 + timedelta(seconds=5)
    assert a.try_acquire()  # renewed: same acquireTime, no transition
    put = kube.writes[-1]
    assert (put.verb, put.path, put.body["spec"]) == ("PUT", f"{LEASES}/deskfleet",
                                                      lease_spec("a", 0, 5, 0))
    assert put.body["metadata"]["resourceVersion"] == "1"  # the compare-and-swap

    clock.moment = T0 + timedelta(seconds=20)  # 15 s since the renewal: not expired yet
    assert not b.try_acquire() and len(kube.writes) == 2
    clock.moment = T0 + timedelta(seconds=21)
    assert b.try_acquire()
    assert kube.writes[-1].body["spec"] == lease_spec("b", 21, 21, 1)
    assert not a.try_acquire() and len(kube.writes) == 3  # a stands by


def test_a_conflict_loses_the_round_without_an_error(clock: type[Clock]) -> None:
    kube = FakeKube()
    kube.fail("POST", LEASES, 409, "AlreadyExists")  # another replica created it first
    assert not elector(kube, "a").try_acquire()
    assert elector(kube, "a").try_acquire()
    clock.moment = T0 + timedelta(seconds=60)
    kube.fail("PUT", f"{LEASES}/deskfleet", 409, "Conflict")  # renewed by another meanwhile
    assert not elector(kube, "b").try_acquire()
    kube.fail("GET", f"{LEASES}/deskfleet", 500, "InternalError")
    with pytest.raises(Exception, match="500"):
        elector(kube, "b").try_acquire()


def test_release_hands_the_lease_over_at_once(clock: type[Clock]) -> None:
    kube = FakeKube()
    a = elector(kube, "a")
    assert a.try_acquire()
    a.release()
    assert kube.writes[-1].body["spec"] == {**lease_spec("a", 0, 0, 0), "holderIdentity": "",
                                            "renewTime": "1970-01-01T00:00:00.000000Z"}
    assert elector(kube, "b").try_acquire()
    assert kube.writes[-1].body["spec"] == lease_spec("b", 0, 0, 1)
    elector(kube, "a").release()  # not the holder: nothing to send
    assert [w.verb for w in kube.writes] == ["POST", "PUT", "PUT"]
