"""The built-in days `deskfleet simulate --scenario` knows.

Each is a kind of day a hospital's pool must survive without a schedule phase written
for it. A scenario is a name, a sentence saying what it tests, and a function from
(seed, staff) to a workload; adding one is adding an entry to SCENARIOS — and, if it
needs events other than logons, teaching `run.simulate` about them, as the patch day's
image change (`Workload.image_changes`) is.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time

from .workload import (
    DAY_SHIFT_SHARE,
    DESK,
    LONDON,
    NIGHT,
    RATE_CURVE,
    DayShape,
    Lengths,
    RateCurve,
    Workload,
    generate_day,
    weekday_lengths,
)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    build: Callable[[int, int], Workload]  # (seed, staff) -> the day
    # A day with an image change: its policies are rollouts (simulation/rollout.py), and
    # `--scenario all` (the kinds of day a pool must survive) leaves it out.
    rollout: bool = False


def _storm(curve: RateCurve, start: float, end: float, factor: float) -> RateCurve:
    """The curve with its rate multiplied by `factor` over [start, end)."""
    edges = sorted({h for h, _ in curve} | {start, end - 1e-6, end})
    shape = DayShape(curve)
    return tuple((h, shape.rate_per_hour(h) * (factor if start <= h < end else 1.0))
                 for h in edges)


# Teleconsultation clinics: clinicians start their lists at 09:00 and 14:00, each
# consultation a session of about twenty minutes, back to back until the clinic ends.
TELECONSULTATION_RATES: RateCurve = (
    (0.0, 12), (8.5, 12), (8.9, 60), (9.0, 1100), (9.25, 720), (11.75, 720), (12.0, 60),
    (13.75, 40), (13.9, 60), (14.0, 1100), (14.25, 720), (16.75, 720), (17.0, 40),
    (24.0, 12),
)
CONSULTATION = Lengths(20, 0.35)


def _teleconsultation_lengths(hour: float, rng: random.Random) -> Lengths:
    return CONSULTATION


# A night-shift-heavy day (a weekend): a thin day shift, and a large night shift that
# logs on around the 20:00 handover and stays for hours.
NIGHT_SHIFT_RATES: RateCurve = (
    (0.0, 90), (5.5, 80), (6.5, 70), (7.0, 230), (7.5, 300), (8.0, 160), (10.0, 120),
    (12.0, 100), (16.0, 100), (18.0, 90), (19.5, 130), (20.0, 460), (20.5, 320),
    (21.0, 130), (22.0, 90), (24.0, 90),
)


def _night_shift_lengths(hour: float, rng: random.Random) -> Lengths:
    if hour >= 19.0 or hour < 7.0:
        return NIGHT
    return DESK if rng.random() < DAY_SHIFT_SHARE else weekday_lengths(hour, rng)


TUESDAY = date(2026, 11, 24)
PATCH_TIME = time(10, 0)  # the monthly patch: the pool's image changes mid-morning


def _patch_day(seed: int, staff: int) -> Workload:
    day = generate_day(DayShape(RATE_CURVE), seed, staff, TUESDAY,
                       "patch day: an ordinary weekday, the image changed at 10:00")
    return replace(day, image_changes=(datetime.combine(TUESDAY, PATCH_TIME, LONDON),))

MONDAY_AFTER_NEW_YEAR = date(2027, 1, 4)
SATURDAY = date(2026, 11, 28)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("current", "an ordinary weekday",
             "the trust's ordinary Tuesday: a logon storm 07:30-08:30, a lunch dip, an "
             "afternoon plateau, an evening tail and a night shift",
             lambda seed, staff: generate_day(DayShape(RATE_CURVE), seed, staff, TUESDAY,
                                              "an ordinary weekday")),
    Scenario("teleconsultation", "a teleconsultation day",
             "video clinics at 09:00 and 14:00: twenty-minute sessions back to back, two "
             "sharp storms when the clinics open",
             lambda seed, staff: generate_day(
                 DayShape(TELECONSULTATION_RATES, _teleconsultation_lengths, 0.05),
                 seed, staff, TUESDAY, "a teleconsultation day")),
    Scenario("holiday-monday", "the Monday after a holiday",
             "the ordinary weekday, but the 07:30-09:00 logon rate is 1.6 times higher "
             "(everyone back at once after New Year)",
             lambda seed, staff: generate_day(
                 DayShape(_storm(RATE_CURVE, 7.5, 9.0, 1.6)), seed, staff,
                 MONDAY_AFTER_NEW_YEAR, "the Monday after a holiday")),
    Scenario("night-shift", "a night-shift-heavy day",
             "a weekend: a thin day shift from 07:00 and a large night shift that logs on "
             "around the 20:00 handover and stays for hours",
             lambda seed, staff: generate_day(
                 DayShape(NIGHT_SHIFT_RATES, _night_shift_lengths), seed, staff, SATURDAY,
                 "a night-shift-heavy day")),
    Scenario("patch-day", "patch day",
             "the ordinary weekday with the monthly patch: the pool's image changes at "
             "10:00, when ~900 sessions are open; a rollout without a deadline, with one, "
             "urgent, and the plain Deployment rollout deskfleet did before",
             _patch_day, rollout=True),
)}
DEFAULT_SCENARIO = "current"
