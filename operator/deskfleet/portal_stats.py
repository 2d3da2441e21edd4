"""From what the portal replicas count (`GET /v1/stats`, format in portal/stats.py) to
what the operator acts on: each pool's logon demand for the scaling core, and each
dry-run policy's count of real requests it would have changed. Pure: the operator's
collector feeds samples in and reads answers out.

Each replica's counters are cumulative since it started. The first sight of a replica
is a baseline (an operator that restarts must not read yesterday's launches as a storm;
a new replica's first few seconds of launches are lost, one collection period at most);
counters that went down are a restarted replica, counted from zero, never negative.

Launches are kept as (time, count) steps for RATE_WINDOW seconds: the launch rate is
what the window saw, or what the last minute saw if that is more, so a storm is seen as
it begins and forgotten slowly. Replicas that stopped answering are forgotten after
REPLICA_TTL seconds (their waiting users with them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .scaling.demand import Demand

RATE_WINDOW = 300.0  # seconds of launches the rate is measured over...
SURGE_WINDOW = 60.0  # ...unless the last minute alone says more (a storm is beginning)
MIN_LAUNCHES_FOR_A_RATE = 3  # fewer are single users, served by `unserved`, not a trend
UNSERVED_WINDOW = 90.0  # launches that found no host count as unserved this long
REPLICA_TTL = 60.0
STATS_VERSION = 1

Key = tuple[str, str]  # (namespace, name)


def _split(key: str) -> Key | None:
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep and namespace and name else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


@dataclass(frozen=True)
class Sample:
    """One replica's answer, read (`parse`) and checked."""

    replica: str
    pools: Mapping[Key, tuple[int, int, int]]  # launches, unserved, waiting
    policies: Mapping[Key, tuple[int, int]]  # evaluated, would change


def parse(document: Any) -> Sample:
    """A replica's JSON; ValueError when it is not format version 1."""
    if not isinstance(document, dict) or document.get("version") != STATS_VERSION:
        raise ValueError("not a deskfleet portal stats document (version 1)")
    replica = document.get("replica")
    if not isinstance(replica, str) or not replica:
        raise ValueError("stats without a replica id")
    pools: dict[Key, tuple[int, int, int]] = {}
    for raw, figures in (document.get("pools") or {}).items():
        key = _split(str(raw))
        if key and isinstance(figures, dict):
            pools[key] = (_count(figures.get("launches")), _count(figures.get("unserved")),
                          _count(figures.get("waiting")))
    policies: dict[Key, tuple[int, int]] = {}
    for raw, figures in (document.get("policies") or {}).items():
        key = _split(str(raw))
        if key and isinstance(figures, dict):
            policies[key] = (_count(figures.get("evaluated")),
                             _count(figures.get("wouldChange")))
    return Sample(replica, pools, policies)


@dataclass
class _Replica:
    seen_at: float
    pools: dict[Key, tuple[int, int, int]] = field(default_factory=dict)
    policies: dict[Key, tuple[int, int]] = field(default_factory=dict)


@dataclass
class _PoolSeries:
    launches: deque[tuple[float, int]] = field(default_factory=deque)  # (time, new)
    unserved: deque[tuple[float, int]] = field(default_factory=deque)


@dataclass(frozen=True)
class DryRunFigures:
    """Requests seen since `since` (when this operator began counting)."""

    since: datetime
    evaluated: int
    would_change: int


class PortalStats:
    def __init__(self, started: datetime) -> None:
        self.started = started
        self._replicas: dict[str, _Replica] = {}
        self._pools: dict[Key, _PoolSeries] = {}
        self._policies: dict[Key, tuple[int, int]] = {}

    def add(self, samples: Iterable[Sample], now: float) -> tuple[set[Key], set[Key]]:
        """Take one round of samples; the pools whose demand and the policies whose
        figures changed (for the operator to re-evaluate)."""
        pools_changed: set[Key] = set()
        policies_changed: set[Key] = set()
        for sample in samples:
            before = self._replicas.get(sample.replica)
            if before is None:
                # First sight of a replica (or of every replica, after this operator
                # started): its counters are a baseline, not a burst of launches.
                before = _Replica(now, {k: (v[0], v[1], 0) for k, v in sample.pools.items()},
                                  dict(sample.policies))
            for key, (launches, unserved, waiting) in sample.pools.items():
                old = before.pools.get(key, (0, 0, 0))
                restarted = launches < old[0] or unserved < old[1]
                new_launches = launches - (0 if restarted else old[0])
                new_unserved = unserved - (0 if restarted else old[1])
                series = self._pools.setdefault(key, _PoolSeries())
                if new_launches:
                    series.launches.append((now, new_launches))
                if new_unserved:
                    series.unserved.append((now, new_unserved))
                if new_launches or new_unserved or waiting != old[2]:
                    pools_changed.add(key)
            for key, (evaluated, would) in sample.policies.items():
                old_p = before.policies.get(key, (0, 0))
                restarted = evaluated < old_p[0] or would < old_p[1]
                delta = (evaluated - (0 if restarted else old_p[0]),
                         would - (0 if restarted else old_p[1]))
                if delta != (0, 0):
                    total = self._policies.get(key, (0, 0))
                    self._policies[key] = (total[0] + delta[0], total[1] + delta[1])
                    policies_changed.add(key)
            self._replicas[sample.replica] = _Replica(now, dict(sample.pools),
                                                      dict(sample.policies))
        for replica in [r for r, seen in self._replicas.items()
                        if now - seen.seen_at > REPLICA_TTL]:
            pools_changed.update(k for k, v in self._replicas[replica].pools.items() if v[2])
            del self._replicas[replica]
        self._expire(now, pools_changed)
        return pools_changed, policies_changed

    def _expire(self, now: float, changed: set[Key]) -> None:
        for key, series in self._pools.items():
            for queue, window in ((series.launches, RATE_WINDOW),
                                  (series.unserved, UNSERVED_WINDOW)):
                while queue and now - queue[0][0] > window:
                    queue.popleft()
                    changed.add(key)

    def demand(self, namespace: str, pool: str, now: float,
               startup_seconds: float | None = None) -> Demand:
        series = self._pools.get((namespace, pool))
        waiting = sum(r.pools.get((namespace, pool), (0, 0, 0))[2]
                      for r in self._replicas.values())
        if series is None:
            return Demand(unserved=waiting, startup_seconds=startup_seconds)
        recent = sum(n for t, n in series.launches if now - t <= SURGE_WINDOW)
        longer = sum(n for t, n in series.launches if now - t <= RATE_WINDOW)
        rate = max(recent / (SURGE_WINDOW / 60), longer / (RATE_WINDOW / 60))
        if longer < MIN_LAUNCHES_FOR_A_RATE:
            # One nurse at 03:00 is one user waiting (counted in `unserved`), not a rate
            # of one a minute to extrapolate over a host's start-up: that would start
            # several hosts for a single session.
            rate = 0.0
        unserved = sum(n for t, n in series.unserved if now - t <= UNSERVED_WINDOW)
        return Demand(launch_rate_per_minute=rate,
                      unserved=max(unserved, waiting), startup_seconds=startup_seconds)

    def dry_run(self, namespace: str, policy: str) -> DryRunFigures | None:
        figures = self._policies.get((namespace, policy))
        if figures is None:
            return None
        return DryRunFigures(self.started, figures[0], figures[1])
