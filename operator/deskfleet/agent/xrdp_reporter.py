#!/usr/bin/env python3
"""Reference session reporter for xrdp hosts (session contract version 1).

Runs inside the session-host container, next to xrdp-sesman. It depends on nothing but
the Python standard library, so an image can copy this one file:

    python3 xrdp_reporter.py            # or: python3 -m deskfleet.agent.xrdp_reporter

Every few seconds it lists xrdp's sessions (`xrdp-sesadmin -c=list`, which says for
each whether a client is connected) and writes them to the shared report file, replaced
atomically. When the agent delivers a logoff request it reports every session as
`loggingOff` and ends each one by stopping its X server (xrdp-sesman then cleans up); a
notice is handed to an optional command (for example `xmessage` or `notify-send` on
the session's display). See docs/session-contract.md for the contract itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VERSION = 1
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*?)\s*$")


def parse_sesadmin_list(text: str) -> list[dict[str, Any]]:
    """Sessions from `xrdp-sesadmin -c=list`: blocks opened by `Session ID: N`, then
    indented `Field: value` lines. A session whose connection state is not stated
    counts as active (its user may be connected; never assume less load)."""
    sessions: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        match = _FIELD.match(line)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "session id":
            current = {"id": f"xrdp-{value}", "state": "active"}
            sessions.append(current)
        elif current is None:
            continue
        elif key == "user" and value and value != "<unknown>":
            current["user"] = value
        elif key == "display":
            current["display"] = value.lstrip(":")
        elif key in ("connection state", "state") and value.lower().startswith("disc"):
            current["state"] = "disconnected"
    return sessions


def report_document(sessions: list[dict[str, Any]], now: datetime,
                    logging_off: bool) -> dict[str, Any]:
    return {"version": VERSION, "updatedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sessions": [{"id": s["id"],
                          "state": "loggingOff" if logging_off else s["state"],
                          **({"user": s["user"]} if "user" in s else {})}
                         for s in sessions]}


def write_atomically(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(doc, out)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def end_session(session: dict[str, Any], lock_dir: Path = Path("/tmp")) -> bool:
    """Stop the session's X server (its pid is in /tmp/.X<display>-lock)."""
    try:
        pid = int((lock_dir / f".X{session['display']}-lock").read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (KeyError, OSError, ValueError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", default="/run/deskfleet-host/sessions.json")
    parser.add_argument("--notice", default="/run/deskfleet/notice.json")
    parser.add_argument("--logoff", default="/run/deskfleet/logoff.json")
    parser.add_argument("--list-command", default="xrdp-sesadmin -c=list")
    parser.add_argument("--notify-command", default="",
                        help="run once per session for a new notice, with DISPLAY set and "
                        "the message and deadline as its last two arguments")
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    report, notice_path, logoff_path = Path(args.report), Path(args.notice), Path(args.logoff)
    shown: dict[str, Any] | None = None
    while True:
        try:
            listing = subprocess.run(args.list_command.split(), capture_output=True,
                                     text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError) as err:
            # Write nothing: the report ages, and the operator treats the host as
            # unknown rather than empty.
            print(f"cannot list sessions: {err}", file=sys.stderr)
            time.sleep(args.interval)
            continue
        sessions = parse_sesadmin_list(listing)
        logoff = _read_json(logoff_path)
        write_atomically(report, report_document(sessions, datetime.now(UTC), bool(logoff)))
        if logoff:
            for session in sessions:
                end_session(session)
        notice = _read_json(notice_path)
        if notice and notice != shown and args.notify_command:
            for session in sessions:
                if "display" in session:
                    env = {**os.environ, "DISPLAY": f":{session['display']}"}
                    subprocess.run([*args.notify_command.split(), str(notice.get("message")),
                                    str(notice.get("deadline") or "")], env=env, check=False,
                                   timeout=10)
        shown = notice
        time.sleep(args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
