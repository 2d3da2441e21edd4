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

Revisions (`rollout.py`): hosts whose revision is not the current one are outdated.
They take logons only while no current host can; they drain with the update's notice
and deadline once the current revision holds the pool's free slots; their sessions
count as load that stays where it is; they are never put back into service; and their
revision keeps only the hosts it has. Removal rules 6 and 7 hold per revision (each is
its own ReplicaSet). Without outdated hosts every rule above reads as it always did.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
from .rollout import Revisions, surge_hosts, update_policy
from .schedule import PhaseView, active_phase

__all__ = ["DRAIN_GRACE_SECONDS", "Decision", "Demand", "Host", "Memory", "Notice",
           "Revisions", "accepting", "decide"]

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
    # Revisions: the current one's replicas are `replicas`; each outdated revision's
    # replicas after this pass, the outdated revisions whose Deployment may go (no host,
    # no replica), the outdated hosts, and those of them past their deadline.
    revision: str = ""
    outdated_replicas: tuple[tuple[str, int], ...] = ()
    retired: tuple[str, ...] = ()
    outdated: tuple[str, ...] = ()
    past_deadline: tuple[str, ...] = ()
    keep_free: int = 0  # free slots the pool keeps for logons
    current_takes_logons: bool = True  # else outdated hosts still serving take some

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
    outdated_load: int = 0  # sessions staying on outdated hosts
    surge: int = 0  # current-revision hosts ahead of demand while outdated ones remain

    def keep_free(self) -> int:
        buffer = _buffer(self.spec, self.phase, self.active_load + self.outdated_load)
        if self.demand is None:
            return max(1, buffer)
        return free_slots_to_keep(self.demand, buffer, self.startup,
                                  self.spec.scaling.demand.margin_percent)

    def needed(self) -> int:
        """Current-revision hosts: what the whole pool would need without a rollout,
        less the hosts' worth of sessions staying on outdated hosts (which offer no free
        slot), plus the surge. Without outdated hosts: the pool's need, as always."""
        per_host = self.spec.sessions_per_host
        load = self.active_load + self.returning + self.outdated_load
        pool = max(math.ceil((load + self.keep_free()) / per_host), self.floor)
        want = pool - self.outdated_load // per_host + self.surge
        return min(max(want, 0), self.spec.scaling.max_hosts)

    def summary(self, target: int) -> str:
        s = self.spec.scaling
        back = f" + {self.returning} being logged off" if self.returning else ""
        old = (f" (+ {self.outdated_load} staying on outdated hosts, surge {self.surge})"
               if self.outdated_load or self.surge else "")
        return (f"{self.active_load} sessions{back} + {self.keep_free()} free slots{old} "
                f"need {target} hosts of {self.spec.sessions_per_host} slots (phase "
                f"{self.phase.name}, floor {self.floor}, max {s.max_hosts})")


def _undrain_order(host: Host) -> tuple[bool, float, int, str]:
    """Hosts without a deadline first (their users were told nothing pressing), most
    sessions first; then those with the latest deadline."""
    when = host.logoff_deadline.timestamp() if host.logoff_deadline else 0.0
    return (host.logoff_deadline is not None, -when, -(host.sessions or 0), host.name)


