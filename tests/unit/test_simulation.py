"""The simulation: workloads and scenarios, the simulated pool, the baselines, the
clairvoyant references, and the acceptance targets deskfleet is judged on."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deskfleet.api.sessionhostpool import SessionHostPoolSpec
from deskfleet.simulation.bounds import clairvoyant_host_seconds, placement_without_migration
from deskfleet.simulation.cluster import LOGOFF_SECONDS, Cluster
from deskfleet.simulation.policies import DeskfleetPolicy, HostState, HpaPolicy, Observation
from deskfleet.simulation.pool import STARTUP, deskfleet_pool, deskfleet_pool_dict
from deskfleet.simulation.report import TARGET_FORCED, TARGET_PLAIN, checks
from deskfleet.simulation.run import (
    DEFAULT_SEED,
    SimOptions,
    SimulationResult,
    default_policies,
    simulate,
)
from deskfleet.simulation.scenarios import SCENARIOS
from deskfleet.simulation.workload import (
    LONDON,
    concurrent_at,
    generate,
    peak_concurrency,
)

DESKFLEET, FORCED = "deskfleet", "deskfleet, forced logoff after 60 min"
HPA, STATIC = "HPA-style target tracking", "static peak sizing"


@pytest.fixture(scope="module")
def day() -> SimulationResult:
    w = SCENARIOS["current"].build(DEFAULT_SEED, 3000)
    spec = deskfleet_pool()
    return simulate(w, spec, SimOptions(seed=DEFAULT_SEED),
                    default_policies(w, spec, timedelta(minutes=60)),
                    "current")


# --- the workload and the scenarios ------------------------------------------------------

def test_workload_is_deterministic_per_seed() -> None:
    assert generate(7) == generate(7)
    assert generate(7).sessions != generate(8).sessions


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 1, 2])
def test_workload_is_a_hospital_day(seed: int) -> None:
    w = generate(seed)
    assert 800 <= peak_concurrency(w) <= 1200
    assert all(s.arrival.tzinfo is LONDON for s in w.sessions)
    today = [s for s in w.sessions if s.arrival >= w.day_start]
    bins = Counter((s.arrival.hour * 60 + s.arrival.minute) // 30 for s in today)
    storm = max(bins, key=lambda b: bins[b])
    assert 7 * 60 + 30 <= storm * 30 < 8 * 60 + 30, "the busiest half hour is the logon storm"

    def at(hour: float) -> int:
        return concurrent_at(w, w.day_start + timedelta(hours=hour))

    night = [at(h) for h in (22.5, 23.5, 1, 3, 5, 6.5)]
    assert all(70 <= n <= 160 for n in night), night
    assert at(13) < 0.8 * at(10) and at(13) < at(15.5), "a lunch dip, then the afternoon"
    # Some sessions end disconnected, never longer than half of the session.
    tails = [s for s in w.sessions if s.disconnected]
    assert 0.05 < len(tails) / len(w.sessions) < 0.15
    assert all(s.disconnected <= s.duration / 2 for s in tails)


def test_staff_scales_the_load() -> None:
    assert peak_concurrency(generate(3, staff=1500)) < 0.65 * peak_concurrency(generate(3))


def test_scenarios_are_the_days_they_say() -> None:
    days = {name: s.build(1, 3000) for name, s in SCENARIOS.items()}
    assert days["current"].sessions == generate(1).sessions  # the ordinary day, unchanged
    tele = days["teleconsultation"]
    lengths = sorted(s.duration.total_seconds() / 60 for s in tele.sessions)
    assert 17 < lengths[len(lengths) // 2] < 23  # twenty-minute consultations
    opening = [s for s in tele.sessions if tele.day_start + timedelta(hours=9) <= s.arrival
               < tele.day_start + timedelta(hours=9, minutes=15)]
    assert len(opening) > 200  # the clinic opens at 09:00: a storm
    monday, weekday = days["holiday-monday"], days["current"]
    assert monday.day_start.weekday() == 0
    assert peak_concurrency(monday) > 1.3 * peak_concurrency(weekday)
    night = days["night-shift"]
    assert concurrent_at(night, night.day_start + timedelta(hours=23)) > 2 * concurrent_at(
        night, night.day_start + timedelta(hours=12)) / 2
    assert SCENARIOS["current"].build(5, 3000) == SCENARIOS["current"].build(5, 3000)


# --- the simulated pool ----------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_cluster_keeps_its_books_whatever_the_autoscaler_does(seed: int) -> None:
    """Random logons with disconnected tails and a random, even hostile, autoscaler: no
    host ever holds more sessions than it has slots, no session is on two hosts, the
    connected count is never negative nor above the sessions, waits are positive."""
    rng = random.Random(seed)
    cluster = Cluster(3, 60, 0, 3600, placement=rng.choice(["random", "least-loaded"]),
                      startup_spread=rng.choice([0, 30]), seed=seed)
    arrivals = sorted((rng.uniform(0, 3600), rng.uniform(10, 900)) for _ in range(120))
    logons = [(i, a, length, rng.choice([0.0, length / 3])) for i, (a, length)
              in enumerate(arrivals)]
    nxt = 0
    for tick in range(0, 3601, 30):
        first = nxt
        while nxt < len(logons) and logons[nxt][1] <= tick:
            nxt += 1
        cluster.advance(tick, logons[first:nxt])
        names = list(cluster.hosts)
        remove = tuple(n for n in names if rng.random() < 0.05)
        keep = [n for n in names if n not in remove]
        drain = tuple(n for n in keep if rng.random() < 0.1)
        undrain = tuple(n for n in keep if n not in drain and rng.random() < 0.1)
        accepting = tuple(n for n in keep if rng.random() < 0.7)
        logoff = tuple(n for n in keep if rng.random() < 0.05)
        cluster.apply(tick, len(keep) + rng.randint(0, 2), remove, drain, undrain,
                      accepting, {n: tick + 60.0 for n in drain}, logoff)
        placed = [s for h in cluster.hosts.values() for s in h.sessions]
        assert all(len(h.sessions) <= 3 for h in cluster.hosts.values())
        assert len(placed) == len(set(placed)) == cluster.sessions
        assert all(0 <= h.connected <= len(h.sessions) for h in cluster.hosts.values())
        assert all(h.ready(tick) or not h.sessions for h in cluster.hosts.values())
    cluster.finish()
    assert all(w > 0 for w in cluster.tally.waits)


def test_a_logon_waits_for_a_starting_host() -> None:
    cluster = Cluster(sessions_per_host=1, startup=240, measure_from=0, measure_to=1000)
    cluster.apply(0, 1)
    cluster.advance(100, [(0, 10, 500, 0)])  # no ready host yet: it waits
    assert cluster.waiting == 1
    cluster.advance(300, [])
    assert cluster.waiting == 0 and cluster.tally.waits == [230]


def test_logons_land_only_on_accepting_hosts_least_loaded_first() -> None:
    cluster = Cluster(4, 0, 0, 1000, placement="least-loaded")
    cluster.apply(0, 3)
    cluster.advance(1, [(0, 1, 500, 0), (1, 1, 500, 0), (2, 1, 500, 0)])
    assert sorted(len(h.sessions) for h in cluster.hosts.values()) == [1, 1, 1]
    cluster.apply(2, 3, accepting=("host-00002",))
    cluster.advance(3, [(3, 3, 500, 0), (4, 3, 500, 0)])
    assert len(cluster.hosts["host-00002"].sessions) == 3


def test_a_disconnected_session_holds_its_slot_but_not_a_connection() -> None:
    cluster = Cluster(2, 0, 0, 10_000)
    cluster.apply(0, 1)
    cluster.advance(10, [(0, 10, 1000, 400)])  # disconnected from 610 to 1010
    host = cluster.hosts["host-00001"]
    cluster.advance(700, [])
    assert (len(host.sessions), host.connected) == (1, 0)
    assert host.reported(500) == (1, 1) and host.reported(700) == (1, 0)  # lagging views
    cluster.advance(1100, [])
    assert (len(host.sessions), host.connected) == (0, 0)


def test_a_forced_logoff_ends_the_sessions_and_the_users_come_back() -> None:
    cluster = Cluster(2, 0, 0, 10_000)
    cluster.apply(0, 2)  # new hosts accept, as the pod template says ...
    cluster.apply(1, 2, accepting=("host-00001",))  # ... until the operator says otherwise
    cluster.advance(10, [(0, 10, 5000, 0), (1, 10, 100, 50)])
    cluster.apply(200, 2, drain=("host-00001",), deadlines={"host-00001": 3800.0},
                  accepting=("host-00002",))
    cluster.advance(3800, [])  # the short session has ended by itself meanwhile
    cluster.apply(3800, 2, logoff=("host-00001",))
    assert cluster.tally.logged_off == 1 and cluster.tally.notice_seconds == [3600]
    cluster.advance(3800 + LOGOFF_SECONDS, [])
    # The one still working logged on again, on a host that accepts, for the rest.
    assert cluster.tally.reconnects == 1 and cluster.hosts["host-00002"].sessions == {0}
    cluster.apply(4000, 1, remove=("host-00001",))
    assert cluster.tally.cut == 0 and cluster.tally.cut_after_notice == 0


def test_removing_a_host_with_sessions_cuts_them_and_says_whether_they_were_told() -> None:
    cluster = Cluster(2, 0, 0, 10_000)
    cluster.apply(0, 2)
    cluster.apply(1, 2, accepting=("host-00001",))
    cluster.advance(10, [(0, 10, 5000, 0)])
    cluster.apply(20, 1, remove=("host-00001",))
    assert cluster.tally.cut == 1 and cluster.tally.reconnects == 1


def test_clairvoyant_bound_integrates_whole_hosts() -> None:
    levels = [(0.0, 1), (100.0, 9), (200.0, 0)]
    assert clairvoyant_host_seconds(levels, 0, 300, per_host=8) == 100 * 1 + 100 * 2
    assert clairvoyant_host_seconds(levels, 150, 250, per_host=8) == 50 * 2


def test_placement_without_migration_fits_sessions_by_their_ends() -> None:
    # Sessions that end before their host's last one cost nothing more ...
    assert placement_without_migration([(0, 1000), (10, 500), (20, 400)], 0, 2000, 3) == (
        1000, 1)
    # ... and a full host opens another, which lives as long as its own sessions.
    assert placement_without_migration([(0, 1000), (10, 500), (20, 400)], 0, 2000, 2) == (
        1000 + 380, 2)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(1, 500)), min_size=1, max_size=60),
       st.integers(1, 4))
def test_no_migration_sits_between_the_bound_and_one_host_per_session(
        spans: list[tuple[float, float]], per_host: int) -> None:
    sessions = [(a, a + d) for a, d in spans]
    levels: list[tuple[float, int]] = []
    level = 0
    for moment, delta in sorted([(a, 1) for a, _ in sessions] + [(b, -1) for _, b in sessions]):
        level += delta
        levels.append((moment, level))
    bound = clairvoyant_host_seconds(levels, 0, 2000, per_host)
    seconds, _ = placement_without_migration(sessions, 0, 2000, per_host)
    assert bound - 1e-6 <= seconds <= sum(b - a for a, b in sessions) + 1e-6


# --- the baselines and the policy driving the core ---------------------------------------

def _hosts(*sessions: int, ready: bool = True) -> list[HostState]:
    start = datetime(2026, 11, 24, tzinfo=UTC)
    return [HostState(f"h{i}", start + timedelta(minutes=i), ready, n,
                      reported_at=start + timedelta(hours=12)) for i, n in enumerate(sessions)]


def test_hpa_scales_up_at_once_and_down_only_after_its_window() -> None:
    hpa = HpaPolicy(8)
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    seen = Observation()
    assert hpa.step(now, _hosts(8, 8, 8, 8), seen).replicas == 6  # 32 / (8 x 0.7) -> 6
    quiet = _hosts(1, 1, 1, 1, 1, 1)
    assert hpa.step(now + timedelta(minutes=1), quiet, seen).replicas == 6
    assert hpa.step(now + timedelta(minutes=4), quiet, seen).replicas == 6
    down = hpa.step(now + timedelta(minutes=6), quiet, seen)
    assert down.replicas == 2 and down.remove == ("h5", "h4", "h3", "h2")  # newest first


def test_deskfleet_policy_drives_the_real_core_with_the_demand_it_saw() -> None:
    policy = DeskfleetPolicy(deskfleet_pool())
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    quiet = policy.step(now, _hosts(8, 8, 8), Observation())
    assert quiet.replicas == 3 + 1  # (24 sessions + 8 buffer) / 8
    storm = DeskfleetPolicy(deskfleet_pool()).step(now, _hosts(8, 8, 8),
                                                   Observation(12.0, 5, 240.0))
    assert storm.replicas == 13  # 24 sessions + 5 waiting + 12 x 4 min x 1.5: 101 slots
    assert not storm.remove and not storm.drain


def test_a_pool_counting_tcp_connections_cannot_see_disconnected_sessions() -> None:
    body = deskfleet_pool_dict()
    body["agent"]["sessionSource"] = "tcp"
    tcp = DeskfleetPolicy(SessionHostPoolSpec.model_validate(body, by_alias=True))
    host = HostState("h", datetime(2026, 11, 24, tzinfo=UTC), True, 3, connected=1,
                     reported_at=datetime(2026, 11, 24, 1, tzinfo=UTC))
    assert tcp.view(host).sessions == 1
    assert DeskfleetPolicy(deskfleet_pool()).view(host).sessions == 3


# --- the day and the scenarios, judged ------------------------------------------------------

def test_every_policy_costs_at_least_the_bound(day: SimulationResult) -> None:
    assert {p.name for p in day.policies} == {STATIC, HPA, DESKFLEET, FORCED}
    assert day.clairvoyant_host_hours <= day.no_migration_host_hours
    for p in day.policies:
        assert p.host_hours >= day.clairvoyant_host_hours, p.name
        assert p.logons == day.logons


def test_the_hpa_baseline_cuts_sessions_and_deskfleet_does_not(day: SimulationResult) -> None:
    assert day.policy(HPA).cut > 0
    assert day.policy(STATIC).cut == 0
    assert day.policy(DESKFLEET).cut == day.policy(FORCED).cut == 0
    assert day.policy(FORCED).logged_off > 0
    assert day.policy(FORCED).shortest_notice == 3600


@pytest.mark.parametrize("name", [n for n, s in SCENARIOS.items() if not s.rollout])
def test_scenario_meets_the_targets_without_a_phase(name: str) -> None:
    """No schedule phase: demand, not a phase tuned to the day, meets its storms."""
    spec = deskfleet_pool()
    assert spec.scaling.schedule is None
    w = SCENARIOS[name].build(1, 3000)
    result = simulate(w, spec, SimOptions(seed=1),
                      default_policies(w, spec, timedelta(minutes=60), baselines=False), name)
    longest = (STARTUP + timedelta(minutes=1)).total_seconds()
    for p in result.policies:
        assert p.cut == 0 and p.wait_max <= longest, p.name
    assert result.policy(DESKFLEET).host_hours <= TARGET_PLAIN * result.clairvoyant_host_hours
    forced = result.policy(FORCED).host_hours / result.clairvoyant_host_hours
    if name == "teleconsultation":
        # Twenty-minute sessions never reach a 60-minute deadline: forced logoff cannot
        # help, and the day misses 1.20 (see docs/autoscaling.md). Flag the day it is met.
        assert forced > TARGET_FORCED
        assert result.policy(FORCED).logged_off == 0
    else:
        assert forced <= TARGET_FORCED
    assert all(ok for ok, text in checks(result) if "1.20x" not in text or
               name != "teleconsultation")


def test_a_patch_day_rolls_without_cutting_where_a_deployment_rollout_cuts_hundreds() -> None:
    """The image changes at 10:00 with ~900 sessions open (1,000 staff: a third of the
    day, to keep the test fast)."""
    spec = deskfleet_pool()
    w = SCENARIOS["patch-day"].build(1, 1000)
    assert [c.astimezone(LONDON).strftime("%H:%M") for c in w.image_changes] == ["10:00"]
    result = simulate(w, spec, SimOptions(seed=1), default_policies(w, spec), "patch-day")
    by = {p.name: p for p in result.policies}
    plain = by["plain Deployment rollout (maxSurge 25%)"]
    reference = by["deskfleet, no image change (reference)"]
    assert plain.cut > 100 and plain.outdated_until is not None
    assert reference.outdated_until is None or reference.cut == 0
    for name in ("deskfleet", "deskfleet, update deadline 2h", "deskfleet, update deadline 8h",
                 "deskfleet, urgent (15m notice)"):
        p = by[name]
        assert p.cut == 0 and p.cut_after_notice == 0, name
    assert by["deskfleet"].logged_off == 0
    assert by["deskfleet, urgent (15m notice)"].shortest_notice is not None
    assert by["deskfleet, urgent (15m notice)"].shortest_notice >= 15 * 60
    urgent_done = by["deskfleet, urgent (15m notice)"].outdated_until
    assert urgent_done is not None and urgent_done < w.image_changes[0] + timedelta(hours=1)
    assert all(ok for ok, _ in checks(result)), [t for ok, t in checks(result) if not ok]
