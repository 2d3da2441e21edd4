"""The autoscaler's shell around the pure core: what it reads from pods, what it writes
on them (accepting, the notice, the deadline, the logoff request), the Events and
counters of a forced logoff, the measured start-up and session-end rate, and the pool
status — with a driven scheduling clock far from the cluster's real one, and no write
on a pass that changes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from deskfleet.agent.annotations import (
    DISCONNECTED_ANNOTATION,
    DRAIN_MESSAGE_ANNOTATION,
    DRAINING_ANNOTATION,
    LOGOFF_DEADLINE_ANNOTATION,
    LOGOFF_REQUESTED_ANNOTATION,
    REPORTED_AT_ANNOTATION,
    SESSIONS_ANNOTATION,
)
from deskfleet.api.parse import parse
from deskfleet.api.sessionhostpool import SessionHostPoolSpec
from deskfleet.clock import format_time
from deskfleet.controllers.pools import PoolSnapshot, _rendered, reconcile_pool
from deskfleet.controllers.revisions import Fleet
from deskfleet.controllers.scaling import (
    BUSY_COST,
    DELETION_COST,
    LOGGING_OFF_COST,
    VICTIM_COST,
    Observed,
    Plan,
    host_from_pod,
    host_marks,
    scale_pool,
)
from deskfleet.controllers.session_ends import SessionEnds
from deskfleet.controllers.startup import StartupTimes, percentile, startup_sample
from deskfleet.render.revision import REVISION_LABEL, revision_label
from deskfleet.scaling.decide import Demand, Memory, decide
from deskfleet.settings import Settings

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # the scheduling clock, driven
REAL = datetime(2025, 3, 3, 17, 30, 12, tzinfo=UTC)  # what the cluster records
NS = "ward"
FORCED = {"maxWait": "1h", "forceLogoff": True, "message": "Bye at the deadline"}


def spec(**scaling: Any) -> SessionHostPoolSpec:
    base: dict[str, Any] = {"minHosts": 1, "maxHosts": 20, "bufferSessions": 4,
                            "scaleInDelay": "10m"}
    return SessionHostPoolSpec.model_validate(
        {"image": "x", "sessionsPerHost": 8, "scaling": {**base, **scaling}}, by_alias=True)


def pod(name: str, sessions: int | None, reported: datetime = REAL, ready: bool = True,
        created: datetime = REAL - timedelta(hours=2), **annotations: str) -> dict[str, Any]:
    ann = dict(annotations)
    if sessions is not None:
        ann |= {SESSIONS_ANNOTATION: str(sessions), REPORTED_AT_ANNOTATION: format_time(reported)}
    return {"metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}",
                         "creationTimestamp": format_time(created),
                         "labels": {}, "annotations": ann},
            "spec": {"nodeName": "kwok-node-0"},
            "status": {"phase": "Running" if ready else "Pending",
                       "conditions": [{"type": "Ready", "status": str(ready),
                                       "lastTransitionTime": format_time(
                                           created + timedelta(seconds=40))}]}}


def seen(pods: list[dict[str, Any]], elapsed: timedelta = timedelta()) -> Observed:
    now, real = NOW + elapsed, REAL + elapsed
    return Observed(now, real, pods, [host_from_pod(p, now, real) for p in pods])


class FakeKube:
    def __init__(self) -> None:
        self.writes: list[tuple[str, str, dict[str, Any]]] = []

    def merge_patch(self, rtype: Any, namespace: str, name: str, patch: dict[str, Any],
                    subresource: str | None = None, strict: bool = False) -> dict[str, Any]:
        self.writes.append(("patch" if subresource is None else subresource, name, patch))
        return {}

    def apply(self, manifest: dict[str, Any], *, field_manager: str | None = None,
              **_: Any) -> dict[str, Any]:
        self.writes.append(("apply", manifest["metadata"]["name"], manifest))
        return {**manifest, "metadata": {**manifest["metadata"], "generation": 7}}

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.writes.append(("event", kwargs["body"]["reason"], kwargs["body"]))
        return {}

    def pods_patched(self) -> dict[str, dict[str, Any]]:
        return {name: patch["metadata"] for kind, name, patch in self.writes if kind == "patch"}


def patched(pods: list[dict[str, Any]], kube: FakeKube) -> list[dict[str, Any]]:
    """The pods as the API server holds them after the shell's merge patches."""
    out = []
    for p in pods:
        meta = {**p["metadata"], "labels": dict(p["metadata"]["labels"]),
                "annotations": dict(p["metadata"]["annotations"])}
        for kind, name, patch in kube.writes:
            if kind == "patch" and name == meta["name"]:
                for part in ("labels", "annotations"):
                    for key, value in patch["metadata"].get(part, {}).items():
                        if value is None:
                            meta[part].pop(key, None)
                        else:
                            meta[part][key] = value
        out.append({**p, "metadata": meta})
    return out


