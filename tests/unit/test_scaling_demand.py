"""Demand-aware scale-out and scale to zero: the logons the gateway sees drive the pool
ahead of the sessions that exist, and a pool that nobody uses can empty."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from deskfleet.scaling.decide import Decision, Demand, Host, Memory, decide
from deskfleet.scaling.demand import expected_logons, free_slots_to_keep

from .test_scaling_core import NOW, host, spec

NIGHT = {"timeZone": "UTC", "phases": [
    {"name": "night", "type": "offPeak", "start": "00:00", "end": "06:00", "bufferSessions": 0}]}


def test_the_reserve_is_rate_times_startup_times_margin() -> None:
    # 12 logons a minute, 4-minute start-up, 50% margin: 72 slots.
    assert expected_logons(Demand(12.0), 240, 50) == 72
    assert expected_logons(Demand(0.1), 180, 0) == 1  # 0.3 of a logon still needs a slot
    assert expected_logons(Demand(0.0), 240, 50) == 0
    # Users already waiting come on top; the buffer is a floor under the reserve.
    assert free_slots_to_keep(Demand(12.0, unserved=5), 8, 240, 50) == 77
    assert free_slots_to_keep(Demand(1.0), 64, 240, 50) == 64


def test_an_unannounced_storm_is_met_in_one_pass() -> None:
    """No phase, a pool of 3 busy hosts: the rate alone adds what a start-up needs."""
    busy = [host(f"h{i}", 6) for i in range(3)]  # 18 of 24 slots
    quiet = decide(spec(maxScaleOutStep=50), busy, NOW, Memory(), 3, Demand(0.2, 0, 240))
    assert quiet.replicas == 3  # 18 + max(4, 2) = 20 slots
    storm = decide(spec(maxScaleOutStep=50), busy, NOW, Memory(), 3, Demand(12.0, 0, 240))
    assert storm.replicas == 12 and storm.direction == "up"  # ceil((18 + 72) / 8)
    # Users already refused come first, on top of the reserve.
    refused = decide(spec(maxScaleOutStep=50), busy, NOW, Memory(), 3, Demand(12.0, 9, 240))
    assert refused.replicas == 13  # ceil((18 + 9 + 72) / 8)


def test_hosts_still_starting_count_as_capacity_for_the_logons_expected_meanwhile() -> None:
    """The reserve is sized for the logons expected while a host starts: once enough
    hosts are on their way, the next pass adds no more (no runaway while they start)."""
    busy = [host(f"h{i}", 6) for i in range(3)]
    starting = [host(f"s{i}", None, ready=False, created_h=0.02) for i in range(9)]
    d = decide(spec(maxScaleOutStep=50), busy + starting, NOW, Memory(), 12,
               Demand(12.0, 0, 240))
    assert d.replicas == 12


def test_the_startup_estimate_is_used_until_one_is_measured() -> None:
    busy = [host("h0", 8)]
    estimated = decide(spec(maxScaleOutStep=50, demand={"startupEstimate": "10m",
                                                        "marginPercent": 0}),
                       busy, NOW, Memory(), 1, Demand(6.0))
    assert estimated.replicas == 1 + 60 // 8 + 1  # 8 + 60 slots -> 9 hosts
    measured = decide(spec(maxScaleOutStep=50, demand={"startupEstimate": "10m",
                                                       "marginPercent": 0}),
                      busy, NOW, Memory(), 1, Demand(6.0, 0, 120.0))
    assert measured.replicas == 3  # 8 + 12 slots


def drive_to_steady(pool_spec: object, hosts: list[Host], demand: Demand | None,
                    passes: int = 12) -> tuple[list[Host], Decision]:
    """Apply decisions as the operator would, 10 minutes apart, every host empty."""
    memory = Memory()
    now = NOW.replace(hour=1)
    d = None
    for _ in range(passes):
        d = decide(pool_spec, hosts, now, memory, len(hosts), demand)  # type: ignore[arg-type]
        memory = d.memory
        then, now = now, now + timedelta(minutes=10)
        kept = [Host(h.name, h.created_at, True, 0, now - timedelta(seconds=5),
                     then if h.name in d.drain else h.draining_since)
                for h in hosts if h.name not in d.remove]
        kept += [Host(f"new-{then:%H%M}-{i}", then, True, 0, now - timedelta(seconds=5))
                 for i in range(d.replicas - len(kept))]
        hosts = kept
    assert d is not None
    return hosts, d


def test_min_hosts_zero_and_a_phase_buffer_of_zero_reach_zero_hosts() -> None:
    night = spec(minHosts=0, bufferSessions=2, scaleInDelay="5m", schedule=NIGHT)
    hosts, _ = drive_to_steady(night, [host("a", 0), host("b", 0)], Demand())
    assert hosts == []


def test_the_first_launch_starts_a_host() -> None:
    night = spec(minHosts=0, bufferSessions=2, schedule=NIGHT)
    assert decide(night, [], NOW.replace(hour=3), Memory(), 0, Demand()).replicas == 0
    waiting = decide(night, [], NOW.replace(hour=3), Memory(), 0, Demand(unserved=1))
    assert (waiting.replicas, waiting.direction) == (1, "up")
    launching = decide(night, [], NOW.replace(hour=3), Memory(), 0, Demand(0.5))
    assert launching.replicas == 1


def test_without_a_demand_signal_a_full_pool_still_keeps_one_slot() -> None:
    """A pool whose demand nobody collects cannot see a refused logon: it keeps a slot."""
    night = spec(minHosts=0, bufferSessions=2, schedule=NIGHT)
    assert decide(night, [], NOW.replace(hour=3), Memory(), 0).replicas == 1


@given(rate=st.floats(0, 60), unserved=st.integers(0, 50), startup=st.floats(30, 900),
       busy=st.lists(st.integers(0, 8), max_size=10))
def test_scale_out_covers_the_reserve_or_stops_at_the_limits(
        rate: float, unserved: int, startup: float, busy: list[int]) -> None:
    pool = spec(maxHosts=40, maxScaleOutStep=40, bufferSessions=4)
    hosts = [host(f"h{i}", n) for i, n in enumerate(busy)]
    d = decide(pool, hosts, NOW, Memory(), len(hosts), Demand(rate, unserved, startup))
    free = 8 * d.replicas - sum(busy)
    assert d.replicas <= 40
    if d.replicas < 40 and d.direction == "up":
        assert free >= free_slots_to_keep(Demand(rate, unserved, startup), 4, startup, 50)


def test_sessions_ending_on_serving_hosts_are_taken_off_the_rate() -> None:
    # A clinic of back-to-back consultations: one ends for every one that starts.
    steady = Demand(12.0, 0, 240, ended_per_minute=12.0)
    assert expected_logons(steady, 240, 50) == 0
    assert expected_logons(Demand(12.0, 0, 240, ended_per_minute=4.0), 240, 50) == 48
    # More ending than starting never makes the reserve negative.
    assert free_slots_to_keep(Demand(2.0, 3, 240, ended_per_minute=9.0), 4, 240, 50) == 7
