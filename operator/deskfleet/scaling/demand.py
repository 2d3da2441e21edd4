"""Logon demand the hosts cannot see, and the free slots it calls for. Pure.

A logon that finds no free slot never becomes a session, so no agent ever counts it:
sizing a pool on its sessions alone is blind exactly when a storm begins. The gateway
sees every launch, though; the portal counts them per pool, and the operator measures
how long a new host takes to become ready. From those:

    free slots to keep = unserved + max(buffer, rate x start-up x (1 + margin))

— the users already waiting, plus the logons expected while a host added now starts
(with headroom for a rate that is still rising), or the pool's buffer if that is more
(so a schedule phase stays a floor). Hosts still starting are counted as capacity: the
logons expected before they are ready are exactly what the reserve is sized for, and
those that arrive before them wait at most one start-up.

The rate is net of the sessions that end meanwhile on hosts taking logons, when the
operator measures that (`ended_per_minute`): each frees a slot for the next logon. In a
storm almost nothing ends and the two rates are the same; in a clinic of twenty-minute
consultations back to back, one ends for every one that starts, and a reserve on the
gross rate alone keeps a quarter of the pool idle all day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    launch_rate_per_minute: float = 0.0  # recent rate of launches the portal saw for this pool
    unserved: int = 0  # launches in the recent window that found no free slot (users waiting)
    startup_seconds: float | None = None  # measured pod-creation-to-Ready, recent percentile
    ended_per_minute: float = 0.0  # recent rate of sessions ending on hosts taking logons


def expected_logons(demand: Demand, startup_seconds: float, margin_percent: int) -> int:
    """Logons expected while a host added now starts, with the margin."""
    rate = max(0.0, demand.launch_rate_per_minute - max(0.0, demand.ended_per_minute))
    # A tiny epsilon keeps float noise (0.1 x 3 x 60) from adding a whole slot.
    return math.ceil(rate * startup_seconds / 60 * (1 + margin_percent / 100) - 1e-9)


def free_slots_to_keep(demand: Demand, buffer: int, startup_seconds: float,
                       margin_percent: int) -> int:
    return max(0, demand.unserved) + max(buffer, expected_logons(demand, startup_seconds,
                                                                 margin_percent))
