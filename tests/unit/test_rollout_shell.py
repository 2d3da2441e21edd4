"""The rollout's shell: one Deployment per revision (named and selected by the template's
hash), which of them the child sync sees, what a pass writes on each (replicas that only
shrink for outdated revisions, the retired one deleted), an urgent deadline brought
forward on the pod, the pool's status, conditions and Events — and nothing written on a
pass that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from deskfleet.agent.annotations import (
    DRAINING_ANNOTATION,
    LOGOFF_DEADLINE_ANNOTATION,
)
from deskfleet.api.parse import parse
from deskfleet.clock import format_time
from deskfleet.controllers.pools import PoolSnapshot, _rendered, reconcile_pool
from deskfleet.controllers.revisions import Fleet, plan_fleet
from deskfleet.controllers.rollout_report import RolloutFacts, rollout_events
from deskfleet.controllers.scaling import DELETION_COST, VICTIM_COST, scale_pool
from deskfleet.render.pool import build_deployment
from deskfleet.render.revision import REVISION_LABEL, revision_label, revision_of
from deskfleet.scaling.decide import Memory
from deskfleet.settings import Settings

from .test_scaling_shell import NS, REAL, FakeKube, patched, pod, seen, spec

POOL = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
        "metadata": {"name": "desk", "namespace": NS, "uid": "pool-uid", "generation": 1},
        "spec": {"image": "desktop:1", "sessionsPerHost": 2, "agent": {"sessionSource": "host"},
                 "scaling": {"minHosts": 2, "maxHosts": 6, "bufferSessions": 1}}}


def body(image: str = "desktop:1", status: dict[str, Any] | None = None, **update: Any
         ) -> dict[str, Any]:
    # Each spec its own generation, as the API server numbers them (parsed specs are
    # cached by generation).
    generation = int(image.rsplit(":", 1)[1]) * 10 + len(update)
    return {**POOL, "metadata": {**POOL["metadata"], "generation": generation},
            "spec": {**POOL["spec"], "image": image, "update": update},
            "status": status or {}}


def live_deployment(image: str, replicas: int, ready: int | None = None,
                    created: str = "2026-11-01T00:00:00Z") -> dict[str, Any]:
    d = build_deployment(parse(body(image)), Settings())
    return {**d, "metadata": {**d["metadata"], "uid": f"uid-{image}", "generation": 3,
                              "creationTimestamp": created},
            "spec": {**d["spec"], "replicas": replicas},
            "status": {"readyReplicas": replicas if ready is None else ready}}


def host_pod(name: str, revision: str, sessions: int | None, **annotations: str
             ) -> dict[str, Any]:
    p = pod(name, sessions, reported=datetime.now(UTC), created=datetime.now(UTC)
            - timedelta(hours=3), **annotations)
    p["metadata"]["labels"] = {"deskfleet.io/pool": "desk", REVISION_LABEL: revision}
    return p


def test_a_revision_is_a_hash_of_the_template_naming_its_deployment() -> None:
    one = build_deployment(parse(body("desktop:1")), Settings())
    again = build_deployment(parse(body("desktop:1")), Settings())
    two = build_deployment(parse(body("desktop:2")), Settings())
    revision = revision_label(one)
    assert one == again and revision != revision_label(two)
    assert one["metadata"]["name"] == f"desk-{revision}" and len(revision) == 10
    assert one["spec"]["selector"]["matchLabels"] == {"deskfleet.io/pool": "desk",
                                                      REVISION_LABEL: revision}
    assert one["spec"]["template"]["metadata"]["labels"][REVISION_LABEL] == revision
    template = {**one["spec"]["template"], "metadata": {"labels": {
        k: v for k, v in one["spec"]["template"]["metadata"]["labels"].items()
        if k != REVISION_LABEL}}}
    assert revision_of(template) == revision
    # Settings that do not restart hosts make no revision: a new drain message, say.
    calm = body("desktop:1")
    calm["metadata"]["generation"] = 99
    calm["spec"]["scaling"] = {**calm["spec"]["scaling"], "drain": {"message": "Bye"}}
    assert revision_label(build_deployment(parse(calm), Settings())) == revision


def test_the_child_sync_sees_only_the_current_revisions_deployment() -> None:
    old, new = live_deployment("desktop:1", 2), live_deployment("desktop:2", 1)
    service = {"kind": "Service", "metadata": {"name": "desk", "labels": {}}}
    rendered = [service, build_deployment(parse(body("desktop:2")), Settings())]
    fleet, desired, live = plan_fleet(parse(body("desktop:2")), rendered,
                                      [old, new, service], revision_label(old))
    assert fleet.current == revision_label(new) and set(fleet.deployments) == {
        revision_label(old), revision_label(new)}
    assert [c["metadata"]["name"] for c in desired] == ["desk", new["metadata"]["name"]]
    assert [c["metadata"]["name"] for c in live] == [new["metadata"]["name"], "desk"]
    # Held: the current revision stays; the spec's Deployment is not created.
    held = parse(body("desktop:2", paused=True))
    fleet, desired, live = plan_fleet(held, rendered, [old, service], revision_label(old))
    assert fleet.current == revision_label(old) and fleet.pending == revision_label(new)
    assert [c["kind"] for c in desired] == ["Service"]
    assert [c["kind"] for c in live] == ["Service"]  # the kept one is left as it is


def fleet(current: dict[str, Any], *others: dict[str, Any]) -> Fleet:
    deployments = {revision_label(d): d for d in (current, *others)}
    return Fleet(revision_label(current), revision_label(current), deployments)


def test_outdated_revisions_only_shrink_and_go_once_empty() -> None:
    old, new = live_deployment("desktop:1", 2), live_deployment("desktop:2", 2)
    r_old, r_new = revision_label(old), revision_label(new)
    drained = format_time(REAL - timedelta(minutes=5))
    pods = [host_pod("o0", r_old, 0, **{DRAINING_ANNOTATION: drained}),
            host_pod("o1", r_old, 2, **{DRAINING_ANNOTATION: drained}),
            host_pod("n0", r_new, 1), host_pod("n1", r_new, 0)]
    pool = spec()
    kube = FakeKube()
    first = scale_pool(kube, pool, fleet(new, old), seen(pods), Memory())
    assert first.decision.remove == ("o0",)
    assert kube.pods_patched()["o0"]["annotations"][DELETION_COST] == VICTIM_COST
    assert not [w for w in kube.writes if w[0] == "apply" and w[1] == old["metadata"]["name"]]
    # Seen marked: the old revision's count goes down by one; the new one's is its own.
    pods = patched(pods, kube)
    kube = FakeKube()
    scale_pool(kube, pool, fleet(new, old), seen(pods), Memory())
    applied = {w[1]: w[2]["spec"]["replicas"] for w in kube.writes if w[0] == "apply"}
    assert applied[old["metadata"]["name"]] == 1
    # The last old host gone, its revision at 0: the Deployment is deleted.
    empty = live_deployment("desktop:1", 0)
    empty["metadata"]["generation"] = 8  # read after the scaler's write (generation 7)
    deleted: list[str] = []
    kube = FakeKube()
    kube.delete = lambda rtype, ns, name, uid=None: deleted.append(name) or True  # type: ignore[method-assign]
    scale_pool(kube, pool, fleet(new, empty), seen([p for p in pods if p["metadata"][
        "name"].startswith("n")]), Memory())
    assert deleted == [empty["metadata"]["name"]]


def test_an_urgent_rollout_brings_an_announced_deadline_forward_on_the_pod() -> None:
    old, new = live_deployment("desktop:1", 1), live_deployment("desktop:2", 2)
    later = REAL + timedelta(hours=6)
    pods = [host_pod("o0", revision_label(old), 2, **{
                DRAINING_ANNOTATION: format_time(REAL - timedelta(hours=2)),
                LOGOFF_DEADLINE_ANNOTATION: format_time(later)}),
            host_pod("n0", revision_label(new), 0), host_pod("n1", revision_label(new), 0)]
    urgent = parse(body("desktop:2", urgent=True, drainDeadline="8h")).spec
    kube = FakeKube()
    result = scale_pool(kube, urgent, fleet(new, old), seen(pods), Memory())
    soon = format_time(REAL + timedelta(minutes=15))
    assert kube.pods_patched()["o0"]["annotations"][LOGOFF_DEADLINE_ANNOTATION] == soon
    assert result.deadlines_given == (("o0", soon),)
    again = FakeKube()
    scale_pool(again, urgent, fleet(new, old), seen(patched(pods, kube)), Memory())
    assert "o0" not in again.pods_patched()


def converged(image: str, deployments: list[dict[str, Any]], pods: list[dict[str, Any]],
              status: dict[str, Any] | None = None, **update: Any) -> PoolSnapshot:
    b = body(image, status=status, **update)
    children = [c for c in _rendered(parse(b), Settings(), PoolSnapshot(b, []))[0]
                if c["kind"] != "Deployment"]
    return PoolSnapshot(b, children + deployments, pods, demand=None, demand_signal="")


def statuses(kube: FakeKube) -> list[dict[str, Any]]:
    return [w[2]["status"] for w in kube.writes if w[0] == "status"]


def reasons(kube: FakeKube) -> list[str]:
    return [w[1] for w in kube.writes if w[0] == "event"]


def test_the_status_conditions_and_events_of_a_rollout() -> None:
    old, new = live_deployment("desktop:1", 2), live_deployment("desktop:2", 2)
    r_old, r_new = revision_label(old), revision_label(new)
    drained = format_time(REAL - timedelta(minutes=5))
    pods = [host_pod("o0", r_old, 2, **{DRAINING_ANNOTATION: drained}),
            host_pod("o1", r_old, 1, **{DRAINING_ANNOTATION: drained}),
            host_pod("n0", r_new, 1), host_pod("n1", r_new, 0)]
    before = {"revision": r_old, "outdatedHosts": 0}
    kube = FakeKube()
    reconcile_pool(kube, Settings(), converged("desktop:2", [old, new], pods, before))
    [status] = statuses(kube)
    # 1 session + 1 free slot + 3 staying on outdated hosts need 3 hosts of 2, less the
    # one host's worth staying on outdated ones (drained: the surge is over): 2.
    assert (status["revision"], status["updatedHosts"], status["outdatedHosts"],
            status["updated"]) == (r_new, 2, 2, "2/4")
    assert "steady" in status["scalingReason"]
    rollout = status["rollout"]
    assert rollout["outdatedRevisions"] == [r_old] and rollout["pastDeadlineHosts"] == 0
    assert rollout["oldestOutdatedHost"]["name"] == "o0"
    assert rollout["oldestOutdatedHost"]["drainingSince"] == drained
    moving = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (moving["status"], moving["reason"]) == ("True", "RollingOut")
    assert moving["message"].startswith(f"2 of 4 hosts run revision {r_new}; 2 outdated")
    assert reasons(kube).count("RolloutStarted") == 1
    # The same facts again: nothing to write, nothing to say.
    again = FakeKube()
    kept = {**status, "observedGeneration": 20}
    reconcile_pool(again, Settings(), converged("desktop:2", [old, new],
                                                patched(pods, kube), kept))
    assert again.writes == [], [{k: (v, kept.get(k)) for k, v in w[2]["status"].items()
                                 if kept.get(k) != v} for w in again.writes]


def test_held_by_paused_the_pool_says_which_revision_waits() -> None:
    old = live_deployment("desktop:1", 2)
    pods = [host_pod("o0", revision_label(old), 0), host_pod("o1", revision_label(old), 1)]
    kube = FakeKube()
    snap = converged("desktop:2", [old], pods, {"revision": revision_label(old)},
                     paused=True)
    reconcile_pool(kube, Settings(), snap)
    assert not [w for w in kube.writes if w[0] == "apply" and "Deployment" in str(w[2])]
    [status] = statuses(kube)
    moving = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (moving["status"], moving["reason"]) == ("Unknown", "RolloutPaused")
    assert status["revision"] == revision_label(old)
    assert status["rollout"]["pendingRevision"] in moving["message"]
    assert "RolloutPaused" in reasons(kube)


def facts(**kw: Any) -> RolloutFacts:
    base: dict[str, Any] = {"revision": "b", "updated": 2, "outdated": 1,
                            "past_deadline": (), "pending": None, "oldest": None}
    return RolloutFacts(**{**base, **kw})


def test_rollout_events_are_edges() -> None:
    started = rollout_events({"revision": "a"}, {"revision": "b"}, facts())
    assert [e.reason for e in started] == ["RolloutStarted"]
    assert rollout_events({"revision": "b", "outdatedHosts": 1}, {"revision": "b"},
                          facts()) == []
    late = rollout_events({"revision": "b", "outdatedHosts": 1,
                           "rollout": {"pastDeadlineHosts": 0}}, {"revision": "b"},
                          facts(past_deadline=("o0",)))
    assert [(e.type, e.reason) for e in late] == [("Warning", "RolloutDeadlinePassed")]
    done = rollout_events({"revision": "b", "outdatedHosts": 1}, {"revision": "b"},
                          facts(outdated=0))
    assert [e.reason for e in done] == ["RolloutComplete"]
    assert rollout_events({}, {"revision": "b"}, facts(outdated=0)) == []  # a new pool


def legacy_deployment(replicas: int) -> dict[str, Any]:
    """A pool's Deployment as deskfleet rendered it before revisions: named after the
    pool, selecting every host of it, no revision label."""
    d = live_deployment("desktop:1", replicas)
    labels = {k: v for k, v in d["metadata"]["labels"].items() if k != REVISION_LABEL}
    template = d["spec"]["template"]
    return {**d, "metadata": {**d["metadata"], "name": "desk", "labels": labels,
                              "uid": "uid-legacy"},
            "spec": {**d["spec"], "selector": {"matchLabels": {"deskfleet.io/pool": "desk"}},
                     "template": {**template, "metadata": {"labels": {
                         k: v for k, v in template["metadata"]["labels"].items()
                         if k != REVISION_LABEL}}}}}


def test_a_deployment_from_before_revisions_drains_as_the_legacy_revision() -> None:
    legacy = legacy_deployment(2)
    pool = parse(body("desktop:1"))
    rendered = [build_deployment(pool, Settings())]
    fleet, desired, live = plan_fleet(pool, rendered, [legacy], None)
    assert fleet.current == revision_label(rendered[0]) and "" in fleet.deployments
    assert [c["metadata"]["name"] for c in desired] == [rendered[0]["metadata"]["name"]]
    assert live == []  # the generic sync never deletes it: the scaler drains it
    # Its hosts (no revision label) are outdated; they drain once a new host can serve.
    pods = [host_pod("o0", "", 1), host_pod("o1", "", 0),
            host_pod("n0", fleet.current, 0)]
    for p in pods[:2]:
        del p["metadata"]["labels"][REVISION_LABEL]
    new = {**rendered[0], "metadata": {**rendered[0]["metadata"], "uid": "uid-new",
                                       "generation": 1}, "spec": {**rendered[0]["spec"],
                                                                  "replicas": 1}}
    kube = FakeKube()
    result = scale_pool(kube, pool.spec, Fleet(fleet.current, fleet.current,
                                               {"": legacy, fleet.current: new}),
                        seen(pods), Memory())
    assert set(result.decision.outdated) == {"o0", "o1"}
    assert set(result.decision.drain) == {"o0", "o1"}
    # Held (update.paused through the upgrade), the legacy Deployment stays current.
    held = parse(body("desktop:1", paused=True))
    fleet, desired, live = plan_fleet(held, [build_deployment(held, Settings())], [legacy],
                                      None)
    assert fleet.current == "" and fleet.pending is not None
    assert not [c for c in desired if c["kind"] == "Deployment"] and live == []
