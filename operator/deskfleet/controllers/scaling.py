"""The autoscaler's shell: observe a pool's hosts, ask the pure core, act.

Acting means, in this order: labels and drain annotations on hosts (who accepts new
sessions, who is busy and so protected by the PodDisruptionBudget, who drains, what its
users were told and whether they are being logged off), then removals, then the replica
count under the field manager `deskfleet-autoscaler` (the render never sets it, so the
two never fight).

The drain annotations are the core's memory: they are written once and read back as its
input (`host_from_pod`), so an operator restart loses no deadline and the text users
were shown never changes under them. The scheduling clock may be driven by tests (see
clock.py) while the cluster records real time: times are re-based both ways.

Removal takes two passes, so the ReplicaSet controller's choice is always ours: every
host carries a pod deletion cost that ranks it as we would (the ReplicaSet weighs cost
before anything else among running pods, e.g. before how crowded their node is); the
hosts to remove are first marked with the lowest cost, and only on a later pass, once
the mark has been seen, is the replica count lowered — the ReplicaSet deletes the
marked hosts. Seen by us is not seen by the ReplicaSet controller, whose pod cache can
lag its Deployment's by a second under load (a full CI run met it: the forced removal
of a host being logged off took a busy host instead). So the cost a host carried
before the mark ranks it too, and has been there for as long as the reason for it:
idle (no cost) < being logged off (LOGGING_OFF_COST, written at the logoff request,
at least `logoffTimeout` before a forced removal) < with sessions (BUSY_COST).

A pool has one Deployment per revision (render/revision.py): the current revision's
count grows and shrinks with demand, each outdated one's only shrinks, by the hosts
that leave it; an outdated Deployment with no replica and no host is deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..agent.annotations import (
    DISCONNECTED_ANNOTATION,
    DRAIN_MESSAGE_ANNOTATION,
    DRAINING_ANNOTATION,
    LOGOFF_DEADLINE_ANNOTATION,
    LOGOFF_REQUESTED_ANNOTATION,
    REPORTED_AT_ANNOTATION,
    SESSIONS_ANNOTATION,
)
from ..api.sessionhostpool import SessionHostPoolSpec
from ..clock import format_time, parse_time, real_now, schedule_now
from ..conditions import is_true
from ..kube.client import Kube
from ..kube.resources import DEPLOYMENT, POD
from ..render.meta import ACCEPTING_LABEL, BUSY_LABEL
from ..render.revision import revision_label
from ..scaling.decide import Decision, Demand, Host, Memory, Notice, Revisions, decide
from .process import WrittenReplicas
from .revisions import Fleet

log = logging.getLogger(__name__)

AUTOSCALER = "deskfleet-autoscaler"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
VICTIM_COST = "-1000000"
LOGGING_OFF_COST = "1000"  # asked to log its users off: goes before any other busy host
BUSY_COST = "1000000"  # hosts with sessions (or an unknown count): last to go, always


def _ready(pod: dict[str, Any]) -> bool:
    """Ready as the ReplicaSet controller ranks pods when it scales down: on a node,
    Running, and its Ready condition True. It deletes a pod lacking any of these before
    any pod of lower deletion cost, so a busy host that is Ready but still Pending (a
    status half-written; the soak met one) must hold removals back as a not-ready one
    does (scaling/decide.py, rule 7)."""
    status = pod.get("status") or {}
    return (bool((pod.get("spec") or {}).get("nodeName")) and status.get("phase") == "Running"
            and is_true(status.get("conditions")))


def _count(text: str | None) -> int | None:
    try:
        return max(0, int(text)) if text is not None else None
    except ValueError:
        return None


def host_from_pod(pod: dict[str, Any], now: datetime, real: datetime) -> Host:
    meta = pod["metadata"]
    ann = meta.get("annotations") or {}

    # What the cluster records is real time; re-base it onto the scheduling clock so ages
    # stay true when tests drive that clock (in production the two are the same).
    def rebased(key: str) -> datetime | None:
        moment = parse_time(meta.get(key) if key == "creationTimestamp" else ann.get(key))
        return now - (real - moment) if moment else None

    return Host(
        name=meta["name"],
        created_at=rebased("creationTimestamp") or now,
        ready=_ready(pod),
        sessions=_count(ann.get(SESSIONS_ANNOTATION)),
        reported_at=rebased(REPORTED_AT_ANNOTATION),
        draining_since=rebased(DRAINING_ANNOTATION),
        disconnected=_count(ann.get(DISCONNECTED_ANNOTATION)),
        drain_message=ann.get(DRAIN_MESSAGE_ANNOTATION),
        logoff_deadline=rebased(LOGOFF_DEADLINE_ANNOTATION),
        logoff_requested_at=rebased(LOGOFF_REQUESTED_ANNOTATION),
        revision=revision_label(pod),
    )


@dataclass(frozen=True)
class Observed:
    """A pool's hosts as of one moment, on both clocks."""

    now: datetime  # the scheduling clock
    real: datetime  # what the cluster records
    pods: list[dict[str, Any]]  # not being deleted
    hosts: list[Host]  # the same, in the same order


