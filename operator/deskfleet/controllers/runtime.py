"""What the operator process shares between its Kopf handlers and its workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from ..kube.client import Kube
from ..metrics import EVENT_QUEUE_DEPTH, RECHECKS_WAITING, WORKQUEUE_DEPTH, observe_reconcile
from ..portal_stats import PortalStats
from ..settings import Settings
from .cache import Cache
from .fanout import Delayed, FactsMemory, Key
from .leader import LeaderElector
from .process import ProcessState
from .queue import WorkQueue


class Runtime:
    """Everything the workers share; one per operator process."""

    def __init__(self) -> None:
        self.cache = Cache()
        self.facts = FactsMemory()  # what other objects read of each, as of its last event
        self.settings = Settings()
        self.queue: WorkQueue[tuple[str, str, str]] = WorkQueue(
            low_slots=max(1, min(self.settings.recheck_workers, self.settings.workers - 1)))
        # What passes remember between each other (gone objects, replicas written,
        # rendered children, start-up and session-end figures, the Event recorder...).
        self.process = ProcessState()
        self.kube: Kube | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.on_reconciled: Callable[[str, float, bool], None] = observe_reconcile
        # Set by `deskfleet run --leader-election` before Kopf starts.
        self.election: dict[str, Any] | None = None
        self.leader: LeaderElector | None = None
        # What the portal replicas count (controllers/portal_stats.py): logon demand per
        # pool, dry-run figures per policy; and when they last answered, and how many.
        self.portal_stats = PortalStats(datetime.now(UTC))
        self.portal_stats_seen: tuple[float, int] = (0.0, 0)


RUNTIME = Runtime()
WORKQUEUE_DEPTH.set_function(lambda: len(RUNTIME.queue))
EVENT_QUEUE_DEPTH.set_function(lambda: len(RUNTIME.process.events))
RECHECKS_WAITING.set_function(RUNTIME.queue.rechecks_waiting)


def enqueue(kwargs: dict[str, Any], *keys: Key | Delayed) -> None:
    RUNTIME.cache.bind(kwargs)
    for key in keys:
        if isinstance(key, Delayed):
            # A re-check, paced by what the last one cost (pacing.py).
            RUNTIME.queue.add_after(key.key, RUNTIME.process.pacing.delay(key.key, key.seconds),
                                    low=True)
        else:
            RUNTIME.queue.add(key)