def report(pods: list[dict[str, Any]], at: datetime, **sessions: int) -> list[dict[str, Any]]:
    """Every agent reports again at `at` (their counts unchanged unless given)."""
    out = []
    for p in pods:
        ann = dict(p["metadata"]["annotations"])
        name = p["metadata"]["name"]
        if name in sessions:
            ann[SESSIONS_ANNOTATION] = str(sessions[name])
        ann[REPORTED_AT_ANNOTATION] = format_time(at)
        out.append({**p, "metadata": {**p["metadata"], "annotations": ann}})
    return out


def deployment(replicas: int) -> Fleet:
    """A pool of one revision (the pods here carry no revision label: revision "")."""
    return Fleet("", "", {"": {"metadata": {"name": "desk", "namespace": NS, "generation": 9},
                               "spec": {"replicas": replicas}}})


LONG_SURPLUS = Memory(surplus_since=NOW - timedelta(hours=1))


def test_a_pod_reads_back_as_the_core_host_on_the_scheduling_clock() -> None:
    deadline = REAL + timedelta(minutes=20)
    p = pod("a", 3, reported=REAL - timedelta(seconds=4), **{
        DISCONNECTED_ANNOTATION: "2", DRAINING_ANNOTATION: format_time(REAL - timedelta(hours=1)),
        DRAIN_MESSAGE_ANNOTATION: "Save your work", LOGOFF_DEADLINE_ANNOTATION:
        format_time(deadline), LOGOFF_REQUESTED_ANNOTATION: "not a time"})
    h = host_from_pod(p, NOW, REAL)
    assert (h.sessions, h.disconnected, h.drain_message) == (3, 2, "Save your work")
    assert h.reported_at == NOW - timedelta(seconds=4)
    assert h.draining_since == NOW - timedelta(hours=1)
    assert h.logoff_deadline == NOW + timedelta(minutes=20)
    assert h.logoff_requested_at is None  # unreadable: as if never asked
    assert h.created_at == NOW - timedelta(hours=2) and h.ready