def decide(spec: SessionHostPoolSpec, hosts: Sequence[Host], now: datetime,
           memory: Memory, current_replicas: int, demand: Demand | None = None,
           revisions: Revisions | None = None) -> Decision:
    """`current_replicas` is the current revision's; `revisions` names it and gives the
    other revisions' replicas (None: one revision, every host current)."""
    scaling = spec.scaling
    per_host = spec.sessions_per_host
    revisions = revisions or Revisions()
    current = revisions.current
    max_age = parse_duration(scaling.signal_max_age).total_seconds()
    phase = active_phase(scaling.schedule, now)
    hosts = sorted(hosts, key=lambda h: h.name)  # input order never matters
    trust = {h.name: signal(h, now, max_age) for h in hosts}
    fresh = [h for h in hosts if trust[h.name] is Signal.FRESH]
    known = sum(h.sessions or 0 for h in fresh)
    disconnected = sum(h.disconnected or 0 for h in fresh)
    serving = [h for h in hosts if not h.draining]
    capacity = sum(per_host for h in serving if h.ready)
    mine = [h for h in hosts if h.revision == current]
    outdated = [h for h in hosts if h.revision != current]
    kept = tuple(sorted(revisions.outdated.items()))

    if scaling.paused:
        return Decision(current_replicas, "none", "autoscaling is paused", phase, memory,
                        known, capacity, disconnected=disconnected, revision=current,
                        outdated_replicas=kept, outdated=tuple(h.name for h in outdated))

    stale = [h.name for h in hosts if h.ready and trust[h.name] is not Signal.FRESH]
    unknown = [h.name for h in hosts if trust[h.name] is Signal.UNKNOWN]
    # Pods the ReplicaSet is still creating count as starting hosts.
    pending = max(0, current_replicas - len(mine))
    # More hosts than replicas: a rolling update's surge (another writer changed the
    # template), or a deletion not yet seen. The count is then the Deployment's, never
    # the pods': counting the surge would raise replicas, which makes more surge, every
    # pass. Nothing of the revision is drained or removed until it is over, as the
    # ReplicaSets, not deletion cost, decide which pods go.
    surge = max(0, len(mine) - current_replicas)
    floor = min(max(scaling.min_hosts, phase.min_hosts or 0), scaling.max_hosts)
    policy = drain_policy(spec, phase)
    update = update_policy(spec, policy)

    def policy_of(h: Host) -> DrainPolicy:
        return policy if h.revision == current else update

    if not spec.agent.enabled:
        return _without_signal(spec, hosts, now, memory, current_replicas, revisions,
                               phase, floor, policy_of, max_age, known, capacity,
                               disconnected)

    startup = (demand.startup_seconds if demand and demand.startup_seconds
               else parse_duration(scaling.demand.startup_estimate).total_seconds())
    horizon = now + timedelta(seconds=startup)

    def host_load(h: Host) -> int:
        return load(h, trust[h.name], per_host)

    def returning(h: Host) -> int:
        when = deadline(h, policy_of(h), now)
        return host_load(h) if when is not None and when <= horizon else 0

    draining = [h for h in mine if h.draining]
    sizing = _Sizing(spec, phase, demand, startup, floor,
                     active_load=sum(host_load(h) for h in mine if not h.draining),
                     returning=sum(returning(h) for h in [*draining, *outdated]),
                     outdated_load=sum(host_load(h) - returning(h) for h in outdated),
                     # Ahead of demand only until the outdated hosts drain: enough new
                     # hosts to take over at once; afterwards demand decides.
                     surge=surge_hosts(spec, sum(1 for h in outdated if not h.draining)))
    active = [h for h in mine if not h.draining]
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
        # maxHosts counts every host of every revision; a rollout may exceed it by its
        # surge, so a pool at its maximum can still roll.
        room = (scaling.max_hosts + surge_hosts(spec, len(outdated)) - current_replicas
                - sum(_kept_replicas(revisions, outdated).values()))
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

    drained = {h.name for h in drain}
    still_serving = [h for h in active if h.name not in drained]
    starting = bool(pending or added or any(not h.ready for h in still_serving))
    # Whether the current revision takes every logon: its ready hosts hold the free
    # slots the pool keeps, or some and no more are on their way.
    takes = _takes_logons(still_serving, trust, per_host, sizing.keep_free(), starting)
    # Outdated hosts serving again after the switch (a storm, below) drain again only
    # once no current host is on its way: not at the first free slot, which would flap.
    switched = any(h.draining for h in outdated)
    retiring = [h for h in outdated if not h.draining
                and ((takes and not (switched and starting))
                     or (not h.ready and h.reported_at is None))]
    outdated_serving = [h for h in outdated if not h.draining and h not in retiring]
    if retiring:
        reason += (f"; {len(retiring)} outdated host(s) stop taking logons and drain"
                   if takes else "")
    # A storm the current revision cannot take while more hosts are on their way, in a
    # rollout with no deadline: rather than let logons wait for them, warm outdated hosts
    # serve again (as draining hosts would without a rollout) until the new ones are up.
    free = sum(per_host - load(h, trust[h.name], per_host)
               for h in [*still_serving, *outdated_serving] if h.ready)
    spare = [] if takes or not starting or update.force_logoff else _spare(
        outdated, trust, per_host, sizing.keep_free() - free)
    if spare:
        undrain += spare
        # They take logons at once: the storm is why they serve again.
        outdated_serving += [replace(h, draining_since=None) for h in spare]
        reason += (f", outdated host(s) back into service until the new ones are up: "
                   f"{', '.join(h.name for h in spare)}")
    drained_now = [replace(h, draining_since=now) for h in [*drain, *retiring]]
    notices, logoff, remove = _retire(
        [*draining, *(h for h in outdated if h.draining and h not in spare), *drained_now],
        policy_of, now, max_age)
    # Never drained and removed in one pass: the Service may still route a logon to it.
    remove = [r for r in remove if r not in {h.name for h in drained_now}]
    remove, held = _removable(remove, hosts, mine, revisions, pending)
    if held:
        reason += "; removal waits until every other host is ready"
    if surge and (drain or any(r in {h.name for h in mine} for r in remove)):
        reason += (f"; {surge} more hosts than replicas (a rolling update): not draining "
                   f"or removing until it is over")
        drain, drained = [], set()
        remove = [r for r in remove if r not in {h.name for h in mine}]
        notices = tuple(n for n in notices if n.host not in {h.name for h in drained_now}
                        or n.host in {h.name for h in retiring})
        direction = "up" if added or undrain else "none"
        still_serving = list(active)
    if remove and direction == "none":
        direction = "down"
    if remove:
        reason += f"; removing {', '.join(remove)}"
    if logoff:
        reason += f"; logging users off {', '.join(logoff[:5])}"
    mode = phase.load_balancing or scaling.load_balancing
    placed = accepting_hosts(still_serving, per_host, mode, surplus=target < have,
                             keep_free=sizing.keep_free())
    if not takes:
        # The current revision cannot take every logon yet: outdated hosts still serving
        # take them too, so none waits longer than without a rollout.
        placed = tuple(sorted((*placed, *accepting_hosts(
            outdated_serving, per_host, mode, surplus=False, keep_free=sizing.keep_free()))))
    removed = set(remove)
    mine_removed = sum(1 for h in mine if h.name in removed)
    outdated_replicas = _outdated_replicas(revisions, outdated, removed)
    past = tuple(h.name for h in outdated
                 if (when := deadline(h, update, now)) is not None and when <= now
                 and h.draining)
    return Decision(
        replicas=current_replicas + added - mine_removed, direction=direction,
        reason=reason, phase=phase, memory=memory, sessions=known, capacity=capacity,
        drain=tuple(h.name for h in [*drain, *retiring]),
        undrain=tuple(h.name for h in undrain), remove=tuple(remove), notices=notices,
        logoff=logoff, accepting=placed, stale=tuple(stale), unknown=tuple(unknown),
        disconnected=disconnected, revision=current,
        outdated_replicas=tuple(sorted(outdated_replicas.items())),
        retired=_retired(revisions, outdated), outdated=tuple(h.name for h in outdated),
        past_deadline=past, keep_free=sizing.keep_free(), current_takes_logons=takes)


