"""A hospital's own logon history, from CSV, as a workload to replay. Pure but for
reading the file.

One logon a row, with a header:

- `start`: ISO 8601 with an offset (`2026-11-24T07:58:00+00:00`, `...Z`), required;
- `end` (ISO 8601 with an offset) or `duration_minutes`, exactly one;
- `disconnect_minutes`: optional, how much of the session its user spent disconnected
  (taken as its last part: the user went away and the host kept the session);
- `app`, `user`: optional, carried along.

Every row is checked before anything is simulated: a file with bad rows is refused
whole, with each row's number (as an editor counts lines, the header being row 1) and
what is wrong with it — a capacity plan on half a file would be wrong without saying so.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path

from .workload import Session, Workload

REQUIRED = {"start"}
KNOWN = {"start", "end", "duration_minutes", "disconnect_minutes", "app", "user"}
LONGEST = timedelta(days=7)  # a longer "session" is a data error, not a session
SHOWN_ERRORS = 20


class HistoryError(ValueError):
    """Why the file cannot be replayed: every problem found, row by row."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        more = len(problems) - SHOWN_ERRORS
        shown = problems[:SHOWN_ERRORS] + ([f"... and {more} more"] if more > 0 else [])
        super().__init__(f"{source}: {len(problems)} problem(s), nothing simulated:\n  "
                         + "\n  ".join(shown))


def _moment(text: str, column: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"{column} {text!r} is not an ISO 8601 time") from err
    if moment.tzinfo is None:
        raise ValueError(f"{column} {text!r} has no UTC offset (write e.g. +00:00 or Z)")
    return moment


def _minutes(text: str, column: str) -> timedelta:
    try:
        value = float(text)
    except ValueError as err:
        raise ValueError(f"{column} {text!r} is not a number of minutes") from err
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{column} {text!r} must be a number of minutes, 0 or more")
    return timedelta(minutes=value)


def _row(row: dict[str, str | None]) -> Session:
    cell = {k: (v or "").strip() for k, v in row.items() if k is not None}
    if not cell.get("start"):
        raise ValueError("start is empty")
    start = _moment(cell["start"], "start")
    end_text, minutes_text = cell.get("end", ""), cell.get("duration_minutes", "")
    if bool(end_text) == bool(minutes_text):
        raise ValueError("give exactly one of end and duration_minutes")
    duration = (_moment(end_text, "end") - start if end_text
                else _minutes(minutes_text, "duration_minutes"))
    if duration <= timedelta(0):
        raise ValueError("the session must end after it starts")
    if duration > LONGEST:
        raise ValueError(f"a session of {duration} is longer than {LONGEST.days} days")
    disconnected = (_minutes(cell["disconnect_minutes"], "disconnect_minutes")
                    if cell.get("disconnect_minutes") else timedelta(0))
    if disconnected > duration:
        raise ValueError("disconnect_minutes is longer than the session")
    return Session(start, duration, disconnected, cell.get("app") or None,
                   cell.get("user") or None)


def parse_history(text: str, source: str = "history") -> list[Session]:
    """Every session of the file, ordered by start; HistoryError naming every bad row."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise HistoryError(source, ["row 1: no header (expected start, end or "
                                    "duration_minutes, and optionally disconnect_minutes, "
                                    "app, user)"])
    problems = []
    missing = REQUIRED - set(header)
    if missing or not {"end", "duration_minutes"} & set(header):
        problems.append("row 1: the header needs start and one of end, duration_minutes")
    unknown = sorted(set(header) - KNOWN)
    if unknown:
        problems.append(f"row 1: unknown column(s) {', '.join(unknown)} (known: "
                        f"{', '.join(sorted(KNOWN))})")
    if problems:
        raise HistoryError(source, problems)
    reader.fieldnames = header
    sessions: list[Session] = []
    for row in reader:
        number = reader.line_num  # the row's last line, as an editor counts
        if None in row:
            problems.append(f"row {number}: more cells than columns")
            continue
        if all(not (v or "").strip() for v in row.values()):
            continue  # a blank line
        try:
            sessions.append(_row(row))
        except ValueError as err:
            problems.append(f"row {number}: {err}")
    if problems:
        raise HistoryError(source, problems)
    if not sessions:
        raise HistoryError(source, ["no logons in the file"])
    return sorted(sessions, key=lambda s: s.arrival)


def _midnight(moment: datetime, tz: tzinfo) -> datetime:
    return datetime.combine(moment.astimezone(tz).date(), time(), tz)


def history_workload(sessions: Iterable[Session], tz: tzinfo | None = None,
                     title: str = "a replayed history") -> Workload:
    """The sessions as a workload measured over the whole local days on which they log
    on: from the midnight before the first logon (the pool starts empty then, as nothing
    before it is known) to the midnight after the last logon, in `tz` (default: the first
    logon's own offset). Sessions running on past it count up to it, as for a built-in
    day."""
    ordered = sorted(sessions, key=lambda s: s.arrival)
    zone = tz or ordered[0].arrival.tzinfo or UTC
    start = _midnight(ordered[0].arrival, zone)
    end = _midnight(_midnight(ordered[-1].arrival, zone) + timedelta(hours=36), zone)
    return Workload(0, 0, start, end, tuple(ordered), title, zone)


def load_history(path: Path, tz: tzinfo | None = None) -> Workload:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise HistoryError(str(path), [f"cannot read it: {err}"]) from err
    return history_workload(parse_history(text, str(path)), tz,
                            f"the history in {path.name}")
