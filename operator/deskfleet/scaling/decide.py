"""The scaling decision: a pure function of (pool spec, hosts, time, memory, demand).

The rules, in the order they are applied:

1. `paused`: nothing changes (like KEDA's pause). A pool without agents
   (`agent.enabled: false`) has no session signal by design: it holds its host count,
   growing only to the floor (so schedule phases still apply) and never shrinking, like
   an HPA whose metric is unavailable.
2. The floor is the pool's `minHosts`, raised by the schedule phase in force. The free
   slots to keep are the users waiting plus the larger of the buffer (the phase's if it
   sets one, else the pool's, else 2 slots) and the logons expected while a new host
   starts (`demand.py`). Everything is capped at `maxHosts`, which counts every host
   including draining ones. Without a demand signal at all (`demand=None`) at least one
   slot is kept free, since a logon that finds the pool full is then invisible; with
   one, a buffer of 0 means 0, and a pool with `minHosts: 0` can empty entirely — the
   next launch starts a host.
3. Hosts needed = ceil((load + sessions about to be logged off + free slots) /
   sessionsPerHost), at least the floor. Load is the sessions on serving hosts, with a
   disconnected session counted like any other; a host whose agent stopped reporting
   counts as full; one whose agent never reported counts as empty (it is kept, but does
   not make the pool grow). Sessions on draining hosts whose logoff deadline falls
   within a host's start-up time are counted too: those users will be back.
4. Short of hosts: first put draining hosts back into service (they are warm and hold
   sessions; those without a deadline first, never one already logging off), then add
   hosts, at most `maxScaleOutStep` at a time.
5. Surplus: only if every ready host's signal is fresh, and only once the surplus has
   lasted `scaleInDelay`; then the emptiest hosts (not-ready first, then fewest sessions,
   youngest) start draining, at most `maxScaleInStep` at a time. Draining takes a host
   out of the Service; its sessions stay; its users get the notice (`drain.py`), with
   a deadline if forced logoff is in force.
6. A draining host past its deadline is asked to log its users off. It is removed when
   it reports zero sessions in a report made at least DRAIN_GRACE_SECONDS after the
   drain began (the Service has stopped routing logons to it, and any that landed are
   counted), or it never became ready and never reported, or it was asked to log off
   `logoffTimeout` ago. A host with sessions, or whose count is unknown, is otherwise
   never removed; no host is drained and removed in one pass.
7. Removal lowers the replica count and marks the victims with the lowest pod deletion
   cost; it waits until every other host is ready, because the ReplicaSet controller
   prefers not-ready pods as victims regardless of cost.
8. Placement (`placement.py`): which serving hosts accept new sessions — all with a free
   slot (breadth-first), or the fewest fullest that hold the free slots (depth-first,
   or `auto` while there is a surplus).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from ..api.common import parse_duration
from ..api.sessionhostpool import SessionHostPoolSpec
from .demand import Demand, free_slots_to_keep
from .drain import (
    DRAIN_GRACE_SECONDS,
    DrainPolicy,
    Notice,
    deadline,
    drain_policy,
    notice,
    removable,
)
from .hosts import Host, Signal, accepts, load, signal
from .placement import accepting_hosts
from .schedule import PhaseView, active_phase

__all__ = ["DRAIN_GRACE_SECONDS", "Decision", "Demand", "Host", "Memory", "Notice",
           "accepting", "decide"]

DEFAULT_BUFFER_SESSIONS = 2


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
    sessions: int = 0  # known sessions across the pool, disconnected ones included
    capacity: int = 0  # slots on ready, serving hosts
    drain: tuple[str, ...] = ()  # start draining now
    undrain: tuple[str, ...] = ()  # back into service: notice and deadline withdrawn
    remove: tuple[str, ...] = ()
    # Level, not edge: every draining host's notice, and every host that must have the
    # logoff request, as they should be on the pods after this pass.
    notices: tuple[Notice, ...] = ()
    logoff: tuple[str, ...] = ()
    accepting: tuple[str, ...] = ()  # hosts labelled to take new sessions
    stale: tuple[str, ...] = ()  # ready hosts without a fresh report
    unknown: tuple[str, ...] = ()  # of those, hosts whose agent never reported
    disconnected: int = 0  # of `sessions`, users disconnected

    @property
    def signal_ok(self) -> bool:
        return not self.stale


def accepting(host: Host, sessions_per_host: int) -> bool:
    """Whether new sessions may land on the host at all (the Service selects only these)."""
    return accepts(host, sessions_per_host)


def _buffer(spec: SessionHostPoolSpec, phase: PhaseView, sessions: int) -> int:
    scaling = spec.scaling
    if phase.buffer_sessions is not None or phase.buffer_percent is not None:
        slots, percent = phase.buffer_sessions, phase.buffer_percent
    else:
        slots, percent = scaling.buffer_sessions, scaling.buffer_percent
    if slots is None and percent is None:
        return DEFAULT_BUFFER_SESSIONS
    return slots if slots is not None else math.ceil(sessions * (percent or 0) / 100)


@dataclass
class _Sizing:
    """How many hosts the pool needs, as hosts move between draining and serving."""

    spec: SessionHostPoolSpec
    phase: PhaseView
    demand: Demand | None
    startup: float
    floor: int
    active_load: int = 0
    returning: int = 0  # sessions about to be logged off: their users will be back

    def keep_free(self) -> int:
        buffer = _buffer(self.spec, self.phase, self.active_load)
        if self.demand is None:
            return max(1, buffer)
        return free_slots_to_keep(self.demand, buffer, self.startup,
                                  self.spec.scaling.demand.margin_percent)

    def needed(self) -> int:
        per_host = self.spec.sessions_per_host
        want = math.ceil((self.active_load + self.returning + self.keep_free()) / per_host)
        return min(max(want, self.floor), self.spec.scaling.max_hosts)

    def summary(self, target: int) -> str:
        s = self.spec.scaling
        back = f" + {self.returning} being logged off" if self.returning else ""
        return (f"{self.active_load} sessions{back} + {self.keep_free()} free slots need "
                f"{target} hosts of {self.spec.sessions_per_host} slots (phase "
                f"{self.phase.name}, floor {self.floor}, max {s.max_hosts})")


def _undrain_order(host: Host) -> tuple[bool, float, int, str]:
    """Hosts without a deadline first (their users were told nothing pressing), most
    sessions first; then those with the latest deadline."""
    when = host.logoff_deadline.timestamp() if host.logoff_deadline else 0.0
    return (host.logoff_deadline is not None, -when, -(host.sessions or 0), host.name)


def decide(spec: SessionHostPoolSpec, hosts: Sequence[Host], now: datetime,
           memory: Memory, current_replicas: int, demand: Demand | None = None) -> Decision:
    scaling = spec.scaling
    per_host = spec.sessions_per_host
    max_age = parse_duration(scaling.signal_max_age).total_seconds()
    phase = active_phase(scaling.schedule, now)
    hosts = sorted(hosts, key=lambda h: h.name)  # input order never matters
    trust = {h.name: signal(h, now, max_age) for h in hosts}
    fresh = [h for h in hosts if trust[h.name] is Signal.FRESH]
    known = sum(h.sessions or 0 for h in fresh)
    disconnected = sum(h.disconnected or 0 for h in fresh)
    serving = [h for h in hosts if not h.draining]
    capacity = sum(per_host for h in serving if h.ready)

    if scaling.paused:
        return Decision(current_replicas, "none", "autoscaling is paused", phase, memory,
                        known, capacity, disconnected=disconnected)

    stale = [h.name for h in hosts if h.ready and trust[h.name] is not Signal.FRESH]
    unknown = [h.name for h in hosts if trust[h.name] is Signal.UNKNOWN]
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
        # Without counts every serving host takes logons (the Service must not empty).
        return Decision(have + added, "up" if added else "none", reason, phase, memory,
                        known, capacity, disconnected=disconnected,
                        accepting=tuple(h.name for h in serving))

    policy = drain_policy(spec, phase)
    startup = (demand.startup_seconds if demand and demand.startup_seconds
               else parse_duration(scaling.demand.startup_estimate).total_seconds())
    horizon = now + timedelta(seconds=startup)

    def host_load(h: Host) -> int:
        return load(h, trust[h.name], per_host)

    def returning(h: Host) -> int:
        when = deadline(h, policy, now)
        return host_load(h) if when is not None and when <= horizon else 0

    draining = [h for h in hosts if h.draining]
    sizing = _Sizing(spec, phase, demand, startup, floor,
                     active_load=sum(host_load(h) for h in serving),
                     returning=sum(returning(h) for h in draining))
    active = list(serving)
    undrain: list[Host] = []
    # Never back into service: a host already told to log its users off.
    candidates = sorted((h for h in draining if not (
        h.logoff_requested_at or (deadline(h, policy, now) or horizon) <= now)),
        key=_undrain_order)
    while candidates and sizing.needed() > len(active) + pending - surge:
        host = candidates.pop(0)
        draining.remove(host)
        undrain.append(host)
        active.append(host)
        sizing.returning -= returning(host)
        sizing.active_load += host_load(host)
    target = sizing.needed()
    have = len(active) + pending - surge  # serving hosts the Deployment asks for
    summary = sizing.summary(target)

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
        if (now - since).total_seconds() < delay:
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

    drained_now = [replace(h, draining_since=now) for h in drain]
    notices, logoff, remove = _retire([*draining, *drained_now], policy, now, max_age)
    keep = {h.name for h in hosts} - set(remove)
    if remove and (pending or any(not h.ready for h in hosts if h.name in keep)):
        reason += "; removal waits until every other host is ready"
        remove = []
    if surge and (drain or remove):
        reason += (f"; {surge} more hosts than replicas (a rolling update): not draining "
                   f"or removing until it is over")
        drain, remove = [], []
        notices = tuple(n for n in notices if n.host not in {h.name for h in drained_now})
        direction = "up" if added or undrain else "none"
    if remove and direction == "none":
        direction = "down"
    if remove:
        reason += f"; removing {', '.join(remove)}"
    if logoff:
        reason += f"; logging users off {', '.join(logoff[:5])}"
    drained_names = {h.name for h in drain}
    still_serving = [h for h in active if h.name not in drained_names]
    mode = phase.load_balancing or scaling.load_balancing
    placed = accepting_hosts(still_serving, per_host, mode, surplus=target < have,
                             keep_free=sizing.keep_free())
    return Decision(
        replicas=current_replicas + added - len(remove), direction=direction, reason=reason,
        phase=phase, memory=memory, sessions=known, capacity=capacity,
        drain=tuple(h.name for h in drain), undrain=tuple(h.name for h in undrain),
        remove=tuple(remove), notices=notices, logoff=logoff, accepting=placed,
        stale=tuple(stale), unknown=tuple(unknown), disconnected=disconnected)


def _retire(draining: list[Host], policy: DrainPolicy, now: datetime,
            max_age: float) -> tuple[tuple[Notice, ...], tuple[str, ...], list[str]]:
    """Each draining host's notice, the hosts to log off, and those that may go."""
    notices: list[Notice] = []
    logoff: list[str] = []
    remove: list[str] = []
    for host in sorted(draining, key=lambda h: h.name):
        when = deadline(host, policy, now)
        shown = notice(host, policy, when)
        if shown is not None:
            notices.append(shown)
        if when is not None and when <= now:
            logoff.append(host.name)
        if removable(host, now, max_age, policy):
            remove.append(host.name)
    return tuple(notices), tuple(logoff), remove