def _spare(outdated: Sequence[Host], trust: dict[str, Signal], per_host: int,
           slots: int) -> list[Host]:
    """Draining outdated hosts to serve a storm: ready, with fresh counts and free
    slots, never one whose users were given a deadline; the fullest first (the emptiest
    keep draining towards removal), until they hold `slots` free (none if not positive)."""
    order = sorted((h for h in outdated if h.draining and h.ready and not h.logoff_deadline
                    and not h.logoff_requested_at and trust[h.name] is Signal.FRESH
                    and (h.sessions or 0) < per_host),
                   key=lambda h: (-(h.sessions or 0), h.name))
    chosen: list[Host] = []
    free = 0
    for h in order:
        if free >= slots:
            break
        chosen.append(h)
        free += per_host - (h.sessions or 0)
    return chosen


def _takes_logons(serving: Sequence[Host], trust: dict[str, Signal], per_host: int,
                  keep_free: int, starting: bool) -> bool:
    """Whether the current revision takes every logon (and outdated hosts drain): its
    ready hosts hold the free slots the pool keeps, or hold some and no current host is
    still on its way."""
    free = sum(per_host - load(h, trust[h.name], per_host) for h in serving if h.ready)
    return free > 0 and (free >= max(1, keep_free) or not starting)


def _kept_replicas(revisions: Revisions, outdated: Sequence[Host]) -> dict[str, int]:
    """Each outdated revision keeps only the hosts it has: its replicas, lowered to its
    pods (one lost is not replaced, one still to be created never is)."""
    count: dict[str, int] = {}
    for h in outdated:
        count[h.revision] = count.get(h.revision, 0) + 1
    return {r: min(n, count.get(r, 0)) for r, n in revisions.outdated.items()}


def _outdated_replicas(revisions: Revisions, outdated: Sequence[Host],
                       removed: set[str]) -> dict[str, int]:
    kept = _kept_replicas(revisions, outdated)
    for h in outdated:
        if h.name in removed and h.revision in kept:
            kept[h.revision] -= 1
    return kept


def _retired(revisions: Revisions, outdated: Sequence[Host]) -> tuple[str, ...]:
    """Outdated revisions with no host left and no replica: their Deployment may go."""
    have = {h.revision for h in outdated}
    return tuple(sorted(r for r, n in revisions.outdated.items() if n == 0 and r not in have))


