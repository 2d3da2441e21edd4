"""The scaling core: table tests of the rules and hypothesis properties of the guarantees
(never above max or below min, never removes a host with sessions unless a forced logoff
was configured and waited for, never scales in on missing or stale data, deterministic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deskfleet.api.sessionhostpool import SessionHostPoolSpec
from deskfleet.scaling.decide import Demand, Host, Memory, accepting, decide
from deskfleet.scaling.schedule import active_phase

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday


def spec(**scaling: Any) -> SessionHostPoolSpec:
    base: dict[str, Any] = {"minHosts": 1, "maxHosts": 20, "bufferSessions": 4,
                            "scaleInDelay": "10m"}
    return SessionHostPoolSpec.model_validate(
        {"image": "x", "sessionsPerHost": 8, "scaling": {**base, **scaling}}, by_alias=True)


def host(name: str, sessions: int | None, ready: bool = True, age_s: float = 5,
         draining_for: float | None = None, created_h: float = 1,
         deadline: datetime | None = None, asked_s: float | None = None,
         message: str | None = None) -> Host:
    return Host(name, NOW - timedelta(hours=created_h), ready, sessions,
                NOW - timedelta(seconds=age_s) if sessions is not None else None,
                NOW - timedelta(seconds=draining_for) if draining_for is not None else None,
                drain_message=message, logoff_deadline=deadline,
                logoff_requested_at=NOW - timedelta(seconds=asked_s)
                if asked_s is not None else None)


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


def test_a_host_that_never_reported_is_unknown_and_one_that_stopped_counts_as_full() -> None:
    new = [host("a", None, created_h=0.01), host("b", None, created_h=0.01)]
    assert decide(spec(), new, NOW, Memory(), 2).replicas == 2
    # Agents that never ran: the hosts are kept (not drained) but drive no growth.
    silent = [host("a", None, created_h=1), host("b", None, created_h=1)]
    d = decide(spec(), silent, NOW, Memory(surplus_since=NOW - timedelta(hours=1)), 2)
    assert (d.replicas, d.drain, d.unknown) == (2, (), ("a", "b"))
    # Agents that stopped: missing data errs towards capacity.
    stale = [host("a", 0, age_s=600), host("b", 0, age_s=600)]
    d = decide(spec(), stale, NOW, Memory(), 2)
    assert d.replicas == 3 and d.unknown == () and d.stale == ("a", "b")


def test_silent_agents_never_grow_a_pool_past_floor_and_buffer() -> None:
    # The hole a second hospital found: every new silent host called for the next.
    hosts: list[Host] = []
    for step in range(30):
        d = decide(spec(minHosts=2, bufferSessions=4), hosts, NOW, Memory(), len(hosts))
        hosts += [host(f"h{step}-{i}", None, created_h=1) for i in range(d.replicas - len(hosts))]
    assert len(hosts) == 2


def test_draining_host_with_sessions_stays_until_empty() -> None:
    hosts = [host("a", 2), host("b", 3, draining_for=3600)]
    d = decide(spec(), hosts, NOW, Memory(), 2)
    assert "b" not in d.remove
    d = decide(spec(), [host("a", 2), host("b", 0, draining_for=3600)], NOW, Memory(), 2)
    assert d.remove == ("b",) and d.replicas == 1


def test_forced_logoff_only_after_max_wait() -> None:
    forced = spec(drain={"maxWait": "2h", "forceLogoff": True, "logoffTimeout": "5m"})
    deadline = NOW - timedelta(seconds=400)
    hosts = [host("a", 2), host("b", 3, draining_for=3600, deadline=NOW + timedelta(hours=1))]
    d = decide(forced, hosts, NOW, Memory(), 2)
    assert d.remove == () and d.logoff == ()
    # Past the deadline: asked to log off, not removed yet (it still has sessions).
    hosts = [host("a", 2), host("b", 3, draining_for=7300, deadline=deadline)]
    d = decide(forced, hosts, NOW, Memory(), 2)
    assert d.logoff == ("b",) and d.remove == ()
    # Asked, and given logoffTimeout to do it: removed even if it still reports sessions.
    asked = [host("a", 2), host("b", 3, draining_for=7300, deadline=deadline,
                                 asked_s=299)]
    assert decide(forced, asked, NOW, Memory(), 2).remove == ()
    asked = [host("a", 2), host("b", 3, draining_for=7300, deadline=deadline, asked_s=301)]
    d = decide(forced, asked, NOW, Memory(), 2)
    # ... and a host is added for its users, who will log on again: 2 + 3 + 4 > 8 slots.
    assert d.remove == ("b",) and d.replicas == 2 and "3 being logged off" in d.reason
    # Or at once if it reports empty.
    empty = [host("a", 2), host("b", 0, draining_for=7300, deadline=deadline, asked_s=20)]
    assert decide(forced, empty, NOW, Memory(), 2).remove == ("b",)


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

moments = st.one_of(st.none(), st.integers(-20000, 20000).map(
    lambda s: NOW + timedelta(seconds=s)))
hosts_strategy = st.lists(
    st.builds(
        host,
        name=st.sampled_from([f"h{i}" for i in range(12)]),
        sessions=st.one_of(st.none(), st.integers(0, 8)),
        ready=st.booleans(),
        age_s=st.sampled_from([1, 30, 119, 121, 3600]),
        draining_for=st.one_of(st.none(), st.floats(0, 20000)),
        created_h=st.floats(0, 48),
        deadline=moments,
        asked_s=st.one_of(st.none(), st.floats(0, 5000)),
    ),
    max_size=12, unique_by=lambda h: h.name)
PHASES = {"timeZone": "UTC", "phases": [
    {"name": "late", "start": "09:00", "end": "11:00", "bufferSessions": 0,
     "drain": {"forceLogoff": True, "maxWait": "20m"}, "loadBalancing": "depthFirst"}]}
spec_strategy = st.builds(
    lambda lo, hi, buf, force, wait, paused, phased, balancing: spec(
        minHosts=lo, maxHosts=max(lo, hi), bufferSessions=buf, paused=paused,
        drain={"forceLogoff": force, "maxWait": f"{wait}s", "logoffTimeout": "5m"},
        loadBalancing=balancing, **({"schedule": PHASES} if phased else {})),
    st.integers(0, 6), st.integers(1, 15), st.integers(0, 30), st.booleans(),
    st.integers(0, 20000), st.booleans(), st.booleans(),
    st.sampled_from(["breadthFirst", "depthFirst", "auto"]))
memory_strategy = st.builds(Memory, st.one_of(
    st.none(), st.sampled_from([NOW, NOW - timedelta(minutes=5), NOW - timedelta(hours=2)])))
demand_strategy = st.one_of(st.none(), st.builds(
    Demand, st.floats(0, 100), st.integers(0, 40), st.one_of(st.none(), st.floats(1, 900))))


@settings(max_examples=600, deadline=None)
@given(spec_strategy, hosts_strategy, memory_strategy, st.integers(0, 15), demand_strategy)
def test_guarantees(pool: SessionHostPoolSpec, hosts: list[Host], memory: Memory,
                    replicas: int, demand: Demand | None) -> None:
    d = decide(pool, hosts, NOW, memory, replicas, demand)
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
    by_name = {h.name: h for h in hosts}
    timeout = 300
    force_allowed = scaling.drain.force_logoff or scaling.schedule is not None
    # Never removes a host with sessions (or an unknown count) unless its users were
    # given a deadline, it has passed, they were asked to log off, and had the time to.
    for name in d.remove:
        h = by_name[name]
        # Only hosts already draining before this pass; a drained host's "empty" counts
        # only from a report made after the drain plus the grace.
        assert h.draining_since is not None
        empty = (h.fresh(NOW, 120) and h.sessions == 0 and h.reported_at is not None and
                 (h.reported_at - h.draining_since).total_seconds() >= 10)
        never_ready = not h.ready and h.reported_at is None
        if not (empty or never_ready):
            assert force_allowed and h.logoff_deadline is not None
            assert h.logoff_requested_at is not None
            assert max(h.logoff_deadline, h.logoff_requested_at) + timedelta(
                seconds=timeout) <= NOW
    # The logoff is asked for only after a deadline users were told, of a draining host.
    noticed = {n.host: n for n in d.notices}
    for name in d.logoff:
        assert force_allowed and name in noticed
        deadline = noticed[name].deadline
        assert deadline is not None and deadline <= NOW
    # Notices only on hosts that drain after this pass; an announced deadline stands.
    draining_after = ({h.name for h in hosts if h.draining_since is not None}
                      - set(d.undrain)) | set(d.drain)
    assert set(noticed) <= draining_after
    for name, n in noticed.items():
        h = by_name[name]
        if h.logoff_deadline is not None and force_allowed:
            assert n.deadline == h.logoff_deadline
    # No host logging off is put back into service.
    assert not any(by_name[n].logoff_requested_at for n in d.undrain)
    # New sessions land only on serving hosts with a free slot.
    for name in d.accepting:
        h = by_name[name]
        assert name not in draining_after and (h.sessions is None or h.sessions < 8)
    # Never scales in on missing or stale data.
    if any(h.ready and not h.fresh(NOW, 120) for h in hosts):
        assert d.drain == ()
    # Deterministic, whatever the order of the hosts.
    assert decide(pool, list(reversed(hosts)), NOW, memory, replicas, demand) == d


ready_draining_hosts = st.lists(
    st.builds(
        host,
        name=st.sampled_from([f"h{i}" for i in range(8)]),
        sessions=st.one_of(st.none(), st.integers(0, 8)),
        age_s=st.sampled_from([1, 30, 121]),
        draining_for=st.floats(0, 20000),
        deadline=moments,
        asked_s=st.one_of(st.none(), st.floats(0, 900)),
    ),
    min_size=1, max_size=8, unique_by=lambda h: h.name)


@settings(max_examples=500, deadline=None)
@given(spec_strategy, ready_draining_hosts, demand_strategy)
def test_a_host_with_sessions_goes_only_after_its_deadline_and_logoff_time(
        pool: SessionHostPoolSpec, hosts: list[Host], demand: Demand | None) -> None:
    """Every host ready and draining, no surge: the removals the rules allow happen, and
    a host with sessions is removed only after its deadline and the logoff time."""
    d = decide(pool, hosts, NOW, Memory(), len(hosts), demand)
    by_name = {h.name: h for h in hosts}
    for name in d.remove:
        h = by_name[name]
        if h.fresh(NOW, 120) and h.sessions == 0:
            continue
        assert h.logoff_deadline is not None and h.logoff_requested_at is not None
        assert NOW - max(h.logoff_deadline, h.logoff_requested_at) >= timedelta(minutes=5)
    if not pool.scaling.paused:
        # ... and nothing that may go is kept: an empty host that said so goes.
        for h in hosts:
            assert_empty_goes = (h.fresh(NOW, 120) and h.sessions == 0 and h.reported_at
                                 and h.draining_since and (h.reported_at - h.draining_since)
                                 >= timedelta(seconds=10) and h.name not in d.undrain)
            if assert_empty_goes:
                assert h.name in d.remove


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
