"""A simulated pool of session hosts, in continuous time between autoscaler ticks.

- A host has `sessions_per_host` slots and becomes ready `startup` after the replica
  increase that created it.
- A logon lands "spread": on the ready, non-draining host with the fewest sessions that
  still has a free slot (ties: the oldest host). A logon that finds no free slot waits in
  a first-come-first-served queue and is served as soon as a slot frees or a host becomes
  ready; its session then lasts its full length.
- Sessions are never moved. Removing a host cuts the sessions still on it; their users
  log on again at once for the rest of their work (a reconnect, placed like any logon).

Times are float seconds from the simulation's origin. Figures are kept only for what
happens inside the measured window [measure_from, measure_to): logons that arrive in it,
cuts that happen in it, host-seconds spent in it.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field


@dataclass
class SimHost:
    name: str
    created: float
    ready_at: float
    sessions: set[int] = field(default_factory=set)
    draining_since: float | None = None

    def ready(self, now: float) -> bool:
        return self.ready_at <= now


@dataclass
class Tally:
    """What a pool did to its users during the measured window."""

    logons: int = 0
    reconnects: int = 0  # logons again after a cut
    waits: list[float] = field(default_factory=list)  # seconds, one per logon that waited
    cut: int = 0
    host_seconds: float = 0.0
    serving_seconds: float = 0.0  # of ready hosts taking logons


class Cluster:
    def __init__(self, sessions_per_host: int, startup: float, measure_from: float,
                 measure_to: float, prefix: str = "host") -> None:
        self.per_host = sessions_per_host
        self.startup = startup
        self.measure_from, self.measure_to = measure_from, measure_to
        self.prefix = prefix
        self.hosts: dict[str, SimHost] = {}
        self.tally = Tally()
        self._created = 0
        self._where: dict[int, tuple[str, float]] = {}  # live session -> (host, its end)
        self._ends: list[tuple[float, int]] = []  # heap of (end, session)
        self._ready: list[tuple[float, str]] = []  # heap of (ready_at, host name)
        self._queue: deque[tuple[int, float, float]] = deque()  # (session, arrival, length)
        self._clock = float("-inf")

    # --- what an autoscaler sees -------------------------------------------------------
    @property
    def waiting(self) -> int:
        return len(self._queue)

    @property
    def sessions(self) -> int:
        return len(self._where)

    def serving_slots(self, now: float) -> int:
        return self.per_host * sum(1 for h in self.hosts.values()
                                   if h.ready(now) and h.draining_since is None)

    def _measured(self, moment: float) -> bool:
        return self.measure_from <= moment < self.measure_to

    # --- time passing ------------------------------------------------------------------
    def advance(self, until: float, arrivals: list[tuple[int, float, float]]) -> None:
        """Play logons, logoffs and hosts becoming ready, in time order, up to `until`.

        `arrivals` are (session id, arrival, length) ordered by arrival, all <= until.
        On equal times a logoff or a ready host comes before a logon.
        """
        pending = deque(arrivals)
        while True:
            end = self._ends[0][0] if self._ends else float("inf")
            ready = self._ready[0][0] if self._ready else float("inf")
            logon = pending[0][1] if pending else float("inf")
            moment = min(end, ready, logon)
            if moment > until:
                break
            self._clock = moment
            if end == moment:
                _, session = heapq.heappop(self._ends)
                self._logoff(session, moment, end)
            elif ready == moment:
                heapq.heappop(self._ready)
                self._serve_queue(moment)
            else:
                self._logon(*pending.popleft())
        self._clock = until

    def bill(self, start: float, end: float) -> None:
        """Count the hosts that exist over [start, end) (the count only changes at ticks)."""
        lo, hi = max(start, self.measure_from), min(end, self.measure_to)
        if hi > lo:
            self.tally.host_seconds += len(self.hosts) * (hi - lo)
            self.tally.serving_seconds += self.serving_slots(start) / self.per_host * (hi - lo)

    def _logon(self, session: int, arrival: float, length: float,
               reconnect: bool = False) -> None:
        if self._measured(arrival):
            if reconnect:
                self.tally.reconnects += 1
            else:
                self.tally.logons += 1
        if self._queue or not self._place(session, arrival, length, arrival):
            self._queue.append((session, arrival, length))

    def _logoff(self, session: int, now: float, end: float) -> None:
        where = self._where.get(session)
        if where is None or where[1] != end:
            return  # cut with its host earlier (and perhaps placed again since)
        del self._where[session]
        self.hosts[where[0]].sessions.discard(session)
        self._serve_queue(now)

    def _place(self, session: int, arrival: float, length: float, now: float) -> bool:
        best: SimHost | None = None
        fewest = self.per_host
        for host in self.hosts.values():  # in creation order: ties go to the oldest
            count = len(host.sessions)
            if count < fewest and host.ready_at <= now and host.draining_since is None:
                best, fewest = host, count
        if best is None:
            return False
        best.sessions.add(session)
        self._where[session] = (best.name, now + length)
        heapq.heappush(self._ends, (now + length, session))
        if now > arrival and self._measured(arrival):
            self.tally.waits.append(now - arrival)
        return True

    def _serve_queue(self, now: float) -> None:
        while self._queue:
            session, arrival, length = self._queue[0]
            if not self._place(session, arrival, length, now):
                return
            self._queue.popleft()

    # --- what an autoscaler does -------------------------------------------------------
    def apply(self, now: float, replicas: int, remove: tuple[str, ...] = (),
              drain: tuple[str, ...] = (), undrain: tuple[str, ...] = ()) -> None:
        """Drain, undrain, delete the named hosts, then create hosts up to `replicas`."""
        for name in undrain:
            self.hosts[name].draining_since = None
        for name in drain:
            self.hosts[name].draining_since = now
        cut: list[tuple[int, float]] = []
        for name in remove:
            host = self.hosts.pop(name)
            for session in sorted(host.sessions):
                _, end = self._where.pop(session)  # its logoff event is skipped later
                cut.append((session, end - now))
                if self._measured(now):
                    self.tally.cut += 1
        if replicas < len(self.hosts):
            raise ValueError(f"{len(self.hosts) - replicas} more hosts to delete than named")
        while len(self.hosts) < replicas:
            self._created += 1
            name = f"{self.prefix}-{self._created:05d}"
            self.hosts[name] = SimHost(name, now, now + self.startup)
            heapq.heappush(self._ready, (now + self.startup, name))
        self._serve_queue(now)
        for session, rest in cut:
            self._logon(session, now, rest, reconnect=True)

    def finish(self) -> None:
        """Logons still queued at the end count as having waited until then."""
        for _, arrival, _ in self._queue:
            if self._measured(arrival):
                self.tally.waits.append(self._clock - arrival)
