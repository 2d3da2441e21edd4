"""The scaling decision: a pure function of (pool spec, hosts, time, memory).

The rules, in the order they are applied:

1. `paused`: nothing changes (like KEDA's pause). A pool without agents
   (`agent.enabled: false`) has no session signal by design: it holds its host count,
   growing only to the floor (so schedule phases still apply) and never shrinking, like
   an HPA whose metric is unavailable.
2. The floor is the pool's `minHosts`, raised by the schedule phase in force; the buffer
   is the phase's if it sets one, else the pool's, else 2 slots — and never less than
   one slot: a logon that finds the pool full is invisible to the agents (it never
   becomes a session), so a pool with no free slot would never grow. Everything is
   capped at `maxHosts`, which counts every host including draining ones.
3. Hosts needed = ceil((sessions on serving hosts + buffer) / sessionsPerHost), at
   least the floor. A ready host whose report is older than `signalMaxAge`, or that has
   run that long without ever reporting, counts as full: missing data can only make the
   pool bigger. (A host younger than that with no report yet has just started: empty.)
4. Short of hosts: first put draining hosts back into service (they are warm and hold
   sessions), then add hosts, at most `maxScaleOutStep` at a time.
5. Surplus: only if every ready host's signal is fresh, and only once the surplus has
   lasted `scaleInDelay`; then the emptiest hosts (not-ready first, then fewest sessions,
   youngest) start draining, at most `maxScaleInStep` at a time. Draining takes a host
   out of the Service; its sessions stay.
6. A draining host is removed only when it reports zero sessions in a report made at
   least DRAIN_GRACE_SECONDS after it started draining (so the Service had time to stop
   routing logons to it, and any that landed meanwhile are counted), or it never became
   ready and never reported — or, if `drain.forceLogoff` is set, once it has drained for
   `drain.maxWait` (its users are logged off). A host with sessions, or whose count is
   unknown, is otherwise never removed. So a host is never drained and removed in one
   pass.
7. Removal lowers the replica count and marks the victims with the lowest pod deletion
   cost; it waits until every other host is ready, because the ReplicaSet controller
   prefers not-ready pods as victims regardless of cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from ..api.common import parse_duration
from ..api.sessionhostpool import SessionHostPoolSpec
from .schedule import PhaseView, active_phase

DEFAULT_BUFFER_SESSIONS = 2
# Endpoint changes take a moment to reach the gateway; a drained host's "empty" report
# counts only once it is this much younger than the drain.
DRAIN_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Host:
    name: str
    created_at: datetime
    ready: bool
    sessions: int | None = None  # the agent's last report; None: never reported
    reported_at: datetime | None = None
    draining_since: datetime | None = None

    def fresh(self, now: datetime, max_age_seconds: float) -> bool:
        return (self.sessions is not None and self.reported_at is not None
                and (now - self.reported_at).total_seconds() <= max_age_seconds)


@dataclass(frozen=True)
class Memory:
    """What a decision needs from earlier passes (kept in the pool's status)."""

    surplus_since: datetime | None = None


@dataclass(frozen=True)
class Decision:
    replicas: int
    direction: Literal["up", "down", "none"]
    reason: str
    phase: PhaseView
    memory: Memory
    sessions: int = 0  # known sessions across the pool
    capacity: int = 0  # slots on ready, serving hosts
    drain: tuple[str, ...] = ()
    undrain: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    logoff: tuple[str, ...] = field(default=())  # removed after a forced logoff
    stale: tuple[str, ...] = ()  # ready hosts without a fresh report

    @property
    def signal_ok(self) -> bool:
        return not self.stale


def accepting(host: Host, sessions_per_host: int) -> bool:
    """Whether new sessions may land on the host (the Service selects only these)."""
    if host.draining_since is not None:
        return False
    return host.sessions is None or host.sessions < sessions_per_host


def _buffer(spec: SessionHostPoolSpec, phase: PhaseView, sessions: int) -> int:
    scaling = spec.scaling
    if phase.buffer_sessions is not None or phase.buffer_percent is not None:
        slots, percent = phase.buffer_sessions, phase.buffer_percent
    else:
        slots, percent = scaling.buffer_sessions, scaling.buffer_percent
    if slots is None and percent is None:
        return DEFAULT_BUFFER_SESSIONS
    wanted = slots if slots is not None else math.ceil(sessions * (percent or 0) / 100)
    return max(1, wanted)


def _load(host: Host, now: datetime, max_age: float, per_host: int) -> int:
    if not host.ready:
        return 0  # sessions only land on ready hosts
    if host.fresh(now, max_age):
        return host.sessions or 0
    if host.reported_at is None and (now - host.created_at).total_seconds() <= max_age:
        return 0  # just started; its agent has not reported yet
    return per_host  # unknown: assume full, so missing data never shrinks the pool


def _removable(host: Host, now: datetime, max_age: float) -> bool:
    assert host.draining_since is not None
    if host.fresh(now, max_age) and host.sessions == 0:
        assert host.reported_at is not None
        return (host.reported_at - host.draining_since).total_seconds() >= DRAIN_GRACE_SECONDS
    return not host.ready and host.reported_at is None


def decide(spec: SessionHostPoolSpec, hosts: Sequence[Host], now: datetime,
           memory: Memory, current_replicas: int) -> Decision:
    scaling = spec.scaling
    per_host = spec.sessions_per_host
    max_age = parse_duration(scaling.signal_max_age).total_seconds()
    phase = active_phase(scaling.schedule, now)
    hosts = sorted(hosts, key=lambda h: h.name)  # input order never matters
    known = sum(h.sessions or 0 for h in hosts if h.fresh(now, max_age))
    serving = [h for h in hosts if h.draining_since is None]
    capacity = sum(per_host for h in serving if h.ready)

    if scaling.paused:
        return Decision(current_replicas, "none", "autoscaling is paused", phase, memory,
                        known, capacity)

    stale = [h.name for h in hosts if h.ready and not h.fresh(now, max_age)]
    # Pods the ReplicaSet is still creating count as starting hosts.
    pending = max(0, current_replicas - len(hosts))
    # More hosts than replicas: a rolling update's surge (or a deletion not yet seen).
    # The count is then the Deployment's, never the pods': counting the surge would raise
    # replicas, which makes more surge, every pass. Nothing is drained or removed until
    # it is over, as the ReplicaSets, not deletion cost, decide which pods go.
    surge = max(0, len(hosts) - current_replicas)
    floor = min(max(scaling.min_hosts, phase.min_hosts or 0), scaling.max_hosts)
    if not spec.agent.enabled:
        have = current_replicas
        added = max(0, min(floor - have, scaling.max_scale_out_step))
        reason = (f"no session signal (agent disabled): holding {have + added} hosts, "
                  f"never fewer (phase {phase.name}, floor {floor})"
                  + (f"; adding {added}" if added else ""))
        return Decision(have + added, "up" if added else "none", reason, phase, memory,
                        known, capacity)

    draining = sorted((h for h in hosts if h.draining_since is not None),
                      key=lambda h: (-(h.sessions or 0), h.name))
    undrain: list[Host] = []

    def needed(active: list[Host]) -> int:
        load = sum(_load(h, now, max_age, per_host) for h in active)
        want = math.ceil((load + _buffer(spec, phase, load)) / per_host)
        return min(max(want, floor), scaling.max_hosts)

    active = list(serving)
    while draining and needed(active) > len(active) + pending - surge:
        host = draining.pop(0)
        undrain.append(host)
        active.append(host)
    target = needed(active)
    have = len(active) + pending - surge  # serving hosts the Deployment asks for
    load = sum(_load(h, now, max_age, per_host) for h in active)
    summary = (f"{load} sessions + buffer {_buffer(spec, phase, load)} need {target} hosts "
               f"of {per_host} slots (phase {phase.name}, floor {floor}, max "
               f"{scaling.max_hosts})")

    drain: list[Host] = []
    added = 0
    direction: Literal["up", "down", "none"] = "none"
    if target > have:
        room = scaling.max_hosts - current_replicas
        added = max(0, min(target - have, scaling.max_scale_out_step, room))
        direction = "up" if added or undrain else "none"
        reason = f"{summary}; adding {added}" + (
            f", back into service: {', '.join(h.name for h in undrain)}" if undrain else "")
        memory = replace(memory, surplus_since=None)
    elif target < have and stale:
        reason = (f"{summary}; not scaling in: no fresh session report from "
                  f"{', '.join(stale[:5])}")
        memory = replace(memory, surplus_since=None)
    elif target < have:
        since = memory.surplus_since or now
        memory = replace(memory, surplus_since=since)
        delay = parse_duration(scaling.scale_in_delay).total_seconds()
        waited = (now - since).total_seconds()
        if waited < delay:
            # No running clock in the text: the status must not change every pass.
            reason = (f"{summary}; surplus of {have - target}, draining once it has lasted "
                      f"{scaling.scale_in_delay}")
        else:
            order = sorted(active, key=lambda h: (h.ready, h.sessions or 0,
                                                  -h.created_at.timestamp(), h.name))
            drain = order[:min(have - target, scaling.max_scale_in_step, len(order))]
            direction = "down"
            reason = f"{summary}; draining {', '.join(h.name for h in drain)}"
    else:
        reason = f"{summary}; steady"
        memory = replace(memory, surplus_since=None)

    # Retire draining hosts (including those drained just now) that may go.
    drained_now = [replace(h, draining_since=now) for h in drain]
    remove: list[str] = []
    logoff: list[str] = []
    max_wait = parse_duration(scaling.drain.max_wait).total_seconds()
    for host in [*draining, *drained_now]:
        assert host.draining_since is not None
        if _removable(host, now, max_age):
            remove.append(host.name)
        elif scaling.drain.force_logoff and (
                now - host.draining_since).total_seconds() >= max_wait:
            remove.append(host.name)
            logoff.append(host.name)
    keep = {h.name for h in hosts} - set(remove)
    if remove and (pending or any(not h.ready for h in hosts if h.name in keep)):
        reason += "; removal waits until every other host is ready"
        remove, logoff = [], []
    if surge and (drain or remove):
        reason += (f"; {surge} more hosts than replicas (a rolling update): not draining "
                   f"or removing until it is over")
        drain, remove, logoff = [], [], []
        direction = "up" if added or undrain else "none"
    if remove and direction == "none":
        direction = "down"
    if remove:
        reason += f"; removing {', '.join(remove)}"
    replicas = current_replicas + added - len(remove)  # = hosts + pending - surge + ...
    return Decision(
        replicas=replicas, direction=direction, reason=reason, phase=phase, memory=memory,
        sessions=known, capacity=capacity, drain=tuple(h.name for h in drain),
        undrain=tuple(h.name for h in undrain), remove=tuple(remove), logoff=tuple(logoff),
        stale=tuple(stale))
