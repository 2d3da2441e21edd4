"""A simulated pool of session hosts, in continuous time between autoscaler ticks.

- A host has `sessions_per_host` slots and becomes ready its start-up time after the
  replica increase that created it (the start-up may vary from host to host).
- A logon goes to a ready, serving host that accepts sessions (the `accepting` label the
  Service selects on) and has a free slot: chosen at random among them as a Service
  does, or the least loaded as a least-connections gateway does. With none, it waits in
  a first-come-first-served queue and is served as soon as a slot opens on an accepting
  host; its session then lasts its full length.
- A session may end with a disconnected tail: the user has gone, the host keeps the
  session. It holds its slot; TCP counting cannot see it.
- Sessions are never moved. A host asked to log its users off does so within
  LOGOFF_SECONDS (the sessions still count meanwhile). Removing a host cuts the sessions
  still on it. A user whose session ends this way while they were still connected logs
  on again at once for the rest of their work (a reconnect, placed like any logon).

Times are float seconds from the simulation's origin. Figures are kept only for what
happens inside the measured window [measure_from, measure_to): logons that arrive in it,
cuts and logoffs that happen in it, host-seconds spent in it.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, cast

Placement = Literal["random", "least-loaded"]
LOGOFF_SECONDS = 30.0  # how long a host takes to log its users off when asked
_END, _DISCONNECT, _READY, _LOGON = 0, 1, 2, 3  # same-moment order: frees before takes


@dataclass
class SimHost:
    name: str
    created: float
    ready_at: float
    sessions: set[int] = field(default_factory=set)
    connected: int = 0  # of those, with their user connected
    draining_since: float | None = None
    accepting: bool = True  # new pods carry accepting=true from the template
    logoff_deadline: float | None = None  # announced in the drain notice
    noticed_at: float | None = None
    logoff_requested_at: float | None = None
    revision: int = 0  # the template it was created from (an image change makes another)
    # (moment, sessions, connected) at every change: what a lagging agent reported.
    history: list[tuple[float, int, int]] = field(default_factory=list)

    def ready(self, now: float) -> bool:
        return self.ready_at <= now

    def reported(self, moment: float) -> tuple[int, int]:
        """(sessions, connected) as of `moment`."""
        i = bisect_right(self.history, (moment, float("inf"), float("inf"))) - 1
        return (self.history[i][1], self.history[i][2]) if i >= 0 else (0, 0)


@dataclass(eq=False)
class Live:
    """A session in progress (events hold it: one that ended early finds itself gone)."""

    session: int
    host: str
    planned_end: float  # when it ends if nothing intervenes
    connected_until: float  # after this its user is gone (the disconnected tail)
    end: float  # when it ends: planned_end, or sooner if its user is logged off
    logged_off: bool = False
    disconnected: bool = False  # its user has gone (its tail has begun)


@dataclass
class Tally:
    """What a pool did to its users during the measured window."""

    logons: int = 0
    reconnects: int = 0  # logons again after a cut or a forced logoff
    waits: list[float] = field(default_factory=list)  # seconds, one per logon that waited
    cut: int = 0  # sessions ended by removing their host, their users never told
    cut_after_notice: int = 0  # ... after a notice and a logoff request the host ignored
    logged_off: int = 0  # sessions logged off after a notice with a deadline
    notice_seconds: list[float] = field(default_factory=list)  # per logged-off session
    host_seconds: float = 0.0
    serving_seconds: float = 0.0  # of ready hosts taking logons
    peak_hosts: int = 0
    outdated_until: float | None = None  # the last moment a host of an old template ran


class Cluster:
    def __init__(self, sessions_per_host: int, startup: float, measure_from: float,
                 measure_to: float, prefix: str = "host", placement: Placement = "random",
                 startup_spread: float = 0.0, seed: int = 0) -> None:
        self.per_host = sessions_per_host
        self.startup, self.startup_spread = startup, startup_spread
        self.measure_from, self.measure_to = measure_from, measure_to
        self.prefix = prefix
        self.placement = placement
        self.rng = random.Random(seed)
        self.hosts: dict[str, SimHost] = {}
        self.tally = Tally()
        self.startups: deque[float] = deque(maxlen=20)  # the latest hosts' start-up times
        self.launches: deque[tuple[float, bool]] = deque()  # (moment, found a free slot)
        self.ended: deque[float] = deque()  # when sessions ended on hosts taking logons
        self._created = 0
        self._live: dict[int, Live] = {}
        # (moment, kind, sequence, what): the sequence keeps `what` from being compared.
        self._events: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._queue: deque[tuple[int, float, float, float]] = deque()  # id, arrival, len, tail
        self._clock = float("-inf")
        self.revision = 0  # the template new hosts are created from

    # --- what an autoscaler sees -------------------------------------------------------
    @property
    def waiting(self) -> int:
        return len(self._queue)

    @property
    def sessions(self) -> int:
        return len(self._live)

    def serving_slots(self, now: float) -> int:
        return self.per_host * sum(1 for h in self.hosts.values()
                                   if h.ready(now) and h.draining_since is None)

    def recent_launches(self, now: float, window: float) -> tuple[int, int]:
        """(launches, sessions that ended on serving hosts) over [now - window, now];
        older ones are forgotten."""
        while self.launches and self.launches[0][0] < now - window:
            self.launches.popleft()
        while self.ended and self.ended[0] < now - window:
            self.ended.popleft()
        return len(self.launches), len(self.ended)

    def _measured(self, moment: float) -> bool:
        return self.measure_from <= moment < self.measure_to

    # --- time passing ------------------------------------------------------------------
    def _push(self, moment: float, kind: int, what: object) -> None:
        self._seq += 1
        heapq.heappush(self._events, (moment, kind, self._seq, what))

    def advance(self, until: float, arrivals: list[tuple[int, float, float, float]]) -> None:
        """Play logons, disconnections, logoffs and hosts becoming ready, in time order,
        up to `until`. `arrivals` are (session id, arrival, length, disconnected tail)
        ordered by arrival, all <= until."""
        for logon in arrivals:
            self._push(logon[1], _LOGON, logon)
        while self._events and self._events[0][0] <= until:
            moment, kind, _, what = heapq.heappop(self._events)
            self._clock = moment
            if kind == _END:
                assert isinstance(what, Live)
                self._end(what, moment)
            elif kind == _DISCONNECT:
                assert isinstance(what, Live)
                self._disconnect(what, moment)
            elif kind == _READY:
                host = self.hosts.get(str(what))
                if host is not None and host.ready_at == moment:
                    self.startups.append(host.ready_at - host.created)
                    self._serve_queue(moment)
            else:
                session, at, length, tail = cast(tuple[int, float, float, float], what)
                self._logon(session, at, length, tail)
        self._clock = until

    def bill(self, start: float, end: float) -> None:
        """Count the hosts that exist over [start, end) (the count only changes at ticks)."""
        lo, hi = max(start, self.measure_from), min(end, self.measure_to)
        if any(h.revision != self.revision for h in self.hosts.values()):
            self.tally.outdated_until = end
        if hi > lo:
            self.tally.host_seconds += len(self.hosts) * (hi - lo)
            self.tally.serving_seconds += self.serving_slots(start) / self.per_host * (hi - lo)
            self.tally.peak_hosts = max(self.tally.peak_hosts, len(self.hosts))

    def _record(self, host: SimHost, moment: float) -> None:
        if host.history and host.history[-1][0] == moment:
            host.history.pop()
        host.history.append((moment, len(host.sessions), host.connected))

    def _logon(self, session: int, arrival: float, length: float, tail: float,
               reconnect: bool = False) -> None:
        if self._measured(arrival):
            if reconnect:
                self.tally.reconnects += 1
            else:
                self.tally.logons += 1
        placed = not self._queue and self._place(session, arrival, length, tail, arrival)
        self.launches.append((arrival, placed))
        if not placed:
            self._queue.append((session, arrival, length, tail))

    def _candidates(self, now: float) -> list[SimHost]:
        return [h for h in self.hosts.values()
                if h.accepting and h.draining_since is None and h.ready_at <= now
                and len(h.sessions) < self.per_host]

    def _place(self, session: int, arrival: float, length: float, tail: float,
               now: float) -> bool:
        free = self._candidates(now)
        if not free:
            return False
        if self.placement == "random":
            host = free[self.rng.randrange(len(free))]
        else:  # the fewest sessions; ties to the oldest host (creation order)
            host = min(free, key=lambda h: len(h.sessions))
        host.sessions.add(session)
        host.connected += 1
        end = now + length
        live = self._live[session] = Live(session, host.name, end, end - tail, end)
        self._push(end, _END, live)
        if tail > 0:
            self._push(end - tail, _DISCONNECT, live)
        self._record(host, now)
        if now > arrival and self._measured(arrival):
            self.tally.waits.append(now - arrival)
        return True

    def _current(self, live: Live) -> bool:
        return self._live.get(live.session) is live

    def _end(self, live: Live, moment: float) -> None:
        if not self._current(live) or live.end != moment:
            return  # cut earlier, or logged off sooner (its own event ends it)
        host = self.hosts[live.host]
        host.sessions.discard(live.session)
        if not live.disconnected:
            host.connected -= 1
        del self._live[live.session]
        self._record(host, moment)
        if host.draining_since is None:
            self.ended.append(moment)
        if live.logged_off:
            self._back_later(live, moment)
        self._serve_queue(moment)

    def _disconnect(self, live: Live, moment: float) -> None:
        if not self._current(live) or live.end <= moment:
            return
        live.disconnected = True
        host = self.hosts[live.host]
        host.connected -= 1
        self._record(host, moment)

    def _back_later(self, live: Live, moment: float) -> None:
        """A user whose session was ended for them logs on again if they were still
        there, for what was left of their work (its disconnected tail included)."""
        if moment < live.connected_until:
            self._logon(live.session, moment, live.planned_end - moment,
                        live.planned_end - live.connected_until, reconnect=True)

    def _serve_queue(self, now: float) -> None:
        while self._queue:
            session, arrival, length, tail = self._queue[0]
            if not self._place(session, arrival, length, tail, now):
                return
            self._queue.popleft()

    # --- what an autoscaler does -------------------------------------------------------
    def apply(self, now: float, replicas: int, remove: tuple[str, ...] = (),
              drain: tuple[str, ...] = (), undrain: tuple[str, ...] = (),
              accepting: tuple[str, ...] | None = None,
              deadlines: dict[str, float | None] | None = None,
              logoff: tuple[str, ...] = (), revision: int = 0) -> None:
        """What the operator writes on the pods, then deletions, then new hosts (of the
        template in force, `revision`). A deadline brought forward (an urgent rollout)
        replaces the one announced."""
        self.revision = revision
        for name in undrain:
            host = self.hosts[name]
            host.draining_since = host.logoff_deadline = host.noticed_at = None
            host.logoff_requested_at = None
        for name in drain:
            self.hosts[name].draining_since = now
        for name, deadline in (deadlines or {}).items():
            host = self.hosts[name]
            if deadline is not None and (host.logoff_deadline is None
                                         or deadline < host.logoff_deadline):
                host.logoff_deadline, host.noticed_at = deadline, now
        for name in logoff:
            self._log_off(self.hosts[name], now)
        if accepting is not None:
            chosen = set(accepting)
            for host in self.hosts.values():
                host.accepting = host.name in chosen
        for name in remove:
            self._remove(self.hosts.pop(name), now)
        if replicas < len(self.hosts):
            raise ValueError(f"{len(self.hosts) - replicas} more hosts to delete than named")
        while len(self.hosts) < replicas:
            self._created += 1
            name = f"{self.prefix}-{self._created:05d}"
            spread = self.rng.uniform(-1, 1) * self.startup_spread if self.startup_spread else 0
            ready = now + max(0.0, self.startup + spread)
            self.hosts[name] = SimHost(name, now, ready, revision=revision)
            self._push(ready, _READY, name)
        self._serve_queue(now)

    def _log_off(self, host: SimHost, now: float) -> None:
        if host.logoff_requested_at is not None:
            return
        host.logoff_requested_at = now
        for session in sorted(host.sessions):
            live = self._live[session]
            if self._measured(now):
                self.tally.logged_off += 1
                self.tally.notice_seconds.append(now - (host.noticed_at or now))
            live.logged_off = True
            live.end = min(live.end, now + LOGOFF_SECONDS)
            self._push(live.end, _END, live)

    def _remove(self, host: SimHost, now: float) -> None:
        told = host.logoff_requested_at is not None
        for session in sorted(host.sessions):
            live = self._live.pop(session)
            if self._measured(now):
                if told:
                    self.tally.cut_after_notice += 1
                else:
                    self.tally.cut += 1
            self._back_later(live, now)

    def finish(self) -> None:
        """Logons still queued at the end count as having waited until then."""
        for _, arrival, _, _ in self._queue:
            if self._measured(arrival):
                self.tally.waits.append(self._clock - arrival)