def observe(pods: list[dict[str, Any]]) -> Observed:
    now, real = schedule_now(), real_now()
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return Observed(now, real, live, [host_from_pod(p, now, real) for p in live])


@dataclass(frozen=True)
class Plan:
    """The decision indexed by host (pools have hundreds of hosts)."""

    drain: frozenset[str]
    undrain: frozenset[str]
    remove: frozenset[str]
    logoff: frozenset[str]
    accepting: frozenset[str]
    notices: dict[str, Notice]

    @classmethod
    def of(cls, d: Decision) -> Plan:
        return cls(frozenset(d.drain), frozenset(d.undrain), frozenset(d.remove),
                   frozenset(d.logoff), frozenset(d.accepting),
                   {n.host: n for n in d.notices})


@dataclass(frozen=True)
class Marks:
    """What one host should carry after this pass; None removes an annotation."""

    labels: dict[str, str]
    annotations: dict[str, str | None]
    deadline_given: str | None = None  # a logoff deadline announced by this pass
    logoff_asked: bool = False  # this pass asks users (still there) to be logged off


def host_marks(pod: dict[str, Any], host: Host, plan: Plan, now: datetime,
               real: datetime) -> Marks:
    """The host's labels and annotations as the decision wants them. Pure.

    Level, not edge: a host that is not draining carries none of the drain annotations;
    one that drains carries its notice while it has one, the deadline announced first
    (rewritten only when an urgent rollout brings it forward), and the logoff request
    once asked (never rewritten)."""
    name = host.name
    have = pod["metadata"].get("annotations") or {}
    draining = have.get(DRAINING_ANNOTATION) if host.draining else None
    if name in plan.drain:
        draining = format_time(real)
    if name in plan.undrain:
        draining = None
    notice = plan.notices.get(name) if draining else None
    deadline: str | None = None
    given = None
    if notice is not None and notice.deadline is not None:
        if notice.deadline == host.logoff_deadline:
            deadline = have.get(LOGOFF_DEADLINE_ANNOTATION)
        else:  # new, or brought forward (urgent): on the scheduling clock; the pod
            # holds real time
            deadline = given = format_time(real + (notice.deadline - now))
    asked = bool(draining) and name in plan.logoff
    requested = None
    if asked:
        requested = (have.get(LOGOFF_REQUESTED_ANNOTATION) if host.logoff_requested_at
                     else format_time(real))
    busy = host.sessions is None or host.sessions > 0
    return Marks(
        labels={ACCEPTING_LABEL: str(name in plan.accepting).lower(),
                BUSY_LABEL: str(busy).lower()},
        annotations={
            DRAINING_ANNOTATION: draining,
            DRAIN_MESSAGE_ANNOTATION: notice.message if notice is not None else None,
            LOGOFF_DEADLINE_ANNOTATION: deadline,
            LOGOFF_REQUESTED_ANNOTATION: requested,
            DELETION_COST: VICTIM_COST if name in plan.remove else
            (LOGGING_OFF_COST if asked else BUSY_COST) if busy else None,
        },
        deadline_given=given,
        # A host that reports no session has nobody to log off: nothing to tell people.
        logoff_asked=asked and host.logoff_requested_at is None and host.sessions != 0)


@dataclass(frozen=True)
class ScalingResult:
    decision: Decision
    changed: bool
    deadlines_given: tuple[tuple[str, str], ...] = ()  # (host, deadline) new this pass
    logoffs_asked: tuple[str, ...] = ()  # hosts asked to log their users off this pass
    forced_removals: tuple[str, ...] = ()  # removed with sessions, after logoffTimeout


def _key(meta: dict[str, Any]) -> tuple[str, str, str]:
    # The uid too: a Deployment deleted and created again under its name (a rollback to
    # a revision already retired) starts its generations afresh.
    return (meta["namespace"], meta["name"], meta.get("uid") or "")


def _current_replicas(deployment: dict[str, Any], written: WrittenReplicas) -> int:
    """The count a stale snapshot of the Deployment shows, or the one this process wrote
    since (the Deployment and the pods arrive on different watch streams)."""
    meta = deployment["metadata"]
    seen = int((deployment.get("spec") or {}).get("replicas") or 0)
    generation, replicas = written.get(_key(meta)) or (0, seen)
    return replicas if int(meta.get("generation") or 0) < generation else seen


