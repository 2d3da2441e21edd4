"""A deduplicating work queue, as client-go's workqueue: a key is never processed by two
workers at once; a key added while it is processed is processed once more afterwards;
failures retry with exponential backoff per key, so a broken object never becomes a
tight retry loop.

Two priorities, as controller-runtime's priority queue: what a watch event says changed
goes first; re-checks (fan-outs, resyncs, summaries) wait behind it. Under a burst, a
new app's first pass is not stuck behind a thousand no-op re-checks. A key queued low
and then added high is promoted."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)

HIGH, LOW = 0, 1


class WorkQueue(Generic[Key]):
    def __init__(self, base_delay: float = 0.5, max_delay: float = 300.0,
                 low_slots: int | None = None) -> None:
        # A heap of entries (priority, sequence, key); an entry whose priority no longer
        # matches `_queued` was superseded by a promotion and is skipped.
        self._heap: list[tuple[int, int, Key]] = []
        self._sequence = itertools.count()
        self._queued: dict[Key, int] = {}
        self._processing: set[Key] = set()
        self._low_processing: set[Key] = set()
        self._dirty: dict[Key, int] = {}  # added while processing: again, at this priority
        self._failures: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._waiting_rechecks: set[Key] = set()  # of those, the re-checks (low)
        self._wakeup = asyncio.Event()
        self.base_delay = base_delay
        self.max_delay = max_delay
        # At most this many re-checks run at once (None: no limit). The passes share one
        # interpreter: were every worker busy with re-checks during a burst, each change's
        # own pass would get a share of the CPU, not the CPU; the re-checks that wait
        # meanwhile coalesce (a queued key is queued once), so fewer of them run.
        self.low_slots = low_slots

    def add(self, key: Key, *, low: bool = False) -> None:
        priority = LOW if low else HIGH
        if key in self._processing:
            self._dirty[key] = min(priority, self._dirty.get(key, LOW))
        elif self._queued.get(key, LOW + 1) > priority:
            self._queued[key] = priority
            heapq.heappush(self._heap, (priority, next(self._sequence), key))
            self._wakeup.set()

    def add_after(self, key: Key, delay: float, *, low: bool = False) -> None:
        """Add later; an earlier pending timer for the key wins."""
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + delay
        if existing and existing.when() <= when:
            return
        if existing:
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key, low)
        if low:
            self._waiting_rechecks.add(key)
        else:
            self._waiting_rechecks.discard(key)

    def _fire(self, key: Key, low: bool) -> None:
        self._timers.pop(key, None)
        self._waiting_rechecks.discard(key)
        self.add(key, low=low)

    def _next(self) -> tuple[int, int, Key] | None:
        """The entry a worker may take now, if any."""
        while self._heap:
            priority, _, key = self._heap[0]
            if self._queued.get(key) != priority:
                heapq.heappop(self._heap)  # superseded by a promotion
                continue
            if priority == LOW and self.low_slots is not None \
                    and len(self._low_processing) >= self.low_slots:
                return None  # only changes may start now
            return self._heap[0]
        return None

    async def get(self) -> Key:
        while self._next() is None:
            self._wakeup.clear()
            await self._wakeup.wait()
        priority, _, key = heapq.heappop(self._heap)
        del self._queued[key]
        self._processing.add(key)
        if priority == LOW:
            self._low_processing.add(key)
        return key

    def done(self, key: Key, *, failed: bool = False) -> float | None:
        """Finish a key; returns the retry delay when it failed."""
        self._processing.discard(key)
        if key in self._low_processing:
            self._low_processing.discard(key)
            self._wakeup.set()  # a re-check may start
        delay = None
        if failed:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
            delay = min(self.base_delay * 2**n, self.max_delay)
            self.add_after(key, delay)
        else:
            self._failures.pop(key, None)
        if key in self._dirty:
            self.add(key, low=self._dirty.pop(key) == LOW)
        return delay

    def rechecks_waiting(self) -> int:
        """Re-checks waiting on their debounce (a fan-out not run yet): while there are
        any, what they will look at has not converged. Periodic passes and retries,
        also on timers, are not counted: they always wait."""
        return len(self._waiting_rechecks)

    def __len__(self) -> int:
        return len(self._queued) + len(self._processing)

    def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._waiting_rechecks.clear()