def test_a_forced_logoff_through_the_shell_from_notice_to_removal() -> None:
    pool = spec(drain={**FORCED, "logoffTimeout": "10m"})
    pods = [pod("a", 3), pod("b", 1), pod("c", 0)]  # 4 sessions + 4 free: one host

    # 1. Drain b and c: each is told the message and a deadline an hour from now, in
    #    the cluster's time; neither takes new sessions any more.
    kube = FakeKube()
    first = scale_pool(kube, pool, deployment(3), seen(pods), LONG_SURPLUS)
    marks = kube.pods_patched()
    deadline = format_time(REAL + timedelta(hours=1))
    for name in ("b", "c"):
        assert marks[name]["annotations"] == {
            DRAINING_ANNOTATION: format_time(REAL), DRAIN_MESSAGE_ANNOTATION:
            "Bye at the deadline", LOGOFF_DEADLINE_ANNOTATION: deadline,
            LOGOFF_REQUESTED_ANNOTATION: None,
            DELETION_COST: "1000000" if name == "b" else None}
        assert marks[name]["labels"]["deskfleet.io/accepting"] == "false"
    assert marks["a"]["labels"]["deskfleet.io/accepting"] == "true"
    assert first.deadlines_given == (("b", deadline), ("c", deadline))
    pods = patched(pods, kube)

    # 2. The same moment again, or a restarted operator: nothing to write.
    again = FakeKube()
    scale_pool(again, pool, deployment(3), seen(pods), Memory())
    assert again.writes == []

    # 3. An hour later: b is asked to log its user off, c (empty since) is marked.
    later = timedelta(hours=1, seconds=1)
    pods = report(pods, REAL + later)
    kube = FakeKube()
    third = scale_pool(kube, pool, deployment(3), seen(pods, later), Memory())
    marks = kube.pods_patched()
    assert marks["b"]["annotations"][LOGOFF_REQUESTED_ANNOTATION] == format_time(REAL + later)
    assert marks["b"]["annotations"][LOGOFF_DEADLINE_ANNOTATION] == deadline  # unmoved
    assert marks["c"]["annotations"][DELETION_COST] == VICTIM_COST
    # From the request on, b ranks below every other busy host for the ReplicaSet, so
    # one whose pod cache lags our mark still takes b, not a, when b is forced out.
    assert marks["b"]["annotations"][DELETION_COST] == LOGGING_OFF_COST
    assert int(VICTIM_COST) < 0 < int(LOGGING_OFF_COST) < int(BUSY_COST)
    assert pods[0]["metadata"]["annotations"][DELETION_COST] == BUSY_COST
    assert third.logoffs_asked == ("b",) and third.forced_removals == ()
    pods = patched(pods, kube)
    # The request is made once: the next pass (c now seen marked) leaves it as it is.
    kube = FakeKube()
    fourth = scale_pool(kube, pool, deployment(3), seen(pods, later), Memory())
    assert b_request(kube) is None and fourth.logoffs_asked == ()
    assert next(w for w in kube.writes if w[0] == "apply")[2]["spec"] == {"replicas": 2}
    pods = [p for p in patched(pods, kube) if p["metadata"]["name"] != "c"]

    # 4. b still reports its session 10 minutes after the request: marked, then removed.
    gone = later + timedelta(minutes=10, seconds=1)
    pods = report(pods, REAL + gone)
    kube = FakeKube()
    scale_pool(kube, pool, deployment(2), seen(pods, gone), Memory())
    pods = patched(pods, kube)
    assert pods[1]["metadata"]["annotations"][DELETION_COST] == VICTIM_COST
    kube = FakeKube()
    last = scale_pool(kube, pool, deployment(2), seen(pods, gone), Memory())
    assert last.forced_removals == ("b",)


def b_request(kube: FakeKube) -> str | None:
    marks = kube.pods_patched().get("b") or {}
    value: str | None = (marks.get("annotations") or {}).get(LOGOFF_REQUESTED_ANNOTATION)
    return value


def test_putting_a_host_back_into_service_withdraws_every_drain_annotation() -> None:
    drained = pod("a", 2, **{DRAINING_ANNOTATION: format_time(REAL - timedelta(minutes=5)),
                             DRAIN_MESSAGE_ANNOTATION: "Bye",
                             LOGOFF_DEADLINE_ANNOTATION: format_time(REAL + timedelta(hours=1))})
    h = host_from_pod(drained, NOW, REAL)
    plan = Plan(frozenset(), frozenset({"a"}), frozenset(), frozenset(), frozenset({"a"}), {})
    marks = host_marks(drained, h, plan, NOW, REAL)
    assert {k: marks.annotations[k] for k in (
        DRAINING_ANNOTATION, DRAIN_MESSAGE_ANNOTATION, LOGOFF_DEADLINE_ANNOTATION,
        LOGOFF_REQUESTED_ANNOTATION)} == dict.fromkeys((
            DRAINING_ANNOTATION, DRAIN_MESSAGE_ANNOTATION, LOGOFF_DEADLINE_ANNOTATION,
            LOGOFF_REQUESTED_ANNOTATION))
    assert marks.labels["deskfleet.io/accepting"] == "true"
    # A draining host whose notice is withdrawn (no notice in the decision) keeps
    # draining, without message or deadline.
    still = Plan(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), {})
    quiet = host_marks(drained, h, still, NOW, REAL)
    assert quiet.annotations[DRAINING_ANNOTATION] == format_time(REAL - timedelta(minutes=5))
    assert quiet.annotations[DRAIN_MESSAGE_ANNOTATION] is None
    assert quiet.annotations[LOGOFF_DEADLINE_ANNOTATION] is None


