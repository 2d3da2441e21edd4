"""Prometheus metrics of the operator.

Per-object figures are kept as the latest facts each reconcile reported and exposed by a
custom collector, so a deleted pool's series vanish with it instead of lingering at
their last value. Labels are bounded: namespace and object name, plus small fixed sets
(kind, direction, state, phase) and a pool's current revision (one series per pool).

Every metric name is listed in METRIC_NAMES; the dashboard and alert rules may use only
those (a cluster test checks them against a real scrape).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()

RECONCILES = Counter("deskfleet_reconcile", "Reconcile passes by kind and result.",
                     ["kind", "result"], registry=REGISTRY)
RECONCILE_ERRORS = Counter("deskfleet_reconcile_errors", "Reconcile passes that failed "
                           "(retried with backoff).", ["kind"], registry=REGISTRY)
RECONCILE_SECONDS = Histogram(
    "deskfleet_reconcile_duration_seconds", "Time a reconcile pass took.", ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
WORKQUEUE_DEPTH = Gauge(
    "deskfleet_workqueue_depth", "Keys waiting for or in a reconcile pass (0: converged; "
    "the periodic re-checks wait on timers, not in the queue).", registry=REGISTRY)
RECHECKS_WAITING = Gauge(
    "deskfleet_workqueue_rechecks_waiting", "Re-checks a change fanned out that wait on "
    "their debounce (0 with the work queue and the Event queue: converged).",
    registry=REGISTRY)
EVENT_QUEUE_DEPTH = Gauge(
    "deskfleet_event_queue_depth", "Kubernetes Events recorded and not posted yet (they "
    "are posted in order from their own thread, behind the passes).", registry=REGISTRY)
EVENTS_DROPPED = Counter(
    "deskfleet_events_dropped", "Kubernetes Events dropped because the API server did not "
    "take them as fast as the operator made them.", registry=REGISTRY)
PORTAL_REPLICAS_REPORTING = Gauge(
    "deskfleet_portal_replicas_reporting", "Portal replicas whose /v1/stats the operator "
    "read in its last round (0: scale-out cannot see logon demand).", registry=REGISTRY)
SCALING_DECISIONS = Counter(
    "deskfleet_pool_scaling_decisions", "Scaling decisions that changed a pool.",
    ["namespace", "pool", "direction"], registry=REGISTRY)
DRAIN_NOTICES = Counter(
    "deskfleet_pool_logoff_notices", "Draining hosts whose users were given a notice with a "
    "logoff deadline.", ["namespace", "pool"], registry=REGISTRY)
LOGOFFS_REQUESTED = Counter(
    "deskfleet_pool_logoffs_requested", "Draining hosts asked to log their users off once "
    "the deadline of their notice had passed.", ["namespace", "pool"], registry=REGISTRY)
FORCED_REMOVALS = Counter(
    "deskfleet_pool_forced_removals", "Hosts removed with sessions still reported, "
    "drain.logoffTimeout after their logoff request.", ["namespace", "pool"],
    registry=REGISTRY)
ROLLOUTS_STARTED = Counter(
    "deskfleet_pool_rollouts_started", "Rollouts to a new revision of the hosts' template "
    "(a change that restarts hosts, or a rollback).", ["namespace", "pool"],
    registry=REGISTRY)
ROLLOUTS_COMPLETED = Counter(
    "deskfleet_pool_rollouts_completed", "Rollouts whose last outdated host left.",
    ["namespace", "pool"], registry=REGISTRY)
_PER_POOL_COUNTERS = (DRAIN_NOTICES, LOGOFFS_REQUESTED, FORCED_REMOVALS, ROLLOUTS_STARTED,
                      ROLLOUTS_COMPLETED)


@dataclass(frozen=True)
class PoolMetrics:
    desired: int
    ready: int
    draining: int
    sessions: int
    capacity: int
    phase: str
    healthy: bool  # Ready condition
    stale_hosts: int
    disconnected: int = 0
    unknown_hosts: int = 0  # ready, never reported (agents silent)
    logging_off: int = 0  # draining hosts past their logoff deadline
    startup_seconds: float | None = None  # measured host start-up, None until measured
    revision: str = ""  # the current revision of the hosts' template
    updated: int = 0  # hosts of the current revision
    outdated: int = 0  # hosts of older revisions, waiting for their sessions to end
    past_deadline: int = 0  # of those, past the deadline their users were given
    oldest_outdated_created: float | None = None  # epoch seconds; None: none outdated


@dataclass(frozen=True)
class AppMetrics:
    ready: bool


@dataclass(frozen=True)
class PolicyMetrics:
    enforced: bool


class _State(Collector):
    """Latest facts per object; reconcilers set them, deletions forget them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pools: dict[tuple[str, str], PoolMetrics] = {}
        self.apps: dict[tuple[str, str], AppMetrics] = {}
        self.policies: dict[tuple[str, str], PolicyMetrics] = {}

    def set_pool(self, namespace: str, name: str, facts: PoolMetrics) -> None:
        with self._lock:
            self.pools[(namespace, name)] = facts

    def set_app(self, namespace: str, name: str, facts: AppMetrics) -> None:
        with self._lock:
            self.apps[(namespace, name)] = facts

    def set_policy(self, namespace: str, name: str, facts: PolicyMetrics) -> None:
        with self._lock:
            self.policies[(namespace, name)] = facts

    def clear(self) -> None:
        """A standby reports nothing about objects it does not reconcile."""
        with self._lock:
            self.pools.clear()
            self.apps.clear()
            self.policies.clear()

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            table: dict[tuple[str, str], object] = {
                "SessionHostPool": self.pools, "PublishedApp": self.apps,
                "AccessPolicy": self.policies}.get(kind, {})  # type: ignore[assignment]
            table.pop((namespace, name), None)
        if kind == "SessionHostPool":
            for direction in ("up", "down"):
                with contextlib.suppress(KeyError):  # never scaled that way
                    SCALING_DECISIONS.remove(namespace, name, direction)
            for counter in _PER_POOL_COUNTERS:
                with contextlib.suppress(KeyError):  # never counted
                    counter.remove(namespace, name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            pools, apps, policies = dict(self.pools), dict(self.apps), dict(self.policies)
        hosts = GaugeMetricFamily("deskfleet_pool_hosts", "Session hosts by state.",
                                  labels=["namespace", "pool", "state"])
        sessions = GaugeMetricFamily("deskfleet_pool_sessions", "Active sessions.",
                                     labels=["namespace", "pool"])
        capacity = GaugeMetricFamily("deskfleet_pool_capacity_sessions",
                                     "Session slots on ready hosts that accept sessions.",
                                     labels=["namespace", "pool"])
        utilization = GaugeMetricFamily("deskfleet_pool_utilization_ratio",
                                        "Sessions / capacity (0 when there is no capacity).",
                                        labels=["namespace", "pool"])
        phase = GaugeMetricFamily("deskfleet_pool_schedule_phase_info",
                                  "The schedule phase in force (value 1).",
                                  labels=["namespace", "pool", "phase"])
        ready = GaugeMetricFamily("deskfleet_pool_ready", "1 when the pool is Ready.",
                                  labels=["namespace", "pool"])
        stale = GaugeMetricFamily("deskfleet_pool_stale_hosts",
                                  "Ready hosts without a fresh session report (agents "
                                  "stopped or never reported).", labels=["namespace", "pool"])
        disconnected = GaugeMetricFamily(
            "deskfleet_pool_sessions_disconnected", "Of the sessions, those whose user is "
            "disconnected (hosts that report them).", labels=["namespace", "pool"])
        unknown = GaugeMetricFamily(
            "deskfleet_pool_unknown_hosts", "Ready hosts whose agent never reported: kept, "
            "counted as empty.", labels=["namespace", "pool"])
        logging_off = GaugeMetricFamily(
            "deskfleet_pool_logging_off_hosts", "Draining hosts past their logoff deadline, "
            "whose users are being logged off.", labels=["namespace", "pool"])
        startup = GaugeMetricFamily(
            "deskfleet_pool_host_startup_seconds", "Measured host start-up, pod creation to "
            "Ready: the 90th percentile of the last 20 (absent until measured).",
            labels=["namespace", "pool"])
        revision = GaugeMetricFamily(
            "deskfleet_pool_revision_info", "The current revision of the hosts' template "
            "(value 1).", labels=["namespace", "pool", "revision"])
        late = GaugeMetricFamily(
            "deskfleet_pool_outdated_hosts_past_deadline", "Outdated hosts past the "
            "deadline their users were given, still there (being logged off).",
            labels=["namespace", "pool"])
        oldest = GaugeMetricFamily(
            "deskfleet_pool_oldest_outdated_host_age_seconds", "Age of the oldest host of "
            "an outdated revision (absent when there is none).", labels=["namespace", "pool"])
        scraped = time.time()
        for (ns, name), f in sorted(pools.items()):
            for state, value in (("desired", f.desired), ("ready", f.ready),
                                 ("draining", f.draining), ("updated", f.updated),
                                 ("outdated", f.outdated)):
                hosts.add_metric([ns, name, state], value)
            revision.add_metric([ns, name, f.revision or "legacy"], 1)
            late.add_metric([ns, name], f.past_deadline)
            if f.oldest_outdated_created is not None:
                oldest.add_metric([ns, name], max(0.0, scraped - f.oldest_outdated_created))
            sessions.add_metric([ns, name], f.sessions)
            capacity.add_metric([ns, name], f.capacity)
            utilization.add_metric([ns, name], f.sessions / f.capacity if f.capacity else 0)
            phase.add_metric([ns, name, f.phase], 1)
            ready.add_metric([ns, name], 1 if f.healthy else 0)
            stale.add_metric([ns, name], f.stale_hosts)
            disconnected.add_metric([ns, name], f.disconnected)
            unknown.add_metric([ns, name], f.unknown_hosts)
            logging_off.add_metric([ns, name], f.logging_off)
            if f.startup_seconds is not None:
                startup.add_metric([ns, name], f.startup_seconds)
        yield from (hosts, sessions, capacity, utilization, phase, ready, stale, disconnected,
                    unknown, logging_off, startup, revision, late, oldest)

        app_counts = GaugeMetricFamily("deskfleet_apps", "Published apps by state.",
                                       labels=["namespace", "state"])
        by_ns: dict[str, list[int]] = {}
        for (ns, _), a in apps.items():
            counts = by_ns.setdefault(ns, [0, 0])
            counts[0] += 1
            counts[1] += 1 if a.ready else 0
        for ns, (published, ready_count) in sorted(by_ns.items()):
            app_counts.add_metric([ns, "published"], published)
            app_counts.add_metric([ns, "ready"], ready_count)
        yield app_counts

        policy_counts = GaugeMetricFamily("deskfleet_policies", "Access policies by mode.",
                                          labels=["namespace", "mode"])
        by_mode: dict[tuple[str, str], int] = {}
        for (ns, _), p in policies.items():
            key = (ns, "enforce" if p.enforced else "dryRun")
            by_mode[key] = by_mode.get(key, 0) + 1
        for (ns, mode), count in sorted(by_mode.items()):
            policy_counts.add_metric([ns, mode], count)
        yield policy_counts


STATE = _State()
REGISTRY.register(STATE)

METRIC_NAMES = (
    "deskfleet_reconcile_total", "deskfleet_reconcile_errors_total",
    "deskfleet_reconcile_duration_seconds_bucket", "deskfleet_reconcile_duration_seconds_sum",
    "deskfleet_reconcile_duration_seconds_count", "deskfleet_pool_scaling_decisions_total",
    "deskfleet_pool_hosts", "deskfleet_pool_sessions", "deskfleet_pool_capacity_sessions",
    "deskfleet_pool_utilization_ratio", "deskfleet_pool_schedule_phase_info",
    "deskfleet_pool_ready", "deskfleet_pool_stale_hosts", "deskfleet_apps",
    "deskfleet_policies", "deskfleet_workqueue_depth", "deskfleet_portal_replicas_reporting",
    "deskfleet_pool_sessions_disconnected", "deskfleet_pool_unknown_hosts",
    "deskfleet_pool_logging_off_hosts", "deskfleet_pool_host_startup_seconds",
    "deskfleet_pool_logoff_notices_total", "deskfleet_pool_logoffs_requested_total",
    "deskfleet_pool_forced_removals_total", "deskfleet_pool_revision_info",
    "deskfleet_pool_outdated_hosts_past_deadline",
    "deskfleet_pool_oldest_outdated_host_age_seconds",
    "deskfleet_pool_rollouts_started_total", "deskfleet_pool_rollouts_completed_total",
)


def observe_reconcile(kind: str, seconds: float, failed: bool) -> None:
    RECONCILES.labels(kind, "error" if failed else "success").inc()
    RECONCILE_SECONDS.labels(kind).observe(seconds)
    if failed:
        RECONCILE_ERRORS.labels(kind).inc()


def serve(port: int, address: str) -> None:
    start_http_server(port, addr=address, registry=REGISTRY)
