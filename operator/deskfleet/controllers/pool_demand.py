"""A pool's logon demand as its scaling pass takes it: the portal's counts, or none.

Read on the event loop (the collector, controllers/portal_stats.py, changes them there).
Until the portal's first answer after the operator starts, nothing is known either way:
a pass then sees no launch rather than no signal — without a signal the core keeps a
slot free, which would wake every pool scaled to zero at each operator restart — and
leaves the status's `demandSignal` as it was.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..scaling.demand import Demand
from .portal_stats import demand_signal
from .runtime import RUNTIME


def _first_answer_awaited() -> bool:
    settings = RUNTIME.settings
    if not (settings.portal_stats_urls or settings.portal_stats_service):
        return False
    grace = 3 * settings.portal_stats_period_seconds + 5  # as demand_signal's staleness
    up = (datetime.now(UTC) - RUNTIME.portal_stats.started).total_seconds()
    return RUNTIME.portal_stats_seen[0] == 0.0 and up <= grace


def pool_demand(namespace: str, name: str) -> tuple[Demand | None, str | None]:
    """(the demand, or None without a signal; why there is none, "" when there is one,
    None when not known yet)."""
    signal = demand_signal()
    if not signal:
        return RUNTIME.portal_stats.demand(namespace, name, time.monotonic()), ""
    if _first_answer_awaited():
        return Demand(), None
    return None, signal
