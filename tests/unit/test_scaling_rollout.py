"""Rollouts in the scaling core: which revision is current, how many hosts each revision
keeps, when outdated hosts stop taking logons and drain, their notice and deadline
(urgent too), when they go, rollback, and the revisions whose Deployment may go — table
tests, then hypothesis properties of the guarantees."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deskfleet.api.sessionhostpool import SessionHostPoolSpec
from deskfleet.scaling.decide import Decision, Host, Memory, decide
from deskfleet.scaling.rollout import Revisions, current_revision, surge_hosts

from .test_scaling_core import NOW, host

OLD, NEW = "old", "new"
MESSAGE = "This desktop is being updated."


def spec(update: dict[str, Any] | None = None, **scaling: Any) -> SessionHostPoolSpec:
    base: dict[str, Any] = {"minHosts": 1, "maxHosts": 20, "bufferSessions": 4,
                            "scaleInDelay": "10m"}
    return SessionHostPoolSpec.model_validate(
        {"image": "x", "sessionsPerHost": 8, "scaling": {**base, **scaling},
         "update": {"message": MESSAGE, **(update or {})}}, by_alias=True)


def at(revision: str, h: Host) -> Host:
    return replace(h, revision=revision)


def old(name: str, sessions: int | None, **kw: Any) -> Host:
    return at(OLD, host(name, sessions, **kw))


def new(name: str, sessions: int | None, **kw: Any) -> Host:
    return at(NEW, host(name, sessions, **kw))


def roll(pool: SessionHostPoolSpec, hosts: list[Host], replicas: int,
         outdated: dict[str, int], current: str = NEW, memory: Memory | None = None
         ) -> Decision:
    return decide(pool, hosts, NOW, memory or Memory(), replicas,
                  revisions=Revisions(current, outdated))


# --- the start: new hosts ahead of demand, old ones keep serving until then ---------------

def test_a_rollout_starts_new_hosts_for_the_free_slots_and_the_surge() -> None:
    full = [old(f"o{i}", 8) for i in range(3)]
    d = roll(spec(), full, 0, {OLD: 3})
    # The pool needs ceil((24 + 4) / 8) = 4 hosts; 3 hosts' worth of sessions stay on
    # the old ones: 1 new host, plus a surge of 25% of 3 outdated hosts = 1.
    assert d.replicas == 2 and d.direction == "up"
    assert d.outdated_replicas == ((OLD, 3),) and d.drain == () and d.notices == ()
    assert d.outdated == ("o0", "o1", "o2")


def test_old_hosts_with_room_take_logons_until_new_ones_hold_the_free_slots() -> None:
    hosts = [old("o0", 3), old("o1", 8), new("n0", None, ready=False, age_s=1)]
    d = roll(spec(), hosts, 1, {OLD: 2})
    assert d.accepting == ("n0", "o0") and d.drain == ()  # n0 is still starting
    ready = [old("o0", 3), old("o1", 8), new("n0", 0), new("n1", None, ready=False)]
    d = roll(spec(), ready, 2, {OLD: 2})
    # n0 holds the 4 free slots the pool keeps (it has 8): old hosts take no logon, and
    # drain.
    assert d.current_takes_logons and d.accepting == ("n0", "n1")
    assert d.drain == ("o0", "o1")
    assert {n.host: (n.message, n.deadline) for n in d.notices} == {
        "o0": (MESSAGE, None), "o1": (MESSAGE, None)}  # no deadline set: no forced logoff


def test_old_hosts_wait_to_drain_while_new_ones_hold_fewer_free_slots_than_kept() -> None:
    hosts = [old("o0", 7), old("o1", 8), new("n0", 6), new("n1", None, ready=False)]
    d = roll(spec(), hosts, 2, {OLD: 2})
    # 2 free slots on n0, 4 kept, n1 on its way: o0 still takes logons too.
    assert d.drain == () and d.accepting == ("n0", "n1", "o0")
    # ... or once none is still starting.
    up = [old("o0", 8), old("o1", 8), new("n0", 6), new("n1", 7)]
    d = roll(spec(bufferSessions=1), up, 2, {OLD: 2})
    assert set(d.drain) == {"o0", "o1"}


def test_in_a_storm_warm_old_hosts_serve_again_unless_the_rollout_has_a_deadline() -> None:
    # The new hosts are full and one more is starting; old ones drain with room.
    storm = [old("o0", 3, draining_for=600), old("o1", 6, draining_for=600),
             new("n0", 8), new("n1", 8), new("n2", None, ready=False, age_s=1)]
    d = roll(spec(), storm, 3, {OLD: 2})
    assert not d.current_takes_logons
    # The fullest first (o1: 2 free slots) until they hold the 4 the pool keeps.
    assert d.undrain == ("o1", "o0") and {"o0", "o1"} <= set(d.accepting)
    timed = roll(spec({"drainDeadline": "8h"}), storm, 3, {OLD: 2})
    assert timed.undrain == () and not {"o0", "o1"} & set(timed.accepting)
    # Serving again, o1 drains again only once no new host is on its way (not at the
    # first free slot, which would make its users' notice flap).
    back = [old("o0", 3, draining_for=600), old("o1", 6), new("n0", 2), new("n1", 8),
            new("n2", None, ready=False, age_s=1)]
    d = roll(spec(bufferSessions=1), back, 3, {OLD: 2})
    assert d.current_takes_logons and "o1" not in d.drain and "o1" not in d.accepting
    up = [*back[:4], new("n2", 0)]
    assert "o1" in roll(spec(bufferSessions=1), up, 3, {OLD: 2}).drain


def test_the_deadline_and_urgent_mode() -> None:
    hosts = [old("o0", 5), new("n0", 0)]
    d = roll(spec({"drainDeadline": "8h"}), hosts, 1, {OLD: 1})
    assert d.notices[0].deadline == NOW + timedelta(hours=8)
    d = roll(spec({"drainDeadline": "8h", "urgent": True}), hosts, 1, {OLD: 1})
    assert d.notices[0].deadline == NOW + timedelta(minutes=15)
    # Urgent later: an announced deadline is brought forward, an earlier one stands.
    told = [old("o0", 5, draining_for=600, deadline=NOW + timedelta(hours=7)),
            old("o1", 5, draining_for=600, deadline=NOW + timedelta(minutes=5)),
            new("n0", 0), new("n1", 0)]
    d = roll(spec({"drainDeadline": "8h", "urgent": True}), told, 2, {OLD: 2})
    assert {n.host: n.deadline for n in d.notices} == {
        "o0": NOW + timedelta(minutes=15), "o1": NOW + timedelta(minutes=5)}


def test_past_the_deadline_old_hosts_are_logged_off_then_removed() -> None:
    pool = spec({"drainDeadline": "1h"}, drain={"logoffTimeout": "5m"})
    due = NOW - timedelta(seconds=10)
    hosts = [old("o0", 4, draining_for=3700, deadline=due), new("n0", 2), new("n1", 0)]
    d = roll(pool, hosts, 2, {OLD: 1})
    assert d.logoff == ("o0",) and d.remove == () and d.past_deadline == ("o0",)
    asked = [old("o0", 4, draining_for=4000, deadline=due - timedelta(seconds=400),
                 asked_s=301), new("n0", 2),
             new("n1", 0)]
    d = roll(pool, asked, 2, {OLD: 1})
    assert d.remove == ("o0",) and d.outdated_replicas == ((OLD, 0),)
    # 2 sessions + 4 being logged off (their users will be back) + 4 free slots: 2 hosts
    # (the surge is over once the outdated hosts drain).
    assert d.replicas == 2


def test_an_old_host_goes_when_it_reports_empty_and_its_revision_then_goes() -> None:
    hosts = [old("o0", 0, draining_for=60), old("o1", 2, draining_for=60),
             new("n0", 3), new("n1", 0)]
    d = roll(spec(), hosts, 2, {OLD: 2})
    assert d.remove == ("o0",) and d.outdated_replicas == ((OLD, 1),)
    assert d.retired == ()
    # The last one leaves; then the revision has no host and no replica.
    last = [old("o1", 0, draining_for=900), new("n0", 3), new("n1", 2)]
    assert roll(spec(), last, 2, {OLD: 1}).outdated_replicas == ((OLD, 0),)
    done = roll(spec(), [new("n0", 3), new("n1", 2)], 2, {OLD: 0})
    assert done.retired == (OLD,) and done.outdated == ()


def test_an_old_revision_never_gets_hosts_back() -> None:
    # 3 replicas, 1 pod left (one lost, one never created): the revision keeps 1.
    hosts = [old("o0", 2, draining_for=60), new("n0", 1)]
    assert roll(spec(), hosts, 1, {OLD: 3}).outdated_replicas == ((OLD, 1),)
    # A revision with pods still being deleted removes nothing more meanwhile.
    deleting = [old("o0", 0, draining_for=60), old("o1", 3, draining_for=60), new("n0", 1)]
    assert roll(spec(), deleting, 1, {OLD: 1}).remove == ()


def test_old_hosts_that_never_started_go_at_once() -> None:
    hosts = [old("o0", None, ready=False, age_s=1), new("n0", None, ready=False)]
    d = roll(spec(), hosts, 1, {OLD: 1})
    assert d.drain == ("o0",)
    gone = [old("o0", None, ready=False, draining_for=1), new("n0", None, ready=False)]
    assert roll(spec(), gone, 1, {OLD: 1}).remove == ("o0",)


def test_sessions_on_old_hosts_count_when_sizing_the_new_revision() -> None:
    # minHosts 10 over 40 sessions on 10 old hosts: without a rollout 10 hosts, 40 free.
    # The new revision gets 10 - 40 // 8 = 5 hosts (40 free slots) plus the surge (3).
    hosts = [old(f"o{i}", 4) for i in range(10)]
    d = roll(spec(minHosts=10), hosts, 0, {OLD: 10})
    assert d.replicas == 5 + 3
    # Once the old hosts drain, the surge is over: demand decides.
    draining = [replace(h, draining_since=NOW) for h in hosts]
    assert roll(spec(minHosts=10), draining, 8, {OLD: 10}).replicas == 8  # not grown
    # The pool may go above maxHosts by the surge during a rollout, no further.
    d = roll(spec(minHosts=10, maxHosts=10), hosts, 0, {OLD: 10})
    assert d.replicas == 3


def test_surge_hosts() -> None:
    assert surge_hosts(spec(), 0) == 0
    assert surge_hosts(spec(), 3) == 1 and surge_hosts(spec(), 9) == 3
    assert surge_hosts(spec({"maxSurge": 5}), 2) == 2
    assert surge_hosts(spec({"maxSurge": "100%"}), 7) == 7


def test_rollback_puts_the_old_hosts_back_into_service_before_starting_any() -> None:
    # The spec went back to OLD: its draining hosts are current again; NEW is outdated.
    hosts = [old("o0", 6, draining_for=600, message=MESSAGE),
             old("o1", 5, draining_for=600, message=MESSAGE),
             new("n0", 0), new("n1", 0)]
    d = roll(spec(), hosts, 2, {NEW: 2}, current=OLD)
    # 11 sessions + 4 free slots need 2 hosts: both old hosts serve again (their notice
    # withdrawn), and only the surge is added while the new revision's hosts remain.
    assert set(d.undrain) == {"o0", "o1"} and d.replicas == 2 + 1
    assert set(d.drain) == {"n0", "n1"} and {n.host for n in d.notices} == {"n0", "n1"}


def test_which_revision_is_current() -> None:
    live = {"a": NOW - timedelta(days=30), "b": NOW - timedelta(days=1)}
    assert current_revision("c", live, held=False, recorded="b") == "c"
    assert current_revision("c", live, held=True, recorded="a") == "a"
    assert current_revision("c", live, held=True, recorded="gone") == "b"  # the newest
    assert current_revision("c", {}, held=True, recorded=None) == "c"  # a new pool


def test_a_pool_without_agents_rolls_at_the_deadline() -> None:
    pool = SessionHostPoolSpec.model_validate(
        {"image": "x", "sessionsPerHost": 8, "agent": {"enabled": False},
         "update": {"drainDeadline": "1h"}, "scaling": {"minHosts": 1, "maxHosts": 20}},
        by_alias=True)
    hosts = [old("o0", None, created_h=5), old("o1", None, created_h=5)]
    d = roll(pool, hosts, 0, {OLD: 2})
    assert d.replicas == 2 and d.drain == ()
    up = [*hosts, new("n0", None), new("n1", None)]
    d = roll(pool, up, 2, {OLD: 2})
    assert set(d.drain) == {"o0", "o1"} and d.notices[0].deadline == NOW + timedelta(hours=1)
    assert set(d.accepting) == {"n0", "n1"}


# --- properties ---------------------------------------------------------------------------

REVISIONS = ("r0", "r1", "r2")
moments = st.one_of(st.none(), st.integers(-20000, 20000).map(
    lambda s: NOW + timedelta(seconds=s)))
rollout_hosts = st.lists(
    st.builds(
        lambda rev, **kw: at(rev, host(**kw)),
        st.sampled_from(REVISIONS),
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
update_strategy = st.fixed_dictionaries({}, optional={
    "drainDeadline": st.sampled_from(["0s", "20m", "8h"]),
    "urgent": st.booleans(),
    "maxSurge": st.sampled_from([1, 3, "25%", "100%"])})
pool_strategy = st.builds(
    lambda lo, hi, buf, force, update: spec(
        update, minHosts=lo, maxHosts=max(lo, hi), bufferSessions=buf,
        drain={"forceLogoff": force, "maxWait": "1h", "logoffTimeout": "5m"}),
    st.integers(0, 6), st.integers(1, 15), st.integers(0, 30), st.booleans(),
    update_strategy)
replicas_strategy = st.fixed_dictionaries({r: st.integers(0, 6) for r in REVISIONS})


@settings(max_examples=800, deadline=None)
@given(pool_strategy, rollout_hosts, st.sampled_from(REVISIONS), replicas_strategy)
def test_rollout_guarantees(pool: SessionHostPoolSpec, hosts: list[Host], current: str,
                            replicas: dict[str, int]) -> None:
    outdated_replicas = {r: n for r, n in replicas.items() if r != current}
    d = decide(pool, hosts, NOW, Memory(), replicas[current],
               revisions=Revisions(current, outdated_replicas))
    by_name = {h.name: h for h in hosts}
    old_hosts = [h for h in hosts if h.revision != current]
    force = (pool.scaling.drain.force_logoff or pool.update.drain_deadline is not None
             or pool.update.urgent)

    # Never removes a host with sessions (or an unknown count) before its deadline, its
    # logoff request and logoffTimeout; only hosts already draining.
    for name in d.remove:
        h = by_name[name]
        assert h.draining_since is not None
        empty = (h.fresh(NOW, 120) and h.sessions == 0 and h.reported_at is not None
                 and (h.reported_at - h.draining_since).total_seconds() >= 10)
        if not (empty or (not h.ready and h.reported_at is None)):
            assert force and h.logoff_deadline is not None
            assert h.logoff_requested_at is not None
            assert max(h.logoff_deadline, h.logoff_requested_at) + timedelta(
                minutes=5) <= NOW
    # A logoff only after a deadline its users were told.
    noticed = {n.host: n for n in d.notices}
    for name in d.logoff:
        told = noticed[name].deadline
        assert told is not None and told <= NOW
    # Deadlines never move later; an urgent rollout brings an outdated host's forward,
    # leaving its users the urgent notice.
    for name, n in noticed.items():
        h = by_name[name]
        if h.logoff_deadline is not None and n.deadline is not None:
            assert n.deadline <= h.logoff_deadline
            if n.deadline != h.logoff_deadline:
                assert pool.update.urgent and h.revision != current
                assert n.deadline == NOW + timedelta(minutes=15)

    # Every new logon lands on current-revision hosts once their ready hosts hold the
    # free slots the pool keeps (or some, with none on its way); a draining host takes
    # none.
    draining_after = ({h.name for h in hosts if h.draining} - set(d.undrain)) | set(d.drain)
    accepting = {by_name[n] for n in d.accepting}
    assert not any(h.name in draining_after for h in accepting)
    ready_free = sum(8 - (h.sessions or 0) for h in hosts if h.revision == current
                     and h.ready and h.name not in draining_after and h.fresh(NOW, 120))
    if ready_free >= max(1, d.keep_free):
        assert d.current_takes_logons
    if d.current_takes_logons:
        assert all(h.revision == current for h in accepting)
    # An outdated host serves again only in a rollout without a deadline, never one
    # asked to log off, and only when no current host can take a logon.
    back = [by_name[n] for n in d.undrain if by_name[n].revision != current]
    if back:
        assert pool.update.drain_deadline is None and not pool.update.urgent
        assert not any(h.logoff_requested_at or h.logoff_deadline for h in back)
        assert not d.current_takes_logons
    assert set(d.outdated) == {h.name for h in old_hosts}

    # An outdated revision keeps only hosts it has, loses the ones removed, and goes
    # once it has none: no orphaned revision, never a replacement.
    new_replicas = dict(d.outdated_replicas)
    assert set(new_replicas) == set(outdated_replicas)
    for revision, count in new_replicas.items():
        pods = [h for h in old_hosts if h.revision == revision]
        removed = [h for h in pods if h.name in d.remove]
        assert 0 <= count <= min(outdated_replicas[revision], len(pods))
        assert count == min(outdated_replicas[revision], len(pods)) - len(removed)
        if not pods:
            assert count == 0
    assert set(d.retired) == {r for r, n in outdated_replicas.items()
                              if n == 0 and not any(h.revision == r for h in old_hosts)}
    assert current not in d.retired

    # The current revision never shrinks because of outdated hosts: it loses only the
    # hosts it removes. The whole pool stays within maxHosts plus the surge.
    mine = [h for h in hosts if h.revision == current]
    lost = sum(1 for h in mine if h.name in d.remove)
    assert d.replicas >= replicas[current] - lost
    if d.replicas > replicas[current]:
        total = d.replicas + sum(min(n, sum(1 for h in old_hosts if h.revision == r))
                                 for r, n in outdated_replicas.items())
        assert total <= pool.scaling.max_hosts + surge_hosts(pool, len(old_hosts))

    # Deterministic whatever the order of the hosts.
    assert decide(pool, list(reversed(hosts)), NOW, Memory(), replicas[current],
                  revisions=Revisions(current, outdated_replicas)) == d


draining_current = st.lists(
    st.builds(lambda **kw: at("r0", host(**kw)),
              name=st.sampled_from([f"c{i}" for i in range(6)]),
              sessions=st.integers(0, 8), draining_for=st.floats(60, 3000)),
    min_size=1, max_size=6, unique_by=lambda h: h.name)
outdated_full = st.lists(
    st.builds(lambda **kw: at("r1", host(**kw)),
              name=st.sampled_from([f"o{i}" for i in range(6)]),
              sessions=st.integers(0, 8), draining_for=st.floats(0, 3000)),
    max_size=6, unique_by=lambda h: h.name)


@settings(max_examples=400, deadline=None)
@given(pool_strategy, draining_current, outdated_full)
def test_a_rollback_serves_from_the_old_hosts_before_starting_new_ones(
        pool: SessionHostPoolSpec, back: list[Host], left: list[Host]) -> None:
    """After a rollback, hosts of the revision current again that are still draining
    (and not being logged off) are put back into service before any host is added."""
    d = decide(pool, [*back, *left], NOW, Memory(), len(back),
               revisions=Revisions("r0", {"r1": len(left)}))
    if pool.scaling.paused:
        return
    if d.replicas > len(back):
        assert {n for n in d.undrain if n.startswith("c")} == {h.name for h in back}
