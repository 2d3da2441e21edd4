"""The host's side of deskfleet's session contract, version 1 (docs/session-contract.md).
Standard library only.

Host -> agent: `sessions.json`, every session this host holds, rewritten atomically.
Agent -> host: `draining`, `notice.json`, `logoff.json` in the agent's volume.

A viewer is connected while an established TCP connection ends at Xvnc's RFB port (the
websockify side of a browser's WebSocket, or any VNC client): that is an `active`
session; a session whose X server and program run with no viewer is `disconnected`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VERSION = 1
ACTIVE, DISCONNECTED, LOGGING_OFF = "active", "disconnected", "loggingOff"
ESTABLISHED = "01"


@dataclass(frozen=True)
class Session:
    id: str
    state: str
    user: str | None = None


def report_document(sessions: list[Session], now: datetime) -> dict[str, Any]:
    return {"version": VERSION,
            "updatedAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sessions": [{"id": s.id, "state": s.state,
                          **({"user": s.user} if s.user else {})} for s in sessions]}


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write aside in the same directory, then rename: a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def viewers(tcp_tables: list[str], port: int) -> int:
    """Established connections whose local end is `port` (one per viewer)."""
    count = 0
    for table in tcp_tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != ESTABLISHED:
                continue
            try:
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
            except (IndexError, ValueError):
                continue
            count += local_port == port
    return count


def read_tcp_tables(proc_net: Path = Path("/proc/net")) -> list[str]:
    tables = []
    for name in ("tcp", "tcp6"):
        try:
            tables.append((proc_net / name).read_text())
        except OSError:
            continue
    return tables


def read_json(path: Path) -> dict[str, Any] | None:
    """The agent's file, or None if absent or unreadable (it is replaced atomically, so
    unreadable means not there yet)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def parse_deadline(notice: dict[str, Any] | None) -> datetime | None:
    text = (notice or {}).get("deadline")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
