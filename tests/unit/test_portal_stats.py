"""From the portal replicas' counters to logon demand and dry-run figures: restarts,
several replicas, windows, and the round trip through the portal's own document."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deskfleet.controllers.portal_stats import endpoint_urls
from deskfleet.portal.stats import Stats
from deskfleet.portal_stats import RATE_WINDOW, PortalStats, Sample, parse

STARTED = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
POOL = ("northgate", "clinical-desktop")


def sample(replica: str, launches: int, unserved: int = 0, waiting: int = 0,
           evaluated: int = 0, would: int = 0) -> Sample:
    return Sample(replica, {POOL: (launches, unserved, waiting)},
                  {("northgate", "trial"): (evaluated, would)})


def test_the_portal_document_round_trips() -> None:
    stats = Stats()
    for user in ("a", "b", "c"):
        stats.launch("northgate", "clinical-desktop", "desktop", user, served=user != "c",
                     now=10.0)
    parsed = parse(stats.snapshot(10.0))
    assert parsed.replica == stats.replica
    assert parsed.pools == {POOL: (3, 1, 1)}
    with pytest.raises(ValueError):
        parse({"version": 2, "replica": "x"})
    with pytest.raises(ValueError):
        parse(["not", "a", "document"])


def test_launch_rate_sums_replicas_and_survives_a_restart() -> None:
    tracker = PortalStats(STARTED)
    # First sight: a baseline (yesterday's launches are not a storm).
    tracker.add([sample("a", 1000), sample("b", 500)], now=0)
    assert tracker.demand(*POOL, now=0).launch_rate_per_minute == 0
    changed, _ = tracker.add([sample("a", 1030), sample("b", 505)], now=30)
    assert changed == {POOL}
    # Replica a restarted (its counter went down): 3 new launches, not -1027.
    tracker.add([sample("a", 3), sample("b", 505)], now=40)
    demand = tracker.demand(*POOL, now=40)
    # 30 + 5 + 3 launches within the last minute: 38 per minute.
    assert demand.launch_rate_per_minute == pytest.approx(38.0)
    later = tracker.demand(*POOL, now=40 + RATE_WINDOW - 60)  # only the long window left
    assert later.launch_rate_per_minute == pytest.approx(38 / (RATE_WINDOW / 60))
    assert tracker.demand(*POOL, now=40 + RATE_WINDOW + 1).launch_rate_per_minute == 0


def test_waiting_users_are_unserved_until_their_replica_goes_quiet() -> None:
    tracker = PortalStats(STARTED)
    tracker.add([sample("a", 0), sample("b", 0)], now=0)
    tracker.add([sample("a", 4, unserved=4, waiting=3), sample("b", 1, waiting=1)], now=5)
    assert tracker.demand(*POOL, now=5).unserved == 4
    tracker.add([sample("a", 4, unserved=4, waiting=3)], now=200)  # b stopped answering
    assert tracker.demand(*POOL, now=200).unserved == 3  # the unserved window passed
    assert tracker.demand("northgate", "other", now=200).unserved == 0


def test_dry_run_figures_accumulate_across_replicas_and_restarts() -> None:
    tracker = PortalStats(STARTED)
    assert tracker.dry_run("northgate", "trial") is None
    tracker.add([sample("a", 0, evaluated=100, would=20), sample("b", 0)], now=0)
    tracker.add([sample("a", 0, evaluated=110, would=22), sample("b", 0, evaluated=5)],
                now=5)
    _, changed = tracker.add([sample("a", 0, evaluated=1, would=1)], now=10)  # a restarted
    assert changed == {("northgate", "trial")}
    figures = tracker.dry_run("northgate", "trial")
    assert figures is not None
    assert (figures.evaluated, figures.would_change, figures.since) == (16, 3, STARTED)
    _, unchanged = tracker.add([sample("a", 0, evaluated=1, would=1)], now=15)
    assert unchanged == set()


def test_stats_urls_come_from_ready_endpoints_of_the_internal_port() -> None:
    slices = [{"ports": [{"name": "http", "port": 8080}, {"name": "internal", "port": 9090}],
               "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": True}},
                             {"addresses": ["10.0.0.6"], "conditions": {"ready": False}},
                             {"addresses": ["fd00::7"]}]}]
    assert endpoint_urls(slices) == ["http://10.0.0.5:9090/v1/stats",
                                     "http://[fd00::7]:9090/v1/stats"]


def test_a_lone_launch_is_a_waiting_user_not_a_rate() -> None:
    tracker = PortalStats(STARTED)
    tracker.add([sample("a", 0)], now=0)
    tracker.add([sample("a", 1, unserved=1, waiting=1)], now=5)
    demand = tracker.demand(*POOL, now=5)
    assert demand.launch_rate_per_minute == 0 and demand.unserved == 1
    tracker.add([sample("a", 4, unserved=1, waiting=1)], now=10)
    assert tracker.demand(*POOL, now=10).launch_rate_per_minute == pytest.approx(4.0)
