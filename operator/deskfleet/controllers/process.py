"""What an operator process remembers between passes, in one place. The Runtime owns one
`ProcessState` and hands it to every pass (controllers/workers.py); a pass run on its
own (a test, a one-shot command) gets a fresh one and so remembers nothing.

Every store here has a bounded lifetime: what it holds of an object is dropped when the
object's deletion is seen (the kind's `Controller.forget` and `ProcessState.forget_child`,
from the watch handlers and the workers' deletion path), and each is capped besides, for
deletions a watch never reports. docs/design.md ("Process state") lists them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from ..policy.selection import PolicySet
from .events import EventRecorder
from .pacing import Pacing
from .session_ends import SessionEnds
from .startup import StartupTimes
from .tls_secrets import SecretChecker

GONE_CAPACITY = 10_000
RENDERED_BUDGET = 64 * 1024 * 1024  # bytes kept rendered (pools.py: digests, not documents)


class Gone:
    """Uids of objects the API server says are gone although the watch never said so
    (Kopf re-lists after a 410 Gone without reporting what was deleted meanwhile, and
    stops watching a namespace being deleted): workers skip their stale cache entries
    instead of re-creating children the garbage collector deletes, in a loop.

    A uid leaves when the watch reports the deletion (the cache no longer holds the
    body); beyond `capacity` the oldest leave first (a stale body that comes back is
    found gone again by its next pass: one GET)."""

    def __init__(self, capacity: int = GONE_CAPACITY) -> None:
        self._uids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()
        self.version = 0  # moves with every uid added: what reads `Gone` keys on it

    def add(self, uid: str) -> None:
        if not uid:
            return
        with self._lock:
            self._uids[uid] = None
            self._uids.move_to_end(uid)
            while len(self._uids) > self._capacity:
                self._uids.popitem(last=False)
            self.version += 1

    def discard(self, uid: str) -> None:
        with self._lock:
            self._uids.pop(uid, None)

    def __contains__(self, uid: object) -> bool:
        return uid in self._uids

    def __len__(self) -> int:
        return len(self._uids)


DeploymentKey = tuple[str, str, str]  # namespace, name, uid


class WrittenReplicas:
    """The replica counts the scaler wrote, and the generation each produced, per
    Deployment: the Deployment and the pods arrive on different watch streams, so a pass
    can see an older count than the one this process last wrote (controllers/scaling.py
    reads a stale snapshot through it). An entry goes with its Deployment: deleted by
    the scaler, or its deletion seen by the children's watch."""

    def __init__(self) -> None:
        self._written: dict[DeploymentKey, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: DeploymentKey) -> tuple[int, int] | None:
        with self._lock:
            return self._written.get(key)

    def put(self, key: DeploymentKey, generation: int, replicas: int) -> None:
        with self._lock:
            self._written[key] = (generation, replicas)

    def forget(self, namespace: str, name: str) -> None:
        """Every entry of the Deployment `namespace/name` (of any uid)."""
        with self._lock:
            for key in [k for k in self._written if k[:2] == (namespace, name)]:
                del self._written[key]

    def __len__(self) -> int:
        return len(self._written)


@dataclass(frozen=True)
class Rendered:
    key: Hashable  # what the rendering read
    policies: PolicySet  # the valid policies it read (compared by identity)
    children: list[dict[str, Any]]  # the ConfigMaps' documents as digests
    size: int  # bytes held, roughly


class RenderedChildren:
    """Each pool's rendered children, kept while their inputs are the same, within a
    memory budget: rendering twenty apps each granted by 200 policies takes ~15 ms, and a
    pool is passed every scaling period. Keyed by pool (namespace, name); an entry goes
    with its pool."""

    def __init__(self, budget: int = RENDERED_BUDGET) -> None:
        self._kept: dict[tuple[str, str], Rendered] = {}
        self._bytes = 0
        self._budget = budget
        self._lock = threading.Lock()  # pools are reconciled on several threads at once

    def get(self, pool: tuple[str, str]) -> Rendered | None:
        with self._lock:
            return self._kept.get(pool)

    def put(self, pool: tuple[str, str], rendered: Rendered) -> None:
        with self._lock:
            if (old := self._kept.pop(pool, None)) is not None:
                self._bytes -= old.size
            if self._bytes + rendered.size > self._budget:
                self._kept.clear()
                self._bytes = 0
            self._kept[pool] = rendered
            self._bytes += rendered.size

    def forget(self, pool: tuple[str, str]) -> None:
        with self._lock:
            if (old := self._kept.pop(pool, None)) is not None:
                self._bytes -= old.size

    def __len__(self) -> int:
        return len(self._kept)


@dataclass
class ProcessState:
    """Every store a pass reads or writes besides the API server and the indexes."""

    gone: Gone = field(default_factory=Gone)
    replicas: WrittenReplicas = field(default_factory=WrittenReplicas)  # scaling.py
    rendered: RenderedChildren = field(default_factory=RenderedChildren)  # pools.py
    startup: StartupTimes = field(default_factory=StartupTimes)  # per pool
    session_ends: SessionEnds = field(default_factory=SessionEnds)  # per pool
    tls_secrets: SecretChecker = field(default_factory=SecretChecker)  # apps.py
    # Posts Events from its own thread once started (controllers/handlers.py), inline
    # before that and in a pass run on its own.
    events: EventRecorder = field(default_factory=EventRecorder)
    # What the last catalog render and policy recount round of each namespace cost, to
    # pace the next (pacing.py).
    pacing: Pacing = field(default_factory=Pacing)

    def forget_pool(self, namespace: str, name: str) -> None:
        """What passes remembered of a deleted pool and its hosts."""
        self.startup.forget(f"{namespace}/{name}")
        self.session_ends.forget(f"{namespace}/{name}")
        self.rendered.forget((namespace, name))

    def forget_child(self, kind: str, namespace: str, name: str) -> None:
        """The watch reported the deletion of a child (a Deployment: its replicas)."""
        if kind == "Deployment":
            self.replicas.forget(namespace, name)
