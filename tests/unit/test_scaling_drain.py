"""Forced logoff, finished: the notice and its deadline, the logoff after it, the pod
removed only once the host is empty or has had its logoff time; deadlines carried on
the pod, per pool and per phase; and where new sessions land (placement)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from deskfleet.scaling.decide import Memory, Notice, decide
from deskfleet.scaling.hosts import Host
from deskfleet.scaling.placement import accepting_hosts

from .test_scaling_core import NOW, host, spec

LONG_SURPLUS = Memory(surplus_since=NOW - timedelta(hours=1))
FORCED = {"maxWait": "1h", "forceLogoff": True, "message": "Bye at the deadline"}
EVENING = {"timeZone": "UTC", "phases": [
    {"name": "evening", "type": "rampDown", "start": "18:00", "end": "22:00",
     "drain": {"forceLogoff": True, "maxWait": "30m", "message": "Evening shutdown"}}]}


def test_a_drain_with_forced_logoff_gives_a_notice_with_the_deadline() -> None:
    hosts = [host("a", 3), host("b", 1), host("c", 0)]  # 4 sessions + 4 free: one host
    d = decide(spec(drain=FORCED), hosts, NOW, LONG_SURPLUS, 3)
    assert d.drain == ("c", "b")
    assert d.notices == (Notice("b", "Bye at the deadline", NOW + timedelta(hours=1)),
                         Notice("c", "Bye at the deadline", NOW + timedelta(hours=1)))
    assert d.logoff == () and d.remove == ()


def test_without_forced_logoff_the_notice_has_no_deadline_or_none_at_all() -> None:
    hosts = [host("a", 2), host("b", 1, draining_for=60)]
    told = decide(spec(), hosts, NOW, Memory(), 2)
    assert told.notices[0].deadline is None and told.logoff == ()
    quiet = decide(spec(drain={"notifyUsers": False}), hosts, NOW, Memory(), 2)
    assert quiet.notices == ()


def test_the_announced_deadline_and_message_stand() -> None:
    """Read back from the pod: a later pass, a restarted operator, a changed grace or a
    phase that ended never moves what users were told."""
    announced = NOW + timedelta(minutes=7)
    hosts = [host("a", 2), host("b", 2, draining_for=600, deadline=announced,
                                 message="Told earlier")]
    d = decide(spec(drain={**FORCED, "maxWait": "3h"}), hosts, NOW, Memory(), 2)
    assert d.notices == (Notice("b", "Told earlier", announced),)


def test_a_phase_that_forces_logoff_gives_hosts_already_draining_a_deadline() -> None:
    evening = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    hosts = [Host("a", evening - timedelta(hours=5), True, 2, evening - timedelta(seconds=5)),
             Host("b", evening - timedelta(hours=5), True, 2,
                                evening - timedelta(seconds=5), evening - timedelta(hours=3))]
    d = decide(spec(schedule=EVENING), hosts, evening, Memory(), 2)
    assert d.notices == (Notice("b", "Evening shutdown", evening + timedelta(minutes=30)),)
    # Before the phase, the same host had no deadline.
    morning = decide(spec(schedule=EVENING), hosts, evening - timedelta(hours=2), Memory(), 2)
    assert morning.notices[0].deadline is None


def test_a_pool_that_no_longer_allows_forced_logoff_withdraws_deadlines() -> None:
    hosts = [host("a", 2), host("b", 2, draining_for=7200, deadline=NOW - timedelta(hours=1),
                                 asked_s=3000)]
    forced = decide(spec(drain=FORCED), hosts, NOW, Memory(), 2)
    assert forced.logoff == ("b",) and forced.remove == ("b",)
    stopped = decide(spec(), hosts, NOW, Memory(), 2)
    assert stopped.logoff == () and stopped.remove == ()
    assert stopped.notices[0].deadline is None


def test_hosts_logging_off_are_never_put_back_into_service() -> None:
    full = [host("a", 8), host("b", 8)]
    leaving = host("c", 3, draining_for=7200, deadline=NOW - timedelta(minutes=1))
    told = host("d", 6, draining_for=600, deadline=NOW + timedelta(minutes=50))
    quiet = host("e", 1, draining_for=600)
    d = decide(spec(drain=FORCED, maxHosts=10, bufferSessions=20),
               [*full, leaving, told, quiet], NOW, Memory(), 5)
    # The host without a deadline first, then the one told least urgently; never c.
    assert d.undrain == ("e", "d") and "c" in d.logoff
    assert {n.host for n in d.notices} == {"c"}  # the undrained hosts' notices withdrawn


def test_sessions_about_to_be_logged_off_call_for_capacity_before_the_deadline() -> None:
    """Those users will log on again: room is made for them within a start-up."""
    def pool_with(b: Host) -> Any:
        return decide(spec(drain=FORCED), [host("a", 2), b], NOW, Memory(), 2)

    far = pool_with(host("b", 8, draining_for=600, deadline=NOW + timedelta(hours=1)))
    assert (far.replicas, far.undrain) == (2, ())  # 2 + 4 free: one serving host is enough
    soon = pool_with(host("b", 8, draining_for=3400, deadline=NOW + timedelta(minutes=3)))
    assert (soon.replicas, soon.undrain) == (2, ("b",))  # the cheapest room: keep them
    gone = pool_with(host("b", 8, draining_for=3700, deadline=NOW - timedelta(minutes=1),
                          asked_s=50))
    assert (gone.replicas, gone.undrain) == (3, ())  # 2 + 8 + 4 free: a host for them
    assert "8 being logged off" in gone.reason


# --- placement ---------------------------------------------------------------------------

def hosts_with(*sessions: int | None, ready: bool = True) -> list[Host]:
    return [host(f"h{i}", n, ready=ready, created_h=10 - i) for i, n in enumerate(sessions)]


def test_breadth_first_every_host_with_a_free_slot_accepts() -> None:
    assert accepting_hosts(hosts_with(3, 8, 0, None), 8, "breadthFirst", True, 4) == (
        "h0", "h2", "h3")


def test_depth_first_the_fewest_fullest_hosts_that_hold_the_free_slots() -> None:
    pool = hosts_with(3, 7, 6, 0, 1)
    assert accepting_hosts(pool, 8, "depthFirst", False, 3) == ("h1", "h2")  # 1 + 2 free
    assert accepting_hosts(pool, 8, "depthFirst", False, 0) == ("h1",)  # never none
    assert accepting_hosts(pool, 8, "depthFirst", False, 100) == ("h0", "h1", "h2", "h3",
                                                                    "h4")


def test_auto_packs_only_while_the_pool_shrinks() -> None:
    pool = hosts_with(3, 7, 6, 0)
    assert accepting_hosts(pool, 8, "auto", False, 3) == ("h0", "h1", "h2", "h3")
    assert accepting_hosts(pool, 8, "auto", True, 3) == ("h1", "h2")


def test_decide_labels_by_the_phase_or_the_pools_load_balancing() -> None:
    pool: dict[str, Any] = {"loadBalancing": "auto"}
    hosts = [host("a", 7), host("b", 2), host("c", 1), host("d", 0)]
    shrinking = decide(spec(**pool), hosts, NOW, Memory(), 4)
    assert shrinking.accepting == ("a", "b")  # 10 sessions + 4 need 2 of 4 hosts
    growing = decide(spec(**pool), [host("a", 8), host("b", 7)], NOW, Memory(), 2)
    assert growing.accepting == ("b",)  # all with a free slot
    phased = spec(schedule={"timeZone": "UTC", "phases": [
        {"name": "day", "start": "08:00", "end": "18:00", "loadBalancing": "breadthFirst"}]},
        **pool)
    assert decide(phased, hosts, NOW, Memory(), 4).accepting == ("a", "b", "c", "d")