def test_accepting_follows_the_decision_not_free_slots() -> None:
    """Depth-first: a host with free slots that the core left out takes no logon."""
    pool = spec(loadBalancing="depthFirst", bufferSessions=2)
    pods = [pod("full", 7), pod("half", 4), pod("idle", 1)]
    kube = FakeKube()
    result = scale_pool(kube, pool, deployment(3), seen(pods), Memory())
    labels = {n: m["labels"]["deskfleet.io/accepting"] for n, m in kube.pods_patched().items()}
    assert labels == {"full": str("full" in result.decision.accepting).lower(),
                      "half": str("half" in result.decision.accepting).lower(),
                      "idle": str("idle" in result.decision.accepting).lower()}
    assert "false" in labels.values() and result.decision.accepting


def test_pools_without_agents_keep_every_serving_host_in_the_service() -> None:
    pool = SessionHostPoolSpec.model_validate(
        {"image": "x", "agent": {"enabled": False}, "scaling": {"minHosts": 2}}, by_alias=True)
    d = decide(pool, [host_from_pod(pod(n, None), NOW, REAL) for n in ("a", "b")], NOW,
               Memory(), 2)
    assert d.accepting == ("a", "b")


def test_a_demand_signal_lets_a_pool_reach_zero_and_the_first_launch_starts_a_host() -> None:
    night = spec(minHosts=0, bufferSessions=0, scaleInDelay="1m")
    empty = [pod("a", 0, **{DRAINING_ANNOTATION: format_time(REAL - timedelta(minutes=2))})]
    kube = FakeKube()
    marked = scale_pool(kube, night, deployment(1), seen(empty), LONG_SURPLUS, Demand())
    assert marked.decision.remove == ("a",)
    none = scale_pool(FakeKube(), night, deployment(0), seen([]), Memory(), Demand())
    assert none.decision.replicas == 0
    woken = scale_pool(FakeKube(), night, deployment(0), seen([]), Memory(),
                       Demand(launch_rate_per_minute=1, unserved=1, startup_seconds=30))
    assert (woken.decision.replicas, woken.decision.direction) == (1, "up")


# --- measured start-up and sessions ending ----------------------------------------------

def started(name: str, created: datetime, ready_after: float | None) -> dict[str, Any]:
    conditions = [] if ready_after is None else [
        {"type": "Ready", "status": "True",
         "lastTransitionTime": format_time(created + timedelta(seconds=ready_after))}]
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": format_time(created)},
            "status": {"conditions": conditions}}


def test_start_up_is_a_high_percentile_of_recent_hosts_each_sampled_once() -> None:
    assert startup_sample(started("a", REAL, None)) is None
    assert startup_sample(started("a", REAL, 0)) == (REAL, 1.0)  # at least a second
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], 90) == 9
    assert percentile([30.0], 90) == 30.0
    times = StartupTimes()
    assert times.observe("p", [started("a", REAL, None)], REAL) is None
    pods = [started(f"h{i}", REAL + timedelta(minutes=i), 40 + i) for i in range(30)]
    assert times.observe("p", pods, REAL + timedelta(hours=1)) == 67  # last 20: 50..69
    # A host whose Ready flapped later is not sampled again.
    flapped = [{**pods[-1], "status": {"conditions": [
        {"type": "Ready", "status": "True",
         "lastTransitionTime": format_time(REAL + timedelta(hours=5))}]}}]
    assert times.observe("p", flapped, REAL + timedelta(hours=5)) == 67
    # A day later, old samples no longer count.
    assert times.observe("p", [], REAL + timedelta(days=2)) is None


def test_sessions_ending_on_serving_hosts_make_a_rate() -> None:
    ends = SessionEnds()
    at = NOW

    def hosts(**counts: int) -> list[Any]:
        return [replace(host_from_pod(pod(n, c), NOW, REAL), reported_at=at)
                for n, c in counts.items()]

    assert ends.observe("p", hosts(a=5, b=3), at, 120, 0.0) == 0
    assert ends.observe("p", hosts(a=2, b=4), at, 120, 60.0) == 3 / 5  # 3 in 5 minutes
    draining = [replace(h, draining_since=at) for h in hosts(a=0)] + hosts(b=4)
    assert ends.observe("p", draining, at, 120, 90.0) == 3 / 5  # a drains: not counted
    assert ends.observe("p", hosts(b=1), at, 120, 400.0) == 3 / 5  # the first 3 expired


