"""Which schedule phase is in force at a moment, in the pool's local time. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ..api.common import in_weekly_window
from ..api.sessionhostpool import LoadBalancing, PhaseDrain, Schedule

BASE = "base"  # outside every phase: the pool's own floor and buffer
HOLIDAY = "holiday"


@dataclass(frozen=True)
class PhaseView:
    name: str
    type: str
    min_hosts: int | None = None
    buffer_sessions: int | None = None
    buffer_percent: int | None = None
    drain: PhaseDrain | None = None  # the phase's own drain settings, over the pool's
    load_balancing: LoadBalancing | None = None


def active_phase(schedule: Schedule | None, now: datetime) -> PhaseView:
    """Phases are [start, end) in local wall-clock time; a holiday suspends them all."""
    if schedule is None:
        return PhaseView(BASE, "offPeak")
    local = now.astimezone(ZoneInfo(schedule.time_zone))
    if local.date().isoformat() in schedule.holidays:
        return PhaseView(HOLIDAY, "offPeak")
    for phase in schedule.phases:
        if in_weekly_window(phase.days, phase.start, phase.end, local):
            return PhaseView(phase.name, phase.type, phase.min_hosts, phase.buffer_sessions,
                             phase.buffer_percent, phase.drain, phase.load_balancing)
    return PhaseView(BASE, "offPeak")
