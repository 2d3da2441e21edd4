"""Conditions and the work queue."""

from __future__ import annotations

import asyncio

from deskfleet.conditions import Cond, merge_conditions, status_differs
from deskfleet.controllers.queue import WorkQueue


def test_transition_time_moves_only_when_status_changes() -> None:
    first = merge_conditions(None, [Cond("Ready", True, "HostsReady")], 1, "t1")
    same = merge_conditions(first, [Cond("Ready", True, "HostsReady", "other msg")], 2, "t2")
    flipped = merge_conditions(same, [Cond("Ready", False, "NoHostsReady")], 2, "t3")
    assert first[0]["lastTransitionTime"] == "t1"
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "t3" and flipped[0]["status"] == "False"


def test_recomputing_the_same_status_is_not_a_change() -> None:
    conds = merge_conditions(None, [Cond("Ready", True, "X")], 1, "t1")
    current = {"hosts": "1/1", "conditions": conds, "observedGeneration": 1}
    again = merge_conditions(conds, [Cond("Ready", True, "X")], 1, "t9")
    assert not status_differs(current, {"hosts": "1/1", "conditions": again,
                                        "observedGeneration": 1})
    assert status_differs(current, {"hosts": "2/2"})


def test_queue_dedups_and_reprocesses_keys_added_while_processing() -> None:
    async def scenario() -> list[str]:
        q = WorkQueue()
        q.add("a")
        q.add("a")
        q.add("b")
        seen = [await q.get()]
        q.add("a")  # while "a" is processing: remembered, not run concurrently
        seen.append(await q.get())
        q.done("a")
        q.done("b")
        seen.append(await q.get())
        q.done("a")
        assert len(q) == 0
        return seen

    assert asyncio.run(scenario()) == ["a", "b", "a"]


def test_queue_backs_off_exponentially_on_failure() -> None:
    async def scenario() -> list[float]:
        q = WorkQueue(base_delay=0.01, max_delay=0.04)
        delays = []
        for _ in range(4):
            q.add("k") if not delays else None
            key = await asyncio.wait_for(q.get(), 1)
            delays.append(q.done(key, failed=True) or 0.0)
        q.shutdown()
        return delays

    assert asyncio.run(scenario()) == [0.01, 0.02, 0.04, 0.04]


def test_queue_serves_changes_before_re_checks_and_promotes() -> None:
    async def scenario() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        q.add("recheck-1", low=True)
        q.add("recheck-2", low=True)
        q.add("new-app")
        q.add("recheck-2")  # a real change to a key already queued low: promoted
        q.add("new-app", low=True)  # never demoted
        seen = []
        while len(q):
            key = await asyncio.wait_for(q.get(), 1)
            seen.append(key)
            q.done(key)
        return seen

    assert asyncio.run(scenario()) == ["new-app", "recheck-2", "recheck-1"]


def test_re_checks_take_at_most_their_slots_and_changes_never_wait_for_them() -> None:
    async def scenario() -> list[str]:
        q: WorkQueue[str] = WorkQueue(low_slots=1)
        for name in ("recheck-1", "recheck-2", "recheck-3"):
            q.add(name, low=True)
        first = await asyncio.wait_for(q.get(), 1)
        assert first == "recheck-1"
        # The re-check slot is taken: a second worker waits...
        waiting = asyncio.ensure_future(q.get())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        q.add("new-app")  # ...until a change arrives, which it takes at once
        assert await asyncio.wait_for(waiting, 1) == "new-app"
        q.done("new-app")
        blocked = asyncio.ensure_future(q.get())
        await asyncio.sleep(0.01)
        assert not blocked.done()
        q.done(first)  # the slot is free: the next re-check starts
        second = await asyncio.wait_for(blocked, 1)
        q.done(second)
        third = await asyncio.wait_for(q.get(), 1)
        q.done(third)
        return [first, "new-app", second, third]

    assert asyncio.run(scenario()) == ["recheck-1", "new-app", "recheck-2", "recheck-3"]


def test_summaries_over_a_namespace_wait_ten_times_what_the_last_one_cost() -> None:
    from deskfleet.controllers.pacing import DUTY, MAX_WAIT, Pacing

    pacing = Pacing()
    catalog, policies = ("catalog", "ward", ""), ("policies", "ward", "")
    assert pacing.delay(catalog, 0.5) == 0.5  # nothing known: the debounce
    pacing.record(catalog, 0.01)
    assert pacing.delay(catalog, 0.5) == 0.5  # cheap: the debounce still
    pacing.record(catalog, 0.8)  # ten thousand apps
    assert pacing.delay(catalog, 0.5) == DUTY * 0.8
    assert pacing.delay(("catalog", "other", ""), 0.5) == 0.5  # per namespace
    # A round of recounts: its policies' passes add up, known when the next round starts.
    for _ in range(2000):
        pacing.record(("AccessPolicy", "ward", "p"), 0.002)
    assert pacing.delay(policies, 5.0) == 5.0
    pacing.record(policies, 0.0)
    assert abs(pacing.delay(policies, 5.0) - DUTY * 4.0) < 1e-6
    pacing.record(policies, 0.0)  # a round with no pass: back to the debounce
    assert pacing.delay(policies, 5.0) == 5.0
    pacing.record(catalog, 30.0)  # however dear, a summary waits at most MAX_WAIT
    assert pacing.delay(catalog, 0.5) == MAX_WAIT
    assert pacing.delay(catalog, 2 * MAX_WAIT) == 2 * MAX_WAIT  # a debounce still holds


def test_debounced_re_checks_are_counted_until_they_run_and_periodic_passes_never() -> None:
    async def scenario() -> list[int]:
        q: WorkQueue[str] = WorkQueue()
        q.add_after("catalog", 0.02, low=True)
        q.add_after("pool", 0.02)  # a periodic pass: always waiting, never counted
        seen = [q.rechecks_waiting(), len(q)]
        await asyncio.sleep(0.05)
        seen += [q.rechecks_waiting(), len(q)]
        q.shutdown()
        return seen

    assert asyncio.run(scenario()) == [1, 0, 0, 2]
