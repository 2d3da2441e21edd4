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
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)

HIGH, LOW = 0, 1


class WorkQueue(Generic[Key]):
    def __init__(self, base_delay: float = 0.5, max_delay: float = 300.0) -> None:
        # Entries (priority, sequence, key); an entry whose priority no longer matches
        # `_queued` was superseded by a promotion and is skipped.
        self._queue: asyncio.PriorityQueue[tuple[int, int, Key]] = asyncio.PriorityQueue()
        self._sequence = itertools.count()
        self._queued: dict[Key, int] = {}
        self._processing: set[Key] = set()
        self._dirty: dict[Key, int] = {}  # added while processing: again, at this priority
        self._failures: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self.base_delay = base_delay
        self.max_delay = max_delay

    def add(self, key: Key, *, low: bool = False) -> None:
        priority = LOW if low else HIGH
        if key in self._processing:
            self._dirty[key] = min(priority, self._dirty.get(key, LOW))
        elif self._queued.get(key, LOW + 1) > priority:
            self._queued[key] = priority
            self._queue.put_nowait((priority, next(self._sequence), key))

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

    def _fire(self, key: Key, low: bool) -> None:
        self._timers.pop(key, None)
        self.add(key, low=low)

    async def get(self) -> Key:
        while True:
            priority, _, key = await self._queue.get()
            if self._queued.get(key) == priority:
                break
        del self._queued[key]
        self._processing.add(key)
        return key

    def done(self, key: Key, *, failed: bool = False) -> float | None:
        """Finish a key; returns the retry delay when it failed."""
        self._processing.discard(key)
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

    def __len__(self) -> int:
        return len(self._queued) + len(self._processing)

    def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
