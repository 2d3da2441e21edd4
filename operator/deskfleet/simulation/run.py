"""Run every policy over the same simulated day and collect what it cost and what users got.

Each policy starts with an empty pool `WARM_UP` before midnight and is ticked every
`STEP`; only the 24 hours of the measured day count. Deterministic for a seed.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..api.common import WEEKDAYS
from .cluster import Cluster, Tally
from .policies import (
    DeskfleetPolicy,
    HostState,
    HpaPolicy,
    Policy,
    StaticPolicy,
    clairvoyant_host_seconds,
)
from .pool import SESSIONS_PER_HOST, STARTUP, STEP, deskfleet_pool
from .workload import (
    DEFAULT_STAFF,
    LONDON,
    WARM_UP,
    Workload,
    concurrency_steps,
    generate,
    peak_concurrency,
)

DEFAULT_SEED = 2026
SAMPLE_EVERY = 4  # ticks between two points of the plotted series (2 minutes)


@dataclass(frozen=True)
class PolicyResult:
    name: str
    host_hours: float
    serving_host_hours: float  # of those, ready hosts taking logons
    logons: int
    waited: int  # logons that found no free slot
    waited_over_startup: int  # ... and waited longer than a host takes to start
    wait_p50: float  # seconds, over the logons that waited (0 if none did)
    wait_p95: float
    wait_max: float
    cut: int  # sessions ended by scale-in
    slots: tuple[int, ...]  # hosts x sessions per host (what is paid for), per sample
    serving: tuple[int, ...]  # slots on ready, non-draining hosts, per sample
    queued: tuple[int, ...]  # logons waiting for a slot, per sample
    reconnects: int = 0  # logons again after a cut (included in the wait figures)
    settings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimulationResult:
    seed: int
    staff: int
    day_start: datetime
    startup: timedelta
    step: timedelta
    peak_sessions: int
    logons: int  # in the measured day
    times: tuple[datetime, ...]  # the sample moments, local time
    sessions: tuple[int, ...]  # sessions in demand at each sample
    clairvoyant_host_hours: float
    clairvoyant_slots: tuple[int, ...]
    policies: tuple[PolicyResult, ...]
    phases: tuple[tuple[str, datetime, datetime], ...] = ()  # the pool's schedule that day

    def policy(self, name: str) -> PolicyResult:
        return next(p for p in self.policies if p.name == name)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class _Observer:
    """Turns the simulated hosts into what an autoscaler sees, in aware datetimes."""

    def __init__(self, origin: datetime) -> None:
        self.origin = origin
        self._created: dict[str, datetime] = {}

    def at(self, seconds: float) -> datetime:
        return self.origin + timedelta(seconds=seconds)

    def hosts(self, cluster: Cluster, now: float) -> list[HostState]:
        seen = []
        for h in cluster.hosts.values():
            created = self._created.get(h.name)
            if created is None:
                created = self._created[h.name] = self.at(h.created)
            draining = None if h.draining_since is None else self.at(h.draining_since)
            seen.append(HostState(h.name, created, h.ready_at <= now, len(h.sessions),
                                  draining))
        return seen


def run_policy(policy: Policy, workload: Workload) -> PolicyResult:
    origin = workload.day_start.astimezone(UTC) - WARM_UP  # arithmetic in UTC
    start = WARM_UP.total_seconds()
    end = start + (workload.day_end - workload.day_start).total_seconds()
    step, startup = STEP.total_seconds(), STARTUP.total_seconds()
    arrivals = [(i, (s.arrival - origin).total_seconds(), s.duration.total_seconds())
                for i, s in enumerate(workload.sessions)]
    cluster = Cluster(SESSIONS_PER_HOST, startup, start, end)
    slots: list[int] = []
    serving: list[int] = []
    queued: list[int] = []
    observer = _Observer(origin)
    nxt = 0
    for tick in range(int(end // step) + 1):
        now = tick * step
        first = nxt
        while nxt < len(arrivals) and arrivals[nxt][1] <= now:
            nxt += 1
        cluster.advance(now, arrivals[first:nxt])
        if now >= end:
            break
        if now >= start and (tick - int(start // step)) % SAMPLE_EVERY == 0:
            slots.append(len(cluster.hosts) * SESSIONS_PER_HOST)
            serving.append(cluster.serving_slots(now))
            queued.append(cluster.waiting)
        action = policy.step(observer.at(now), observer.hosts(cluster, now))
        cluster.apply(now, action.replicas, action.remove, action.drain, action.undrain)
        cluster.bill(now, now + step)
    cluster.finish()
    return _result(policy, cluster.tally, startup, slots, serving, queued)


def _result(policy: Policy, tally: Tally, startup: float, slots: list[int],
            serving: list[int], queued: list[int]) -> PolicyResult:
    waits = tally.waits
    return PolicyResult(
        name=policy.name, host_hours=tally.host_seconds / 3600,
        serving_host_hours=tally.serving_seconds / 3600, logons=tally.logons,
        waited=len(waits), waited_over_startup=sum(1 for w in waits if w > startup),
        wait_p50=percentile(waits, 50), wait_p95=percentile(waits, 95),
        wait_max=max(waits, default=0.0), cut=tally.cut,
        slots=tuple(slots), serving=tuple(serving), queued=tuple(queued),
        reconnects=tally.reconnects, settings=tuple(policy.describe()))


def default_policies(workload: Workload) -> list[Callable[[], Policy]]:
    peak = peak_concurrency(workload)
    return [lambda: StaticPolicy(peak), HpaPolicy, lambda: DeskfleetPolicy(deskfleet_pool())]


def simulate(seed: int = DEFAULT_SEED, staff: int = DEFAULT_STAFF,
             policies: Sequence[Callable[[], Policy]] | None = None) -> SimulationResult:
    workload = generate(seed, staff)
    makers = policies if policies is not None else default_policies(workload)
    results = tuple(run_policy(make(), workload) for make in makers)
    levels = concurrency_steps(workload)
    origin = workload.day_start.astimezone(UTC)
    seconds = [((m - origin).total_seconds(), n) for m, n in levels]
    day = (workload.day_end - workload.day_start).total_seconds()
    sample = STEP.total_seconds() * SAMPLE_EVERY
    offsets = [k * sample for k in range(math.ceil(day / sample))]
    moments = [m for m, _ in seconds]
    demand = [seconds[i][1] if (i := bisect_right(moments, t) - 1) >= 0 else 0
              for t in offsets]
    return SimulationResult(
        seed=seed, staff=staff, day_start=workload.day_start, startup=STARTUP, step=STEP,
        peak_sessions=peak_concurrency(workload),
        logons=sum(1 for s in workload.sessions if s.arrival >= workload.day_start),
        times=tuple((origin + timedelta(seconds=t)).astimezone(LONDON) for t in offsets),
        sessions=tuple(demand),
        clairvoyant_host_hours=clairvoyant_host_seconds(seconds, 0.0, day) / 3600,
        clairvoyant_slots=tuple(math.ceil(n / SESSIONS_PER_HOST) * SESSIONS_PER_HOST
                                for n in demand),
        policies=results, phases=_phases(workload))


def _phases(workload: Workload) -> tuple[tuple[str, datetime, datetime], ...]:
    """The deskfleet pool's schedule phases on the simulated day, in local time."""
    schedule = deskfleet_pool().scaling.schedule
    if schedule is None:
        return ()
    day = workload.day_start.astimezone(LONDON)
    weekday = WEEKDAYS[day.weekday()]

    def at(hhmm: str) -> datetime:
        hours, minutes = (int(part) for part in hhmm.split(":"))
        return day + timedelta(hours=hours, minutes=minutes)

    return tuple((p.name, at(p.start), at(p.end)) for p in schedule.phases
                 if weekday in p.days)
