"""How fast sessions end on the hosts taking logons, read off the agents' reports.

Each slot freed on a serving host takes a logon the demand reserve would otherwise have
to hold (scaling/demand.py): in a clinic of back-to-back consultations one session ends
for every one that starts. The figure is what the reports show: a fresh count on a
serving host that went down since the last pass is that many sessions ended. Sessions
that start and end between two reports cancel out, so it errs low, towards more
reserve; so does forgetting it all when the operator restarts. Draining hosts do not
count (their slots take no logon), nor do hosts whose count cannot be trusted.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..scaling.hosts import Host

WINDOW = 300.0  # seconds


@dataclass
class _Pool:
    counts: dict[str, int] = field(default_factory=dict)  # serving host -> last count
    ended: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic, n)


class SessionEnds:
    """Per pool (keyed `namespace/name`); used from the reconcile threads."""

    def __init__(self) -> None:
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()

    def observe(self, pool: str, hosts: Iterable[Host], now: datetime, max_age: float,
                monotonic: float) -> float:
        """Take this pass's counts; sessions ended per minute over the last WINDOW."""
        with self._lock:
            state = self._pools.setdefault(pool, _Pool())
            counts = {h.name: h.sessions for h in hosts
                      if not h.draining and h.fresh(now, max_age) and h.sessions is not None}
            ended = sum(max(0, state.counts[name] - count)
                        for name, count in counts.items() if name in state.counts)
            state.counts = counts
            if ended:
                state.ended.append((monotonic, ended))
            while state.ended and monotonic - state.ended[0][0] > WINDOW:
                state.ended.popleft()
            return sum(n for _, n in state.ended) / (WINDOW / 60)

    def forget(self, pool: str) -> None:
        with self._lock:
            self._pools.pop(pool, None)