# --- the pool's status -----------------------------------------------------------------

POOL = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
        "metadata": {"name": "desk", "namespace": NS, "uid": "pool-uid", "generation": 1},
        "spec": {"image": "x", "sessionsPerHost": 2,
                 "scaling": {"minHosts": 2, "maxHosts": 6, "bufferSessions": 1}}}


def converged(pods: list[dict[str, Any]], status: dict[str, Any] | None = None,
              **snap: Any) -> tuple[FakeKube, PoolSnapshot]:
    body = {**POOL, "status": status or {}}
    children = _rendered(parse(body), Settings(), PoolSnapshot(body, []))[0]
    live = [{**c, "spec": {**c.get("spec", {}), "replicas": len(pods)},
             "status": {"readyReplicas": len(pods)}} if c["kind"] == "Deployment" else c
            for c in children]
    revision = revision_label(next(c for c in children if c["kind"] == "Deployment"))
    pods = [{**p, "metadata": {**p["metadata"], "labels": {
        **p["metadata"]["labels"], REVISION_LABEL: revision}}} for p in pods]
    return FakeKube(), PoolSnapshot(body, live, pods, **snap)


def test_silent_agents_make_the_pool_degraded_and_the_status_says_so() -> None:
    # Ready for an hour, never reported; they started in 40 s.
    old = [pod(n, None, created=datetime.now(UTC) - timedelta(hours=1)) for n in ("a", "b")]
    kube, snap = converged(old, demand=None, demand_signal="no portal: because")
    reconcile_pool(kube, Settings(), snap)
    status = next(w[2]["status"] for w in kube.writes if w[0] == "status")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "AgentsSilent")
    assert degraded["message"].startswith("2 ready host(s) never reported sessions (a, b)")
    assert status["unknownHosts"] == 2 and status["desiredHosts"] == 2  # floor, not more
    assert status["demandSignal"] == "no portal: because"
    assert status["startupSeconds"] == 40


def test_a_pass_over_a_converged_pool_writes_nothing() -> None:
    pods = [pod("a", 1, reported=datetime.now(UTC), **{DISCONNECTED_ANNOTATION: "1"}),
            pod("b", 0, reported=datetime.now(UTC))]
    kube, snap = converged(pods, demand=Demand(), demand_signal="")
    reconcile_pool(kube, Settings(), snap)
    status = next(w[2]["status"] for w in kube.writes if w[0] == "status")
    assert status["disconnectedSessions"] == 1 and status["loggingOffHosts"] == 0
    assert status["demandSignal"] == "launches seen by the portal"
    pods = patched(pods, kube)
    kube, snap = converged(pods, status, demand=Demand(), demand_signal="")
    reconcile_pool(kube, Settings(), snap)
    assert kube.writes == []


def test_the_decision_of_a_paused_pool_writes_nothing_on_hosts() -> None:
    kube = FakeKube()
    result = scale_pool(kube, spec(paused=True), deployment(1), seen([pod("a", 8)]), Memory())
    assert kube.writes == [] and result.decision.reason == "autoscaling is paused"


