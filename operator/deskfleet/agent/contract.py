"""The session contract between a session host and its agent, version 1. Pure.

Specified in docs/session-contract.md; this module is its reference implementation.

Host -> agent: the host keeps `sessions.json` current in a shared in-memory volume (or
serves the same document on a local HTTP endpoint) — every session it holds, active and
disconnected, each with an opaque id. Every session counts as load whatever its state:
a disconnected session is waiting for its user to come back, and one being logged off
is still on the host.

Agent -> host: `notice.json` while the host drains (the message and, with a forced
logoff, the deadline) and `logoff.json` once the deadline has passed (log everyone off
now); the host's desktop shows the first and acts on the second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ..clock import format_time, parse_time
from .annotations import (
    DRAIN_MESSAGE_ANNOTATION,
    DRAINING_ANNOTATION,
    LOGOFF_DEADLINE_ANNOTATION,
    LOGOFF_REQUESTED_ANNOTATION,
)

VERSION = 1
# The states a host may report. A state this version does not know still counts as
# load (a newer host must never make its sessions look gone to an older agent).
ACTIVE, DISCONNECTED, LOGGING_OFF = "active", "disconnected", "loggingOff"
STATES = (ACTIVE, DISCONNECTED, LOGGING_OFF)
MAX_SESSIONS = 10_000  # a report claiming more is broken, not a busy host
MAX_REPORT_BYTES = 4 * 1024 * 1024


class ReportError(ValueError):
    """The host's report cannot be used; the message says why, for the agent's log."""


@dataclass(frozen=True)
class HostSession:
    id: str
    state: str = ACTIVE
    user: str | None = None  # never leaves the pod: the agent reports counts only


@dataclass(frozen=True)
class HostReport:
    updated_at: datetime
    sessions: tuple[HostSession, ...]

    @property
    def load(self) -> int:
        return len(self.sessions)

    @property
    def disconnected(self) -> int:
        return sum(1 for s in self.sessions if s.state == DISCONNECTED)


def _session(item: object, index: int) -> HostSession:
    if not isinstance(item, dict):
        raise ReportError(f"sessions[{index}] is not an object")
    sid, state, user = item.get("id"), item.get("state", ACTIVE), item.get("user")
    if not isinstance(sid, str) or not sid:
        raise ReportError(f"sessions[{index}].id must be a non-empty string")
    if not isinstance(state, str):
        raise ReportError(f"sessions[{index}].state must be a string")
    if user is not None and not isinstance(user, str):
        raise ReportError(f"sessions[{index}].user must be a string")
    return HostSession(sid, state, user)


def parse_host_report(text: str | bytes, now: datetime, max_age_seconds: float) -> HostReport:
    """The host's report, or ReportError if it is malformed or older than max_age_seconds
    (a host that stopped writing must not keep reporting its last count forever)."""
    if len(text) > MAX_REPORT_BYTES:
        raise ReportError(f"report larger than {MAX_REPORT_BYTES} bytes")
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise ReportError(f"not JSON: {err}") from err
    if not isinstance(doc, dict):
        raise ReportError("not a JSON object")
    version = doc.get("version")
    # A later version may only add fields and states, so it is read as version 1.
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReportError("version must be a positive integer")
    updated_at = parse_time(doc.get("updatedAt")) if isinstance(doc.get("updatedAt"),
                                                                str) else None
    if updated_at is None or updated_at.tzinfo is None:
        raise ReportError("updatedAt must be an RFC 3339 time with an offset")
    age = (now - updated_at).total_seconds()
    if age > max_age_seconds:
        raise ReportError(f"stale: written {age:.0f}s ago (the host must rewrite it at "
                          f"least every {max_age_seconds:.0f}s)")
    items = doc.get("sessions")
    if not isinstance(items, list):
        raise ReportError("sessions must be a list")
    if len(items) > MAX_SESSIONS:
        raise ReportError(f"more than {MAX_SESSIONS} sessions")
    sessions = tuple(_session(item, i) for i, item in enumerate(items))
    ids = [s.id for s in sessions]
    if len(set(ids)) != len(ids):
        raise ReportError("session ids must be unique")
    return HostReport(updated_at, sessions)


def host_report_document(sessions: list[HostSession], updated_at: datetime) -> dict[str, object]:
    """What a host writes: the inverse of parse_host_report (tests, reference reporters)."""
    return {"version": VERSION, "updatedAt": format_time(updated_at),
            "sessions": [{"id": s.id, "state": s.state,
                          **({"user": s.user} if s.user is not None else {})}
                         for s in sessions]}


@dataclass(frozen=True)
class DrainInstruction:
    """What the operator asks of the host, read back from the pod's annotations."""

    draining_since: datetime | None = None
    message: str | None = None  # the notice to show; None: show none
    deadline: datetime | None = None  # when users will be logged off; None: never
    logoff_requested_at: datetime | None = None  # log everyone off now

    @property
    def draining(self) -> bool:
        return self.draining_since is not None


def instruction_from_annotations(annotations: dict[str, str]) -> DrainInstruction:
    since = parse_time(annotations.get(DRAINING_ANNOTATION))
    if since is None:
        return DrainInstruction()  # not draining: whatever else is left over means nothing
    return DrainInstruction(
        draining_since=since, message=annotations.get(DRAIN_MESSAGE_ANNOTATION),
        deadline=parse_time(annotations.get(LOGOFF_DEADLINE_ANNOTATION)),
        logoff_requested_at=parse_time(annotations.get(LOGOFF_REQUESTED_ANNOTATION)))


def notice_document(instruction: DrainInstruction) -> dict[str, object] | None:
    """`notice.json`, or None when there is nothing to show."""
    if instruction.draining_since is None or (instruction.message is None
                                              and instruction.deadline is None):
        return None
    return {"version": VERSION, "drainingSince": format_time(instruction.draining_since),
            "message": instruction.message or "",
            "deadline": format_time(instruction.deadline) if instruction.deadline else None}


def logoff_document(instruction: DrainInstruction) -> dict[str, object] | None:
    """`logoff.json`, or None when no logoff is asked for."""
    if instruction.draining_since is None or instruction.logoff_requested_at is None:
        return None
    return {"version": VERSION, "requestedAt": format_time(instruction.logoff_requested_at),
            "deadline": format_time(instruction.deadline) if instruction.deadline else None,
            "sessions": "all", "message": instruction.message or ""}
