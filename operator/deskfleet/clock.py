"""The operator's notion of "now" for schedules.

Tests drive the clock instead of sleeping until 08:00: when DESKFLEET_CLOCK_FILE is set,
the time written in that file (ISO 8601) is what the clock read when the file was
written, and it runs on in real time from there (so delays still elapse). Production
never sets it. Freshness of session reports is always judged on the real clock (see
controllers/scaling.py), so a driven clock cannot make live data look stale.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path


def real_now() -> datetime:
    return datetime.now(UTC)


def schedule_now() -> datetime:
    path = os.environ.get("DESKFLEET_CLOCK_FILE")
    if path and Path(path).exists():
        text = Path(path).read_text().strip()
        if text:
            written = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
            return datetime.fromisoformat(text).astimezone(UTC) + (real_now() - written)
    return real_now()


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_time(moment: datetime, micro: bool = False) -> str:
    """RFC 3339 in UTC, as Kubernetes writes it: seconds for conditions and
    annotations, microseconds (`micro`) for a Lease's MicroTime fields."""
    return moment.astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")
