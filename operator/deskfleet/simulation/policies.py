"""The autoscalers compared, behind one interface, and the clairvoyant lower bound.

Every policy sees the pool's hosts once per tick and answers with an `Action`: the
replica count it wants and, when that is lower than the host count, the hosts to delete.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from ..api.sessionhostpool import SessionHostPoolSpec
from ..scaling.decide import Host, Memory, decide
from .pool import SESSIONS_PER_HOST, STATIC_HEADROOM, HpaSettings, describe_pool


class HostState(NamedTuple):
    """One host as an autoscaler observes it."""

    name: str
    created_at: datetime
    ready: bool
    sessions: int
    draining_since: datetime | None = None


@dataclass(frozen=True)
class Action:
    replicas: int
    remove: tuple[str, ...] = ()  # deleted now; their sessions, if any, are cut
    drain: tuple[str, ...] = ()  # stop taking new sessions
    undrain: tuple[str, ...] = ()  # take new sessions again


class Policy(Protocol):
    name: str

    def step(self, now: datetime, hosts: Sequence[HostState]) -> Action: ...

    def describe(self) -> list[str]: ...


class StaticPolicy:
    """A fixed fleet sized for the day's peak plus headroom (it is told the peak)."""

    name = "static peak sizing"

    def __init__(self, peak_sessions: int, per_host: int = SESSIONS_PER_HOST,
                 headroom: float = STATIC_HEADROOM) -> None:
        self.peak, self.headroom = peak_sessions, headroom
        self.hosts = math.ceil(math.ceil(peak_sessions / per_host) * (1 + headroom))

    def describe(self) -> list[str]:
        return [f"{self.hosts} hosts all day: ceil(peak {self.peak} sessions / 8) "
                f"+ {self.headroom:.0%} headroom, ready before the day starts"]

    def step(self, now: datetime, hosts: Sequence[HostState]) -> Action:
        return Action(self.hosts, _blind_victims(hosts, len(hosts) - self.hosts))


class HpaPolicy:
    """Target tracking on utilisation, the way the Horizontal Pod Autoscaler computes it,
    with sessions / slots standing in for CPU. It does not know which hosts are busy: the
    ReplicaSet picks the victims of a scale-in (not-ready first, then the newest)."""

    name = "HPA-style target tracking"

    def __init__(self, settings: HpaSettings | None = None,
                 per_host: int = SESSIONS_PER_HOST) -> None:
        self.settings = settings or HpaSettings()
        self.per_host = per_host
        self._history: deque[tuple[datetime, int]] = deque()

    def describe(self) -> list[str]:
        s = self.settings
        window = int(s.scale_down_window.total_seconds() // 60)
        return [f"target utilisation {s.target:.0%} (sessions / slots as the CPU proxy), "
                f"tolerance {s.tolerance:.0%}, desired = ceil(current x utilisation / target), "
                f"hosts still starting count as idle when scaling up",
                f"scale-up at once; scale-down stabilisation {window} min (highest "
                f"recommendation in the window); min {s.min_hosts}, max {s.max_hosts}",
                "scale-in victims as the ReplicaSet picks them without deletion cost "
                "(not-ready first, then newest), sessions on them cut"]

    def recommend(self, hosts: Sequence[HostState]) -> int:
        s, current = self.settings, len(hosts)
        ready = [h for h in hosts if h.ready]
        if not ready:
            return max(current, s.min_hosts)
        load = sum(h.sessions for h in ready) / self.per_host  # hosts' worth of sessions
        ratio = load / (len(ready) * s.target)
        if abs(ratio - 1) <= s.tolerance:
            return current
        if ratio > 1:  # scaling up: hosts still starting count as idle
            ratio = load / (current * s.target)
            return current if ratio <= 1 + s.tolerance else math.ceil(ratio * current)
        return math.ceil(ratio * len(ready))

    def step(self, now: datetime, hosts: Sequence[HostState]) -> Action:
        s, current = self.settings, len(hosts)
        rec = min(max(self.recommend(hosts), s.min_hosts), s.max_hosts)
        self._history.append((now, rec))
        while now - self._history[0][0] > s.scale_down_window:
            self._history.popleft()
        down = max(r for _, r in self._history)  # scale-down stabilisation: the highest
        desired = rec if rec > current else min(current, down)
        return Action(desired, _blind_victims(hosts, current - desired))


def _blind_victims(hosts: Sequence[HostState], count: int) -> tuple[str, ...]:
    """The ReplicaSet controller's choice without pod deletion cost: not-ready hosts
    first, then the most recently created, whatever sessions they hold."""
    if count <= 0:
        return ()
    order = sorted(hosts, key=lambda h: (h.ready, -h.created_at.timestamp(), h.name))
    return tuple(h.name for h in order[:count])


class DeskfleetPolicy:
    """The operator's own scaling core, `deskfleet.scaling.decide`, applied faithfully."""

    name = "deskfleet"

    def __init__(self, spec: SessionHostPoolSpec) -> None:
        self.spec = spec
        self.memory = Memory()

    def describe(self) -> list[str]:
        return [*describe_pool(self.spec),
                "every host reports its session count each tick (fresh signal); "
                "Decision.replicas, drain, undrain and remove applied as the operator does"]

    def step(self, now: datetime, hosts: Sequence[HostState]) -> Action:
        view = [Host(h.name, h.created_at, h.ready, h.sessions, reported_at=now,
                     draining_since=h.draining_since) for h in hosts]
        decision = decide(self.spec, view, now, self.memory, len(hosts))
        self.memory = decision.memory
        return Action(decision.replicas, decision.remove, decision.drain, decision.undrain)


def clairvoyant_host_seconds(levels: Sequence[tuple[float, int]], start: float, end: float,
                             per_host: int = SESSIONS_PER_HOST) -> float:
    """The lower bound on host-seconds over [start, end): at every moment exactly
    ceil(sessions / per_host) hosts, perfectly packed, with no start-up time.

    `levels` are (moment, sessions in progress from then on), ordered by moment.
    """
    total = 0.0
    level = 0
    edge = start
    for moment, nxt in levels:
        if moment > start:
            total += math.ceil(level / per_host) * (min(moment, end) - edge)
            edge = min(moment, end)
        if moment >= end:
            break
        level = nxt
    if edge < end:
        total += math.ceil(level / per_host) * (end - edge)
    return total
