"""How long a pool's hosts take to start: pod creation to Ready, a recent high percentile.

The demand-aware reserve is "logons expected while a host added now starts", so the
start-up time is measured, not assumed. Each host is sampled once, the first time the
operator sees it Ready (a later Ready flap is not a start-up); the pool keeps its last
SAMPLES start-ups of the last MAX_AGE and reports their PERCENTILE. After an operator
restart the pool's live hosts give their samples again from the pod's own timestamps.

The API server records both times to the second, so a start-up is at least 1 s: a host
that became Ready within its creation second did not start in no time at all (and a
start-up of 0 would read as "not measured").
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..clock import parse_time
from ..conditions import true_condition

SAMPLES = 20
PERCENTILE = 90
MAX_AGE = timedelta(hours=24)


def startup_sample(pod: dict[str, Any]) -> tuple[datetime, float] | None:
    """(when it became Ready, seconds from creation), or None while it is not Ready."""
    created = parse_time(pod["metadata"].get("creationTimestamp"))
    ready = true_condition((pod.get("status") or {}).get("conditions"))
    became = parse_time(ready.get("lastTransitionTime")) if ready else None
    if created is None or became is None:
        return None
    return became, max(1.0, (became - created).total_seconds())


def percentile(values: list[float], percent: int) -> float:
    """Nearest rank: with few samples, a high percentile is the slowest of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


@dataclass
class _Pool:
    samples: dict[str, tuple[datetime, float]] = field(default_factory=dict)  # uid ->
    seen: set[str] = field(default_factory=set)  # live hosts already sampled: skipped


class StartupTimes:
    """Per pool (keyed `namespace/name`); used from the reconcile threads."""

    def __init__(self) -> None:
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()

    def observe(self, pool: str, pods: list[dict[str, Any]], now: datetime) -> float | None:
        """Take the pods' start-ups not seen before; the pool's figure, None if none."""
        with self._lock:
            state = self._pools.setdefault(pool, _Pool())
            seen = set()
            for pod in pods:
                uid = pod["metadata"].get("uid") or pod["metadata"]["name"]
                if uid in state.seen:
                    seen.add(uid)
                elif (sample := startup_sample(pod)) is not None:
                    state.samples[uid] = sample
                    seen.add(uid)
            recent = sorted(((at, s, uid) for uid, (at, s) in state.samples.items()
                             if now - at <= MAX_AGE), reverse=True)[:SAMPLES]
            state.samples = {uid: (at, s) for at, s, uid in recent}
            state.seen = seen
        return percentile([s for _, s, _ in recent], PERCENTILE) if recent else None

    def forget(self, pool: str) -> None:
        with self._lock:
            self._pools.pop(pool, None)