def _removable(remove: Sequence[str], hosts: Sequence[Host], mine: Sequence[Host],
               revisions: Revisions, pending: int) -> tuple[list[str], bool]:
    """The removals the ReplicaSets will carry out as decided, and whether any waits.

    Each revision is its own ReplicaSet, which prefers not-ready pods as victims whatever
    their deletion cost: a revision loses hosts only while every other host of it is
    ready (and, for the current one, none is still being created) — or when every host
    it has goes. An outdated revision with more pods than replicas is still deleting:
    it waits too. A host whose revision has no Deployment cannot be removed by one."""
    victims = set(remove)
    by_revision: dict[str, list[Host]] = {}
    for h in hosts:
        by_revision.setdefault(h.revision, []).append(h)
    current = {h.name for h in mine}
    ok: list[str] = []
    held = False
    for name in remove:
        h = next(x for x in hosts if x.name == name)
        group = by_revision[h.revision]
        others_ready = all(x.ready for x in group if x.name not in victims)
        everyone = all(x.name in victims for x in group)
        if name in current:
            fine = pending == 0 and others_ready
        else:
            replicas = revisions.outdated.get(h.revision)
            fine = (replicas is not None and len(group) <= replicas
                    and (others_ready or everyone))
        if fine:
            ok.append(name)
        else:
            held = True
    return ok, held


def _without_signal(spec: SessionHostPoolSpec, hosts: Sequence[Host], now: datetime,
                    memory: Memory, current_replicas: int, revisions: Revisions,
                    phase: PhaseView, floor: int,
                    policy_of: Callable[[Host], DrainPolicy], max_age: float, known: int,
                    capacity: int, disconnected: int) -> Decision:
    """A pool without agents: it holds its host count, grows only to the floor, never
    scales in. In a rollout its current revision grows to the size of the largest
    outdated one (without counts, every outdated host is taken as full); outdated hosts
    drain once every current host is up, and — their sessions unknown — leave only
    after the update's deadline and logoffTimeout, or if they never became ready."""
    scaling = spec.scaling
    current = revisions.current
    mine = [h for h in hosts if h.revision == current]
    outdated = [h for h in hosts if h.revision != current]
    have = current_replicas
    hold = max(floor, max(_kept_replicas(revisions, outdated).values(), default=0))
    room = (scaling.max_hosts + surge_hosts(spec, len(outdated)) - current_replicas
            - sum(_kept_replicas(revisions, outdated).values()))
    added = max(0, min(hold - have, scaling.max_scale_out_step, room))
    reason = (f"no session signal (agent disabled): holding {have + added} hosts, "
              f"never fewer (phase {phase.name}, floor {floor})"
              + (f"; adding {added}" if added else ""))
    up = bool(mine) and not added and len(mine) >= current_replicas and all(
        h.ready for h in mine)
    retiring = [h for h in outdated if not h.draining
                and (up or (not h.ready and h.reported_at is None))]
    drained_now = [replace(h, draining_since=now) for h in retiring]
    notices, logoff, remove = _retire(
        [*(h for h in outdated if h.draining), *drained_now], policy_of, now, max_age)
    remove = [r for r in remove if r not in {h.name for h in drained_now}]
    remove, _ = _removable(remove, hosts, mine, revisions, 0)
    removed = set(remove)
    serving = [h for h in mine if not h.draining]
    takes = any(h.ready for h in serving)
    if not takes:
        serving += [h for h in outdated if not h.draining and h not in retiring]
    # Without counts every serving host takes logons (the Service must not empty).
    return Decision(have + added, "up" if added else ("down" if remove else "none"),
                    reason, phase, memory, known, capacity, disconnected=disconnected,
                    drain=tuple(h.name for h in retiring), remove=tuple(remove),
                    notices=notices, logoff=logoff,
                    accepting=tuple(sorted(h.name for h in serving)), revision=current,
                    outdated_replicas=tuple(sorted(
                        _outdated_replicas(revisions, outdated, removed).items())),
                    retired=_retired(revisions, outdated),
                    outdated=tuple(h.name for h in outdated), current_takes_logons=takes)


def _retire(draining: list[Host], policy_of: Callable[[Host], DrainPolicy], now: datetime,
            max_age: float) -> tuple[tuple[Notice, ...], tuple[str, ...], list[str]]:
    """Each draining host's notice, the hosts to log off, and those that may go."""
    notices: list[Notice] = []
    logoff: list[str] = []
    remove: list[str] = []
    for host in sorted(draining, key=lambda h: h.name):
        policy = policy_of(host)
        when = deadline(host, policy, now)
        shown = notice(host, policy, when)
        if shown is not None:
            notices.append(shown)
        if when is not None and when <= now:
            logoff.append(host.name)
        if removable(host, now, max_age, policy):
            remove.append(host.name)
    return tuple(notices), tuple(logoff), remove
