"""Run every policy over the same workload and collect what it cost and what users got.

Each policy starts with an empty pool before the first logon (a built-in day starts
12 hours before its measured day, so the night shift is logged on at midnight) and is
ticked every `step`; only the measured window counts. Deterministic for a workload and
options: the placement's and start-ups' randomness is seeded.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..api.common import parse_duration
from ..api.sessionhostpool import SessionHostPoolSpec
from .bounds import clairvoyant_host_seconds, placement_without_migration
from .cluster import Cluster, Placement, Tally
from .policies import (
    DeskfleetPolicy,
    HostState,
    HpaPolicy,
    Observation,
    Policy,
    StaticPolicy,
)
from .pool import STARTUP, STEP, HpaSettings, with_forced_logoff
from .rollout import DeploymentRollout, deadline_of, rollout_policies
from .workload import Workload, concurrency_steps, peak_concurrency

DEFAULT_SEED = 2026
SAMPLE_EVERY = 4  # ticks between two points of the plotted series
RATE_WINDOW = timedelta(minutes=5)  # the portal's recent launch rate


@dataclass(frozen=True)
class SimOptions:
    startup: timedelta = STARTUP
    startup_spread: timedelta = timedelta(0)  # each host's start-up: startup +- this
    report_lag: timedelta = timedelta(seconds=5)  # from a change to the operator seeing it
    placement: Placement = "random"
    step: timedelta = STEP
    seed: int = 0  # of the placement's and the start-ups' randomness


@dataclass(frozen=True)
class PolicyResult:
    name: str
    host_hours: float
    serving_host_hours: float  # of those, ready hosts taking logons
    logons: int
    waited: int  # logons that found no free slot
    wait_p95: float  # seconds, over the logons that waited (0 if none did)
    wait_max: float
    cut: int  # sessions ended by removing their host, without notice
    cut_after_notice: int  # ... whose users had been told and asked to log off
    logged_off: int  # sessions logged off after a notice with a deadline
    shortest_notice: float | None  # seconds between notice and logoff, at least
    peak_hosts: int
    slots: tuple[int, ...]  # hosts x sessions per host (what is paid for), per sample
    serving: tuple[int, ...]  # slots on ready, serving hosts, per sample
    queued: tuple[int, ...]  # logons waiting for a slot, per sample
    reconnects: int = 0  # logons again after a cut or a logoff (in the wait figures)
    settings: tuple[str, ...] = ()
    outdated_until: datetime | None = None  # the last host of an old template gone
    update_deadline: float | None = None  # seconds: an outdated host's users logged off
    logoff_timeout: float = 0.0  # seconds a host has to log them off


@dataclass(frozen=True)
class SimulationResult:
    workload: Workload
    options: SimOptions
    per_host: int
    peak_sessions: int
    logons: int  # in the measured window
    times: tuple[datetime, ...]  # the sample moments, local time
    sessions: tuple[int, ...]  # sessions in demand at each sample
    clairvoyant_host_hours: float
    no_migration_host_hours: float
    clairvoyant_slots: tuple[int, ...]
    policies: tuple[PolicyResult, ...]
    scenario: str = ""

    def policy(self, name: str) -> PolicyResult:
        return next(p for p in self.policies if p.name == name)

    @property
    def seed(self) -> int:
        return self.workload.seed


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class _Observer:
    """Turns the simulated pool into what an autoscaler sees, in aware datetimes."""

    def __init__(self, origin: datetime, lag: float) -> None:
        self.origin, self.lag = origin, lag
        self._created: dict[str, datetime] = {}

    def at(self, seconds: float) -> datetime:
        return self.origin + timedelta(seconds=seconds)

    def hosts(self, cluster: Cluster, now: float) -> list[HostState]:
        seen = []
        reported = now - self.lag
        report_time = self.at(reported)
        for h in cluster.hosts.values():
            created = self._created.get(h.name)
            if created is None:
                created = self._created[h.name] = self.at(h.created)
            while len(h.history) > 1 and h.history[1][0] <= reported:
                h.history.pop(0)  # nothing older is ever asked for again
            has_report = h.ready_at <= reported
            sessions, connected = h.reported(reported) if has_report else (0, 0)
            seen.append(HostState(
                h.name, created, h.ready_at <= now, sessions,
                None if h.draining_since is None else self.at(h.draining_since),
                connected, report_time if has_report else None,
                None if h.logoff_deadline is None else self.at(h.logoff_deadline),
                None if h.logoff_requested_at is None else self.at(h.logoff_requested_at),
                h.revision))
        return seen

    def demand(self, cluster: Cluster, now: float, revision: int) -> Observation:
        launches, ended = cluster.recent_launches(now, RATE_WINDOW.total_seconds())
        refused = cluster.waiting
        startup = percentile(list(cluster.startups), 90) if cluster.startups else None
        minutes = RATE_WINDOW.total_seconds() / 60
        return Observation(launches / minutes, refused, startup, ended / minutes, revision)


def _origin(workload: Workload, options: SimOptions) -> datetime:
    first = min((s.arrival for s in workload.sessions), default=workload.day_start)
    start = min(workload.day_start, first).astimezone(UTC)
    return start - options.startup - options.startup_spread - options.step


def run_policy(policy: Policy, workload: Workload, options: SimOptions,
               per_host: int) -> PolicyResult:
    origin = _origin(workload, options)
    start = (workload.day_start - origin).total_seconds()
    end = (workload.day_end - origin).total_seconds()
    step = options.step.total_seconds()
    arrivals = [(i, (s.arrival - origin).total_seconds(), s.duration.total_seconds(),
                 s.disconnected.total_seconds()) for i, s in enumerate(workload.sessions)]
    cluster = Cluster(per_host, options.startup.total_seconds(), start, end,
                      placement=options.placement,
                      startup_spread=options.startup_spread.total_seconds(), seed=options.seed)
    slots: list[int] = []
    serving: list[int] = []
    queued: list[int] = []
    observer = _Observer(origin, options.report_lag.total_seconds())
    nxt = 0
    first_sample = math.ceil(start / step)
    # Each image change makes a new revision of the hosts' template from then on.
    changes = sorted((c - origin).total_seconds() for c in workload.image_changes)
    for tick in range(int(end // step) + 1):
        now = tick * step
        first = nxt
        while nxt < len(arrivals) and arrivals[nxt][1] <= now:
            nxt += 1
        cluster.advance(now, arrivals[first:nxt])
        if now >= end:
            break
        if tick >= first_sample and (tick - first_sample) % SAMPLE_EVERY == 0:
            slots.append(len(cluster.hosts) * per_host)
            serving.append(cluster.serving_slots(now))
            queued.append(cluster.waiting)
        revision = bisect_right(changes, now)
        action = policy.step(observer.at(now), observer.hosts(cluster, now),
                             observer.demand(cluster, now, revision))
        deadlines = {name: None if when is None else (when - origin).total_seconds()
                     for name, when in action.deadlines.items()}
        cluster.apply(now, action.replicas, action.remove, action.drain, action.undrain,
                      action.accepting, deadlines, action.logoff, revision)
        cluster.bill(now, now + step)
    cluster.finish()
    return _result(policy, cluster.tally, slots, serving, queued, origin)


def _result(policy: Policy, tally: Tally, slots: list[int], serving: list[int],
            queued: list[int], origin: datetime) -> PolicyResult:
    waits = tally.waits
    return PolicyResult(
        name=policy.name, host_hours=tally.host_seconds / 3600,
        serving_host_hours=tally.serving_seconds / 3600, logons=tally.logons,
        waited=len(waits), wait_p95=percentile(waits, 95), wait_max=max(waits, default=0.0),
        cut=tally.cut, cut_after_notice=tally.cut_after_notice, logged_off=tally.logged_off,
        shortest_notice=min(tally.notice_seconds, default=None), peak_hosts=tally.peak_hosts,
        slots=tuple(slots), serving=tuple(serving), queued=tuple(queued),
        reconnects=tally.reconnects, settings=tuple(policy.describe()),
        outdated_until=None if tally.outdated_until is None
        else origin + timedelta(seconds=tally.outdated_until),
        update_deadline=_update_deadline(policy), logoff_timeout=_logoff_timeout(policy))


def _update_deadline(policy: Policy) -> float | None:
    """Seconds after it drains that an outdated host's users are logged off, if ever."""
    if not isinstance(policy, DeskfleetPolicy) or isinstance(policy, DeploymentRollout):
        return None
    deadline = deadline_of(policy.spec)
    return deadline.total_seconds() if deadline else None


