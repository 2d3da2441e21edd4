"""Two references for host-hours, both knowing the future.

- The clairvoyant lower bound: at every moment exactly ceil(sessions / slots per host)
  hosts, as if sessions could be packed perfectly and moved between hosts at will, with
  no start-up time. No pool can do better; no real pool can do as well, because a
  remote-desktop session cannot move.
- A clairvoyant placement without migration: every session's start and end are known,
  hosts start instantly and are removed the moment their last session ends, but a
  session stays on the host it started on. Each logon goes, of the hosts open at that
  moment with a free slot, to the one whose busy time it extends least — and among those
  it does not extend, to the one that frees up soonest after it (best fit on end times);
  a host is opened only when none has a free slot. It is a schedule that exists, so the
  best placement without migration costs at most this much; it is what knowing how long
  every session will last is worth, before start-up times and unannounced demand.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence


def clairvoyant_host_seconds(levels: Sequence[tuple[float, int]], start: float, end: float,
                             per_host: int) -> float:
    """The lower bound on host-seconds over [start, end).

    `levels` are (moment, sessions in progress from then on), ordered by moment.
    """
    total = 0.0
    level = 0
    edge = start
    for moment, nxt in levels:
        if moment > start:
            total += math.ceil(level / per_host) * (min(moment, end) - edge)
            edge = min(moment, end)
        if moment >= end:
            break
        level = nxt
    if edge < end:
        total += math.ceil(level / per_host) * (end - edge)
    return total


class _OpenHost:
    __slots__ = ("busy_until", "ends", "opened")

    def __init__(self, opened: float) -> None:
        self.opened = opened
        self.busy_until = opened  # its last session's end: it closes then
        self.ends: list[float] = []  # heap of its live sessions' ends


def placement_without_migration(sessions: Sequence[tuple[float, float]], start: float,
                                end: float, per_host: int) -> tuple[float, int]:
    """(host-seconds over [start, end), hosts used) of the clairvoyant placement without
    migration for sessions given as (arrival, departure), in any order."""
    open_hosts: list[_OpenHost] = []
    spans: list[tuple[float, float]] = []
    for arrival, departure in sorted(sessions):
        fits: _OpenHost | None = None
        best = (math.inf, math.inf)
        still_open = []
        for host in open_hosts:
            while host.ends and host.ends[0] <= arrival:
                heapq.heappop(host.ends)
            if not host.ends:
                spans.append((host.opened, host.busy_until))
                continue
            still_open.append(host)
            if len(host.ends) < per_host:
                busy = host.busy_until
                key = (max(0.0, departure - busy), max(0.0, busy - departure))
                if key < best:
                    fits, best = host, key
        open_hosts = still_open
        if fits is None:
            fits = _OpenHost(arrival)
            open_hosts.append(fits)
        heapq.heappush(fits.ends, departure)
        fits.busy_until = max(fits.busy_until, departure)
    spans += [(h.opened, h.busy_until) for h in open_hosts]
    seconds = sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)
    return seconds, len(spans)