def test_until_the_portal_first_answers_a_pass_sees_no_launch_not_no_signal(
        monkeypatch: Any) -> None:
    """Else every pool scaled to zero would get a host at each operator restart."""
    import time as clock

    from deskfleet.controllers.pool_demand import pool_demand
    from deskfleet.controllers.runtime import RUNTIME

    settings = Settings(portal_stats_urls=["http://portal:9090/v1/stats"])
    monkeypatch.setattr(RUNTIME, "settings", settings)
    monkeypatch.setattr(RUNTIME, "portal_stats_seen", (0.0, 0))
    monkeypatch.setattr(RUNTIME.portal_stats, "started", datetime.now(UTC))
    assert pool_demand(NS, "desk") == (Demand(), None)  # just started: not known yet
    monkeypatch.setattr(RUNTIME.portal_stats, "started",
                        datetime.now(UTC) - timedelta(minutes=1))
    assert pool_demand(NS, "desk")[0] is None  # the portal never answered
    monkeypatch.setattr(RUNTIME, "portal_stats_seen", (clock.monotonic(), 0))
    demand, why = pool_demand(NS, "desk")
    assert demand is None and why and "no portal replica answered" in why
    monkeypatch.setattr(RUNTIME, "portal_stats_seen", (clock.monotonic(), 2))
    assert pool_demand(NS, "desk") == (Demand(), "")
    monkeypatch.setattr(RUNTIME, "settings", Settings())
    demand, why = pool_demand(NS, "desk")
    assert demand is None and why and "no portal to read launches from" in why


def test_a_pool_at_zero_keeps_its_measured_start_up_through_a_restart() -> None:
    """No host is left to measure: the figure in status stands in, not the 5-minute
    estimate (one launch would then ask for 9 free slots)."""
    launch = Demand(launch_rate_per_minute=1, unserved=1)
    body_status = {"startupSeconds": 30}
    kube, snap = converged([], body_status, demand=launch, demand_signal="")
    night = {**snap.body, "metadata": {**snap.body["metadata"], "generation": 2},
             "spec": {**snap.body["spec"], "scaling": {
                 "minHosts": 0, "maxHosts": 6, "bufferSessions": 0}}}
    reconcile_pool(kube, Settings(), replace(snap, body=night))
    status = next(w[2]["status"] for w in kube.writes if w[0] == "status")
    assert status["desiredHosts"] == 1 and status["startupSeconds"] == 30
    assert status["scalingReason"].startswith("0 sessions + 2 free slots need 1 hosts")


def test_ready_means_what_the_replicaset_ranks_by() -> None:
    """The ReplicaSet controller deletes an unscheduled, not Running or not Ready pod
    before any of lower deletion cost; such a host must count as not ready, or a removal
    it does not hold back lets the ReplicaSet pick it, sessions and all."""
    ready = pod("a", 2)
    assert host_from_pod(ready, NOW, REAL).ready
    pending = {**ready, "status": {**ready["status"], "phase": "Pending"}}
    unscheduled = {**ready, "spec": {}}
    assert not host_from_pod(pending, NOW, REAL).ready
    assert not host_from_pod(unscheduled, NOW, REAL).ready


def test_replicas_go_down_only_once_no_other_host_carries_a_victims_mark() -> None:
    """A host marked as a victim by an earlier pass and back in service now (sessions
    arrived, or the pass that marked it was cut short) keeps the lowest deletion cost
    until the ReplicaSet sees this pass's patch: lowering the count in the same pass
    would let it pick that host, sessions and all (the soak found it)."""
    pool = spec(drain={**FORCED, "logoffTimeout": "10m"})
    pods = [pod("a", 3), pod("b", 1), pod("c", 0)]
    kube = FakeKube()
    scale_pool(kube, pool, deployment(3), seen(pods), LONG_SURPLUS)  # drain b and c
    later = timedelta(hours=1, seconds=1)
    pods = report(patched(pods, kube), REAL + later)
    kube = FakeKube()
    scale_pool(kube, pool, deployment(3), seen(pods, later), Memory())  # c marked
    pods = patched(pods, kube)
    assert pods[2]["metadata"]["annotations"][DELETION_COST] == VICTIM_COST
    pods[0]["metadata"]["annotations"][DELETION_COST] = VICTIM_COST  # a stale mark on a

    kube = FakeKube()
    scale_pool(kube, pool, deployment(3), seen(pods, later), Memory())
    assert kube.pods_patched()["a"]["annotations"][DELETION_COST] == BUSY_COST
    assert [w for w in kube.writes if w[0] == "apply"] == []  # c waits a pass
    pods = patched(pods, kube)
    kube = FakeKube()
    scale_pool(kube, pool, deployment(3), seen(pods, later), Memory())
    assert next(w for w in kube.writes if w[0] == "apply")[2]["spec"] == {"replicas": 2}
