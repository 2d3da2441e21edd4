"""The autoscaler's shell: observe a pool's hosts, ask the pure core, act.

Acting means, in this order: labels on hosts (who accepts new sessions, who is busy and
so protected by the PodDisruptionBudget, who drains), then removals, then the replica
count under the field manager `deskfleet-autoscaler` (the render never sets it, so the
two never fight).

Removal takes two passes, so the ReplicaSet controller's choice is always ours: hosts
with sessions carry a high pod deletion cost all the time (the ReplicaSet weighs cost
before anything else among running pods, e.g. before how crowded their node is); the
hosts to remove are first marked with the lowest cost, and only on a later pass, once
the mark has been seen, is the replica count lowered — the ReplicaSet deletes the
marked hosts — and are they deleted by UID as well.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..agent.reporter import DRAINING_ANNOTATION, REPORTED_AT_ANNOTATION, SESSIONS_ANNOTATION
from ..api.sessionhostpool import SessionHostPoolSpec
from ..clock import format_time, parse_time, real_now, schedule_now
from ..kube.client import Kube
from ..kube.resources import POD
from ..render.meta import ACCEPTING_LABEL, BUSY_LABEL
from ..scaling.decide import Decision, Host, Memory, accepting, decide

log = logging.getLogger(__name__)

AUTOSCALER = "deskfleet-autoscaler"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
VICTIM_COST = "-1000000"
BUSY_COST = "1000000"  # hosts with sessions (or an unknown count): last to go, always


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def host_from_pod(pod: dict[str, Any], now: datetime, real: datetime) -> Host:
    meta = pod["metadata"]
    ann = meta.get("annotations") or {}
    sessions: int | None
    try:
        sessions = max(0, int(ann[SESSIONS_ANNOTATION]))
    except (KeyError, ValueError):
        sessions = None
    # What the cluster records is real time; re-base it onto the scheduling clock so ages
    # stay true when tests drive that clock (in production the two are the same).
    reported = parse_time(ann.get(REPORTED_AT_ANNOTATION))
    created = parse_time(meta.get("creationTimestamp"))
    drained = parse_time(ann.get(DRAINING_ANNOTATION))
    return Host(
        name=meta["name"],
        created_at=now - (real - created) if created else now,
        ready=_ready(pod),
        sessions=sessions,
        reported_at=now - (real - reported) if reported else None,
        draining_since=now - (real - drained) if drained else None,
    )


@dataclass(frozen=True)
class ScalingResult:
    decision: Decision
    changed: bool


# The Deployment and the pods arrive on different watch streams, so a pass can see an
# older replica count than the one this process last wrote: remember what was written
# (and the generation it produced) and read a stale snapshot through it.
_written: dict[tuple[str, str], tuple[int, int]] = {}


def _current_replicas(deployment: dict[str, Any]) -> int:
    meta = deployment["metadata"]
    seen = int((deployment.get("spec") or {}).get("replicas") or 0)
    generation, replicas = _written.get((meta["namespace"], meta["name"]), (0, seen))
    return replicas if int(meta.get("generation") or 0) < generation else seen


def scale_pool(kube: Kube, spec: SessionHostPoolSpec, deployment: dict[str, Any],
               pods: list[dict[str, Any]], memory: Memory) -> ScalingResult:
    now, real = schedule_now(), real_now()
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    hosts = [host_from_pod(p, now, real) for p in live]
    current = _current_replicas(deployment)
    decision = decide(spec, hosts, now, memory, current)
    if spec.scaling.paused:
        return ScalingResult(decision, False)
    changed = _label_hosts(kube, spec, live, hosts, decision, real)
    by_name = {p["metadata"]["name"]: p for p in live}
    marked = [n for n in decision.remove
              if (by_name[n]["metadata"].get("annotations") or {}).get(DELETION_COST)
              == VICTIM_COST]
    # Victims marked only now keep their place in the count until the next pass; and the
    # count only ever goes down by the marked victims, so the ReplicaSet never chooses.
    replicas = max(decision.replicas + len(decision.remove) - len(marked),
                   current - len(marked))
    if replicas != current:
        meta = deployment["metadata"]
        applied = kube.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                              "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                              "spec": {"replicas": replicas}}, field_manager=AUTOSCALER)
        _written[(meta["namespace"], meta["name"])] = (
            int(applied["metadata"].get("generation") or 0), replicas)
        changed = True
    # The ReplicaSet deletes the marked victims itself (lowest deletion cost, every other
    # host ready): deleting them here too would race it into creating a replacement.
    if changed:
        log.info("scaled", extra={"replicas": decision.replicas, "reason": decision.reason})
    return ScalingResult(decision, changed)


def _label_hosts(kube: Kube, spec: SessionHostPoolSpec, pods: list[dict[str, Any]],
                 hosts: list[Host], decision: Decision, real: datetime) -> bool:
    """`real`: what the cluster records is real time, like every timestamp it holds."""
    changed = False
    for pod, host in zip(pods, hosts, strict=True):
        name = host.name
        recorded = (pod["metadata"].get("annotations") or {}).get(DRAINING_ANNOTATION)
        draining: str | None = recorded if host.draining_since else None
        if name in decision.drain:
            draining = format_time(real)
        if name in decision.undrain:
            draining = None
        view = Host(host.name, host.created_at, host.ready, host.sessions, host.reported_at,
                    real if draining else None)
        busy = host.sessions is None or host.sessions > 0
        labels = {ACCEPTING_LABEL: str(accepting(view, spec.sessions_per_host)).lower(),
                  BUSY_LABEL: str(busy).lower()}
        annotations: dict[str, str | None] = {
            DRAINING_ANNOTATION: draining,
            DELETION_COST: VICTIM_COST if name in decision.remove else
            (BUSY_COST if busy else None),
        }
        meta = pod["metadata"]
        have_labels = meta.get("labels") or {}
        have_ann = meta.get("annotations") or {}
        patch: dict[str, Any] = {}
        if any(have_labels.get(k) != v for k, v in labels.items()):
            patch["labels"] = labels
        if any(have_ann.get(k) != v for k, v in annotations.items()):
            patch["annotations"] = annotations
        if patch:
            kube.merge_patch(POD, meta["namespace"], name, {"metadata": patch})
            changed = True
    return changed