def _logoff_timeout(policy: Policy) -> float:
    if not isinstance(policy, DeskfleetPolicy):
        return 0.0
    return parse_duration(policy.spec.scaling.drain.logoff_timeout).total_seconds()


PolicyMaker = Callable[[], Policy]


def default_policies(workload: Workload, spec: SessionHostPoolSpec,
                     forced_logoff_after: timedelta | None = None,
                     baselines: bool = True) -> list[PolicyMaker]:
    """Static peak sizing and the HPA-style baseline (unless `baselines` is off), the
    pool as written, and — with `forced_logoff_after` — the same pool logging users off
    that long after the drain notice. A day with an image change compares rollouts
    instead (rollout.py)."""
    if workload.image_changes:
        return rollout_policies(spec, baselines)
    per_host = spec.sessions_per_host
    peak = peak_concurrency(workload)
    hpa = HpaSettings(min_hosts=spec.scaling.min_hosts, max_hosts=spec.scaling.max_hosts)
    makers: list[PolicyMaker] = []
    if baselines:
        makers += [lambda: StaticPolicy(peak, per_host), lambda: HpaPolicy(per_host, hpa)]
    makers.append(lambda: DeskfleetPolicy(spec))
    if forced_logoff_after is not None:
        forced = with_forced_logoff(spec, forced_logoff_after)
        minutes = int(forced_logoff_after.total_seconds() // 60)
        makers.append(lambda: DeskfleetPolicy(
            forced, f"deskfleet, forced logoff after {minutes} min"))
    return makers


def simulate(workload: Workload, spec: SessionHostPoolSpec,
             options: SimOptions | None = None,
             policies: Sequence[PolicyMaker] | None = None,
             scenario: str = "") -> SimulationResult:
    options = options or SimOptions()
    per_host = spec.sessions_per_host
    makers = policies if policies is not None else default_policies(workload, spec)
    results = tuple(run_policy(make(), workload, options, per_host) for make in makers)
    origin = workload.day_start.astimezone(UTC)
    seconds = [((m - origin).total_seconds(), n) for m, n in concurrency_steps(workload)]
    window = (workload.day_end - workload.day_start).total_seconds()
    sample = options.step.total_seconds() * SAMPLE_EVERY
    offsets = [k * sample for k in range(math.ceil(window / sample))]
    moments = [m for m, _ in seconds]
    demand = [seconds[i][1] if (i := bisect_right(moments, t) - 1) >= 0 else 0
              for t in offsets]
    spans = [((s.arrival - origin).total_seconds(), (s.end - origin).total_seconds())
             for s in workload.sessions]
    no_migration, _ = placement_without_migration(spans, 0.0, window, per_host)
    return SimulationResult(
        workload=workload, options=options, per_host=per_host,
        peak_sessions=peak_concurrency(workload),
        logons=sum(1 for s in workload.sessions
                   if workload.day_start <= s.arrival < workload.day_end),
        times=tuple((origin + timedelta(seconds=t)).astimezone(workload.tz) for t in offsets),
        sessions=tuple(demand),
        clairvoyant_host_hours=clairvoyant_host_seconds(seconds, 0.0, window, per_host) / 3600,
        no_migration_host_hours=no_migration / 3600,
        clairvoyant_slots=tuple(math.ceil(n / per_host) * per_host for n in demand),
        policies=results, scenario=scenario)
