"""The autoscalers compared, behind one interface.

Every policy sees the pool once per tick — its hosts as their agents last reported them,
and the logon demand the gateway saw — and answers with an `Action`: the replica count it
wants and what it writes on the hosts (who drains, who accepts new sessions, deadlines,
logoff requests, which hosts to delete).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..api.sessionhostpool import SessionHostPoolSpec
from ..scaling.decide import Demand, Host, Memory, Revisions, decide
from .pool import STATIC_HEADROOM, HpaSettings, describe_pool


@dataclass(frozen=True)
class HostState:
    """One host as an autoscaler observes it (its counts as reported, maybe late)."""

    name: str
    created_at: datetime
    ready: bool
    sessions: int  # every session on it, disconnected ones included
    draining_since: datetime | None = None
    connected: int | None = None  # of those, with a user connected (None: all)
    reported_at: datetime | None = None
    logoff_deadline: datetime | None = None
    logoff_requested_at: datetime | None = None
    revision: int = 0  # the template it runs (each image change makes a new one)

    @property
    def visible_to_tcp(self) -> int:
        return self.sessions if self.connected is None else self.connected


@dataclass(frozen=True)
class Observation:
    """What the portal and the operator measured, besides the hosts."""

    launches_per_minute: float = 0.0
    unserved: int = 0
    startup_seconds: float | None = None
    ended_per_minute: float = 0.0  # sessions ending on hosts that take logons
    revision: int = 0  # the pool's template now: new hosts run it, others are outdated


@dataclass(frozen=True)
class Action:
    replicas: int
    remove: tuple[str, ...] = ()  # deleted now; their sessions, if any, are cut
    drain: tuple[str, ...] = ()  # stop taking new sessions
    undrain: tuple[str, ...] = ()  # take new sessions again
    accepting: tuple[str, ...] | None = None  # None: every serving host (no labels)
    deadlines: dict[str, datetime | None] = field(default_factory=dict)  # announced
    logoff: tuple[str, ...] = ()  # asked to log their users off


class Policy(Protocol):
    name: str

    def step(self, now: datetime, hosts: Sequence[HostState],
             seen: Observation) -> Action: ...

    def describe(self) -> list[str]: ...


class StaticPolicy:
    """A fixed fleet sized for the day's peak plus headroom (it is told the peak)."""

    name = "static peak sizing"

    def __init__(self, peak_sessions: int, per_host: int,
                 headroom: float = STATIC_HEADROOM) -> None:
        self.peak, self.headroom, self.per_host = peak_sessions, headroom, per_host
        self.hosts = math.ceil(math.ceil(peak_sessions / per_host) * (1 + headroom))

    def describe(self) -> list[str]:
        return [f"{self.hosts} hosts all day: ceil(peak {self.peak} sessions / "
                f"{self.per_host}) + {self.headroom:.0%} headroom, ready before the day starts"]

    def step(self, now: datetime, hosts: Sequence[HostState], seen: Observation) -> Action:
        return Action(self.hosts, _blind_victims(hosts, len(hosts) - self.hosts))


class HpaPolicy:
    """Target tracking on utilisation, the way the Horizontal Pod Autoscaler computes it,
    with sessions / slots standing in for CPU. It does not know which hosts are busy: the
    ReplicaSet picks the victims of a scale-in (not-ready first, then the newest)."""

    name = "HPA-style target tracking"

    def __init__(self, per_host: int, settings: HpaSettings | None = None) -> None:
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

    def step(self, now: datetime, hosts: Sequence[HostState], seen: Observation) -> Action:
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
    """The operator's own scaling core, `deskfleet.scaling.decide`, applied as the
    operator does: the agents' reports (from the host, or TCP counts that miss
    disconnected sessions, as the pool says), the demand the portal counted, and what
    the operator itself wrote on the pods."""

    def __init__(self, spec: SessionHostPoolSpec, name: str = "deskfleet",
                 use_demand: bool = True, net_rate: bool = True,
                 one_revision: bool = False) -> None:
        self.spec, self.name, self.use_demand, self.net_rate = spec, name, use_demand, net_rate
        self.memory = Memory()
        self.host_source = spec.agent.session_source == "host"
        # Every host counted as current: the pool as if its template never changed (a
        # reference for what a rollout costs).
        self.one_revision = one_revision

    def describe(self) -> list[str]:
        return [*describe_pool(self.spec),
                "each host's report is seen after the report lag; the demand signal is the "
                "launch rate and the rate of sessions ending on serving hosts over the last "
                "5 min, the users waiting for a slot, and the measured start-up (p90 of the "
                "last 20 hosts)"
                if self.use_demand else "no demand signal",
                "Decision.replicas, drain, undrain, accepting, notices, logoff and remove "
                "applied as the operator does"]

    def current_replicas(self, views: Sequence[Host], current: str) -> int:
        """The current revision's replica count: its hosts (the simulated ReplicaSet
        creates at once)."""
        return sum(1 for h in views if h.revision == current)

    def view(self, h: HostState) -> Host:
        sessions = h.sessions if self.host_source else h.visible_to_tcp
        disconnected = h.sessions - h.visible_to_tcp if self.host_source else None
        revision = "0" if self.one_revision else str(h.revision)
        return Host(h.name, h.created_at, h.ready, sessions if h.ready else None,
                    h.reported_at if h.ready else None, h.draining_since,
                    disconnected=disconnected, logoff_deadline=h.logoff_deadline,
                    logoff_requested_at=h.logoff_requested_at, revision=revision)

    def step(self, now: datetime, hosts: Sequence[HostState], seen: Observation) -> Action:
        demand = (Demand(seen.launches_per_minute, seen.unserved, seen.startup_seconds,
                         seen.ended_per_minute if self.net_rate else 0.0)
                  if self.use_demand else None)
        views = [self.view(h) for h in hosts]
        current = "0" if self.one_revision else str(seen.revision)
        # One Deployment per revision: each outdated one's replicas are the hosts it has.
        outdated: dict[str, int] = {}
        for h in views:
            if h.revision != current:
                outdated[h.revision] = outdated.get(h.revision, 0) + 1
        decision = decide(self.spec, views, now, self.memory,
                          self.current_replicas(views, current), demand,
                          Revisions(current, outdated))
        self.memory = decision.memory
        replicas = decision.replicas + sum(n for _, n in decision.outdated_replicas)
        return Action(replicas, decision.remove, decision.drain, decision.undrain,
                      decision.accepting, {n.host: n.deadline for n in decision.notices},
                      decision.logoff)
