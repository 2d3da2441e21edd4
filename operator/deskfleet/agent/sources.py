"""Where the agent learns a host's sessions: the host's own report (the session
contract), or, for hosts that cannot report, the established TCP connections on the
session port. The pool chooses one (`spec.agent.sessionSource`); the two are never
mixed, so a count never jumps because a source came and went.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from .contract import MAX_REPORT_BYTES, ReportError, parse_host_report
from .sessions import count_sessions

Source = Literal["tcp", "host"]


@dataclass(frozen=True)
class SessionCount:
    load: int  # every session on the host, disconnected and logging off included
    disconnected: int | None  # None: the source cannot tell (TCP counting)
    source: Source


def from_tcp(proc_net: Path, port: int) -> SessionCount:
    tables = [(proc_net / name).read_text() for name in ("tcp", "tcp6")
              if (proc_net / name).exists()]
    return SessionCount(count_sessions(tables, port), None, "tcp")


def from_host_file(path: Path, now: datetime, max_age_seconds: float) -> SessionCount:
    """Raises ReportError when the host has not reported (yet), or not usably."""
    try:
        text = path.read_bytes()
    except FileNotFoundError as err:
        raise ReportError(f"{path} does not exist: the host has not reported yet") from err
    report = parse_host_report(text, now, max_age_seconds)
    return SessionCount(report.load, report.disconnected, "host")


def from_host_url(url: str, now: datetime, max_age_seconds: float,
                  timeout: float = 1.0) -> SessionCount:
    """The same document from a local endpoint (the pod's loopback only)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read(MAX_REPORT_BYTES + 1)
    except OSError as err:
        raise ReportError(f"{url}: {err}") from err
    report = parse_host_report(text, now, max_age_seconds)
    return SessionCount(report.load, report.disconnected, "host")
