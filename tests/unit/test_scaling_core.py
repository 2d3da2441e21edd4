"""The scaling core: table tests of the rules and hypothesis properties of the guarantees
(never above max or below min, never removes a host with sessions unless a forced logoff
was configured and waited for, never scales in on missing or stale data, deterministic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deskfleet.api.sessionhostpool import SessionHostPoolSpec
from deskfleet.scaling.decide import Host, Memory, accepting, decide
from deskfleet.scaling.schedule import active_phase

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday


def spec(**scaling: Any) -> SessionHostPoolSpec:
    base: dict[str, Any] = {"minHosts": 1, "maxHosts": 20, "bufferSessions": 4,
                            "scaleInDelay": "10m"}
    return SessionHostPoolSpec.model_validate(
        {"image": "x", "sessionsPerHost": 8, "scaling": {**base, **scaling}}, by_alias=True)


def host(name: str, sessions: int | None, ready: bool = True, age_s: float = 5,
         draining_for: float | None = None, created_h: float = 1) -> Host:
    return Host(name, NOW - timedelta(hours=created_h), ready, sessions,
                NOW - timedelta(seconds=age_s) if sessions is not None else None,
                NOW - timedelta(seconds=draining_for) if draining_for is not None else None)


def test_scales_out_for_sessions_plus_buffer() -> None:
    d = decide(spec(), [host("a", 8), host("b", 7)], NOW, Memory(), 2)
    # 15 sessions + 4 buffer = 19 slots -> 3 hosts
    assert (d.replicas, d.direction) == (3, "up")


def test_scale_out_is_limited_by_step_and_max() -> None:
    hosts = [host(f"h{i}", 8) for i in range(3)]
    # 24 sessions + 20 buffer = 44 slots -> 6 hosts wanted
    assert decide(spec(bufferSessions=20, maxScaleOutStep=2), hosts, NOW, Memory(),
                  3).replicas == 5
    assert decide(spec(bufferSessions=20, maxHosts=4), hosts, NOW, Memory(), 3).replicas == 4


def test_surplus_waits_for_the_scale_in_delay() -> None:
    hosts = [host("a", 1), host("b", 0), host("c", 0)]
    first = decide(spec(), hosts, NOW, Memory(), 3)
    assert first.replicas == 3 and first.drain == () and first.memory.surplus_since == NOW
    # Eleven minutes on (reports kept fresh by the agents' heartbeats):
    later = decide(spec(), hosts, NOW, Memory(surplus_since=NOW - timedelta(minutes=11)), 3)
    assert later.direction == "down" and later.drain == ("b", "c")  # empties, then by age, name
    # Never drained and removed in one pass: the Service may still route a logon to them.
    assert later.remove == ()


def test_a_drained_host_goes_only_after_an_empty_report_made_after_the_drain() -> None:
    just_drained = [host("a", 1), host("b", 0, age_s=5, draining_for=8)]
    assert decide(spec(), just_drained, NOW, Memory(), 2).remove == ()
    confirmed = [host("a", 1), host("b", 0, age_s=5, draining_for=20)]
    assert decide(spec(), confirmed, NOW, Memory(), 2).remove == ("b",)


def test_never_scales_in_on_stale_or_missing_signal() -> None:
    hosts = [host("a", 0), host("b", 0, age_s=600), host("c", 0)]
    d = decide(spec(), hosts, NOW, Memory(surplus_since=NOW - timedelta(hours=1)), 3)
    assert d.drain == () and d.remove == () and not d.signal_ok
    assert "no fresh session report from b" in d.reason


def test_unreported_hosts_count_as_full_only_once_they_should_have_reported() -> None:
    new = [host("a", None, created_h=0.01), host("b", None, created_h=0.01)]
    assert decide(spec(), new, NOW, Memory(), 2).replicas == 2
    old = [host("a", None, created_h=1), host("b", None, created_h=1)]
    assert decide(spec(), old, NOW, Memory(), 2).replicas == 3  # 16 assumed + 4 buffer
    stale = [host("a", 0, age_s=600), host("b", 0, age_s=600)]
    assert decide(spec(), stale, NOW, Memory(), 2).replicas == 3


def test_draining_host_with_sessions_stays_until_empty() -> None:
    hosts = [host("a", 2), host("b", 3, draining_for=3600)]
    d = decide(spec(), hosts, NOW, Memory(), 2)
    assert "b" not in d.remove
    d = decide(spec(), [host("a", 2), host("b", 0, draining_for=3600)], NOW, Memory(), 2)
    assert d.remove == ("b",) and d.replicas == 1


def test_forced_logoff_only_after_max_wait() -> None:
    forced = spec(drain={"maxWait": "2h", "forceLogoff": True})
    hosts = [host("a", 2), host("b", 3, draining_for=3600)]
    assert decide(forced, hosts, NOW, Memory(), 2).remove == ()
    hosts = [host("a", 2), host("b", 3, draining_for=7300)]
    d = decide(forced, hosts, NOW, Memory(), 2)
    assert d.remove == ("b",) and d.logoff == ("b",)


def test_load_returning_undrains_before_adding() -> None:
    hosts = [host("a", 8), host("b", 5, draining_for=60)]
    d = decide(spec(), hosts, NOW, Memory(), 2)
    assert d.undrain == ("b",) and d.direction == "up"


def test_removal_waits_while_another_host_is_not_ready() -> None:
    hosts = [host("a", 2), host("b", 0, draining_for=60), host("c", None, ready=False)]
    d = decide(spec(), hosts, NOW, Memory(), 3)
    assert d.remove == () and "waits" in d.reason


def test_a_full_pool_always_grows_even_without_a_buffer() -> None:
    hosts = [host("a", 8), host("b", 8)]
    assert decide(spec(bufferSessions=0), hosts, NOW, Memory(), 2).replicas == 3
    assert decide(spec(bufferSessions=None, bufferPercent=0), hosts, NOW, Memory(),
                  2).replicas == 3


def test_paused_changes_nothing() -> None:
    hosts = [host(f"h{i}", 8) for i in range(3)]
    d = decide(spec(paused=True), hosts, NOW, Memory(), 3)
    assert (d.replicas, d.drain, d.remove, d.direction) == (3, (), (), "none")


def test_full_and_draining_hosts_do_not_accept() -> None:
    assert accepting(host("a", 7), 8) and not accepting(host("a", 8), 8)
    assert not accepting(host("a", 0, draining_for=1), 8)


SCHEDULE = {"timeZone": "Europe/London", "holidays": ["2026-12-25"], "phases": [
    {"name": "storm", "type": "rampUp", "start": "07:00", "end": "09:30", "minHosts": 12}]}


def test_schedule_phase_in_local_time_and_holidays() -> None:
    s = spec(schedule=SCHEDULE).scaling.schedule
    # London is UTC+0 in November: 07:00 local == 07:00 UTC.
    assert active_phase(s, datetime(2026, 11, 24, 6, 59, tzinfo=UTC)).name == "base"
    assert active_phase(s, datetime(2026, 11, 24, 7, 0, tzinfo=UTC)).name == "storm"
    assert active_phase(s, datetime(2026, 11, 28, 8, 0, tzinfo=UTC)).name == "base"  # Sat
    assert active_phase(s, datetime(2026, 12, 25, 8, 0, tzinfo=UTC)).name == "holiday"
    # In June London is UTC+1: 07:00 local is 06:00 UTC.
    assert active_phase(s, datetime(2027, 6, 1, 6, 0, tzinfo=UTC)).name == "storm"


def test_phase_raises_the_floor_at_its_start() -> None:
    hosts = [host("a", 0), host("b", 0)]
    before = decide(spec(schedule=SCHEDULE), hosts, datetime(2026, 11, 24, 6, 59, tzinfo=UTC),
                    Memory(), 2)
    at = decide(spec(schedule=SCHEDULE), hosts, datetime(2026, 11, 24, 7, 0, tzinfo=UTC),
                Memory(), 2)
    assert before.replicas == 2 and at.replicas == 12 and at.phase.name == "storm"


# --- properties --------------------------------------------------------------------------

hosts_strategy = st.lists(
    st.builds(
        host,
        name=st.sampled_from([f"h{i}" for i in range(12)]),
        sessions=st.one_of(st.none(), st.integers(0, 8)),
        ready=st.booleans(),
        age_s=st.sampled_from([1, 30, 119, 121, 3600]),
        draining_for=st.one_of(st.none(), st.floats(0, 20000)),
        created_h=st.floats(0, 48),
    ),
    max_size=12, unique_by=lambda h: h.name)
spec_strategy = st.builds(
    lambda lo, hi, buf, force, wait, paused: spec(
        minHosts=lo, maxHosts=max(lo, hi), bufferSessions=buf, paused=paused,
        drain={"forceLogoff": force, "maxWait": f"{wait}s"}),
    st.integers(0, 6), st.integers(1, 15), st.integers(0, 30), st.booleans(),
    st.integers(0, 20000), st.booleans())
memory_strategy = st.builds(Memory, st.one_of(
    st.none(), st.sampled_from([NOW, NOW - timedelta(minutes=5), NOW - timedelta(hours=2)])))


@settings(max_examples=400, deadline=None)
@given(spec_strategy, hosts_strategy, memory_strategy, st.integers(0, 15))
def test_guarantees(pool: SessionHostPoolSpec, hosts: list[Host], memory: Memory,
                    replicas: int) -> None:
    d = decide(pool, hosts, NOW, memory, replicas)
    scaling = pool.scaling
    if scaling.paused:
        assert d.replicas == replicas and not (d.drain or d.remove)
        return
    # Bounds: never above max unless it was already (then never grows); floor respected
    # whenever there is room.
    start = max(replicas, len(hosts))
    assert d.replicas <= max(scaling.max_hosts, start)
    if d.replicas > start:
        assert d.replicas <= scaling.max_hosts
    if not d.remove:
        assert d.replicas >= min(scaling.min_hosts, scaling.max_hosts) or d.replicas >= start
    # Never removes a host with sessions (or unknown) unless forced logoff after maxWait.
    by_name = {h.name: h for h in hosts}
    max_wait = scaling.drain.max_wait
    for name in d.remove:
        h = by_name[name]
        # Only hosts already draining before this pass; a drained host's "empty" counts
        # only from a report made after the drain plus the grace.
        assert h.draining_since is not None
        empty = (h.fresh(NOW, 120) and h.sessions == 0 and h.reported_at is not None and
                 (h.reported_at - h.draining_since).total_seconds() >= 10)
        never_ready = not h.ready and h.reported_at is None
        if not (empty or never_ready):
            assert scaling.drain.force_logoff and name in d.logoff
            assert h.draining_since is not None
            assert (NOW - h.draining_since).total_seconds() >= int(max_wait.rstrip("s"))
    # Never scales in on missing or stale data.
    if any(h.ready and not h.fresh(NOW, 120) for h in hosts):
        assert d.drain == ()
    # Deterministic, whatever the order of the hosts.
    assert decide(pool, list(reversed(hosts)), NOW, memory, replicas) == d


def test_without_agents_the_pool_holds_and_only_grows_to_the_floor() -> None:
    no_agent = SessionHostPoolSpec.model_validate(
        {"image": "x", "sessionsPerHost": 8, "agent": {"enabled": False},
         "scaling": {"minHosts": 3, "maxHosts": 20}}, by_alias=True)
    silent = [host("a", None, created_h=5), host("b", None, created_h=5)]
    grow = decide(no_agent, silent, NOW, Memory(), 2)
    assert (grow.replicas, grow.direction) == (3, "up")
    # More hosts than the floor (a phase ended): without a signal nothing is drained.
    many = [host(f"h{i}", None, created_h=5) for i in range(6)]
    hold = decide(no_agent, many, NOW + timedelta(hours=3), Memory(), 6)
    assert (hold.replicas, hold.direction, hold.drain, hold.remove) == (6, "none", (), ())
    assert "agent disabled" in hold.reason


def test_a_rolling_updates_surge_never_raises_the_replica_count() -> None:
    # 3 replicas, but 4 pods during a rollout (maxSurge): the count stays the
    # Deployment's, and nothing is drained or removed until the rollout is over.
    pods = [host("old-a", 0), host("old-b", 0), host("old-c", 0), host("new-a", 0, age_s=1)]
    long_surplus = Memory(surplus_since=NOW - timedelta(hours=1))
    d = decide(spec(minHosts=1, bufferSessions=1), pods, NOW, long_surplus, 3)
    assert d.replicas == 3 and d.drain == () and d.remove == ()
    assert "rolling update" in d.reason
    busy = [host(f"h{i}", 8) for i in range(4)]
    grow = decide(spec(maxScaleOutStep=2), busy, NOW, Memory(), 3)
    assert grow.replicas <= 3 + 2