def scale_pool(kube: Kube, spec: SessionHostPoolSpec, fleet: Fleet, seen: Observed,
               memory: Memory, demand: Demand | None = None,
               written: WrittenReplicas | None = None) -> ScalingResult:
    """`written`: the replica counts this process wrote (ProcessState.replicas); None
    for a pass that remembers nothing."""
    written = WrittenReplicas() if written is None else written
    mine = fleet.current_deployment
    current = _current_replicas(mine, written) if mine is not None else 0
    outdated = {r: _current_replicas(d, written) for r, d in fleet.deployments.items()
                if r != fleet.current}
    decision = decide(spec, seen.hosts, seen.now, memory, current, demand,
                      Revisions(fleet.current, outdated))
    if spec.scaling.paused:
        return ScalingResult(decision, False)
    changed = False
    given: list[tuple[str, str]] = []
    asked: list[str] = []
    plan = Plan.of(decision)
    for pod, host in zip(seen.pods, seen.hosts, strict=True):
        marks = host_marks(pod, host, plan, seen.now, seen.real)
        changed |= _patch(kube, pod, marks)
        if marks.deadline_given:
            given.append((host.name, marks.deadline_given))
        if marks.logoff_asked:
            asked.append(host.name)
    by_name = {h.name: (p, h) for p, h in zip(seen.pods, seen.hosts, strict=True)}
    wanted = {fleet.current: decision.replicas, **dict(decision.outdated_replicas)}
    forced: list[str] = []
    for revision, deployment in sorted(fleet.deployments.items()):
        victims = [n for n in decision.remove if by_name[n][1].revision == revision]
        marked = [n for n in victims if _cost(by_name[n][0]) == VICTIM_COST]
        have = _current_replicas(deployment, written)
        # Victims marked only now keep their place in the count until the next pass; and
        # the count only ever goes down by the marked victims, so the ReplicaSet never
        # chooses.
        replicas = wanted.get(revision, have) + len(victims) - len(marked)
        if revision == fleet.current:
            replicas = max(replicas, have - len(marked))
        # Nor while a host of the revision that is no victim still carries a victim's
        # mark, as a host taken back into service does until its patch of this pass is
        # seen: the ReplicaSet could pick it.
        if any(_cost(p) == VICTIM_COST and h.revision == revision and h.name not in victims
               for p, h in zip(seen.pods, seen.hosts, strict=True)):
            replicas = max(replicas, have)
        if replicas != have:
            _write_replicas(kube, deployment, replicas, written)
            changed = True
            # A victim that never said it was empty goes because its logoff time ran out.
            forced += [n for n in marked if by_name[n][1].logoff_requested_at is not None
                       and by_name[n][1].sessions != 0]
    for revision in decision.retired:
        gone = fleet.deployments.get(revision)
        if gone is not None and _current_replicas(gone, written) == 0:
            meta = gone["metadata"]
            changed |= kube.delete(DEPLOYMENT, meta["namespace"], meta["name"], meta.get("uid"))
            written.forget(meta["namespace"], meta["name"])
    # The ReplicaSet deletes the marked victims itself (lowest deletion cost, every other
    # host ready): deleting them here too would race it into creating a replacement.
    if changed:
        log.info("scaled", extra={"replicas": decision.replicas, "reason": decision.reason})
    return ScalingResult(decision, changed, tuple(given), tuple(asked), tuple(forced))


def _cost(pod: dict[str, Any]) -> str | None:
    cost: str | None = (pod["metadata"].get("annotations") or {}).get(DELETION_COST)
    return cost


def _write_replicas(kube: Kube, deployment: dict[str, Any], replicas: int,
                    written: WrittenReplicas) -> None:
    meta = deployment["metadata"]
    applied = kube.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                          "spec": {"replicas": replicas}}, field_manager=AUTOSCALER)
    written.put(_key(meta), int(applied["metadata"].get("generation") or 0), replicas)


def _patch(kube: Kube, pod: dict[str, Any], marks: Marks) -> bool:
    meta = pod["metadata"]
    have_labels = meta.get("labels") or {}
    have_ann = meta.get("annotations") or {}
    patch: dict[str, Any] = {}
    if any(have_labels.get(k) != v for k, v in marks.labels.items()):
        patch["labels"] = marks.labels
    if any(have_ann.get(k) != v for k, v in marks.annotations.items()):
        patch["annotations"] = marks.annotations
    if not patch:
        return False
    kube.merge_patch(POD, meta["namespace"], meta["name"], {"metadata": patch})
    return True
