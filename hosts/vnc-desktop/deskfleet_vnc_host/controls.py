"""The session controls this host enforces, and how. Standard library only; pure.

Where a connection's controls come from, in this order:

1. the `X-Deskfleet-Controls` header of the request: the effective controls of the
   portal's decision for this user, now. The gateway copies it from the portal's answer
   and replaces any copy the client sent; only the gateway reaches the host (the pool's
   NetworkPolicy). Every key must be there with its type, or the header is refused;
2. without that header, the pool's baseline: the strictest `baselineControls` of the
   apps in the host config the operator mounts (`/etc/deskfleet/host.json`), i.e. what
   the most restricted user of any app on the pool gets;
3. neither: the connection is refused.

Identity (`X-Deskfleet-User`) is never optional: a desktop belongs to one user.

How each control is enforced here (Xvnc, websockify and this host's own endpoints):

| control            | enforced by                                                      |
|--------------------|------------------------------------------------------------------|
| clipboardToHost    | Xvnc `AcceptCutText`, `SetPrimary`: the client's clipboard is ignored |
| clipboardToClient  | Xvnc `SendCutText`, `SendPrimary`: the server never sends it     |
| fileUpload         | this host's `PUT <path>/files/<name>`, refused per request       |
| fileDownload       | this host's `GET <path>/files/...`, refused per request          |
| printing           | nothing to enforce: VNC has no printer channel (never available) |
| recording          | websockify's recorder, per connection; refused without a place for it |
| watermark          | cannot: a connection that requires one is refused                 |
| idleTimeoutSeconds | Xvnc `IdleTimeout`: an idle viewer is cut, the session stays      |
| maxSessionSeconds  | the supervisor logs the session off that long after its logon     |

The Xvnc settings are fixed when the session's X server starts (at the logon) and cannot
be changed from inside the session (`AllowOverride` lists none of them), so a user with
a shell in the desktop cannot turn the clipboard back on with `vncconfig`. A reconnect
whose controls are stricter than the running session's fixed ones is refused, with the
reason, rather than let in under looser settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PERMISSIONS = ("clipboardToHost", "clipboardToClient", "fileUpload", "fileDownload",
               "printing")
REQUIREMENTS = ("recording", "watermark")
LIMITS = ("idleTimeoutSeconds", "maxSessionSeconds")
MAX_HEADER_BYTES = 4096


class ControlsError(ValueError):
    """The controls cannot be read; the message says why."""


@dataclass(frozen=True)
class Controls:
    clipboard_to_host: bool = False
    clipboard_to_client: bool = False
    file_upload: bool = False
    file_download: bool = False
    printing: bool = False
    recording: bool = False
    watermark: bool = False
    idle_timeout_seconds: int | None = None
    max_session_seconds: int | None = None

    def wire(self) -> dict[str, Any]:
        """The portal's JSON form (`Controls.wire()` in deskfleet.policy.model)."""
        return {"clipboardToHost": self.clipboard_to_host,
                "clipboardToClient": self.clipboard_to_client,
                "fileUpload": self.file_upload, "fileDownload": self.file_download,
                "printing": self.printing, "recording": self.recording,
                "watermark": self.watermark,
                "idleTimeoutSeconds": self.idle_timeout_seconds,
                "maxSessionSeconds": self.max_session_seconds}


def from_wire(doc: Any) -> Controls:
    """Controls from their JSON form; every key required, with its type."""
    if not isinstance(doc, dict):
        raise ControlsError("controls must be a JSON object")
    for key in (*PERMISSIONS, *REQUIREMENTS):
        if not isinstance(doc.get(key), bool):
            raise ControlsError(f"{key} must be true or false")
    for key in LIMITS:
        value = doc.get(key, "missing")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0):
            raise ControlsError(f"{key} must be a positive number of seconds or null")
    return Controls(doc["clipboardToHost"], doc["clipboardToClient"], doc["fileUpload"],
                    doc["fileDownload"], doc["printing"], doc["recording"],
                    doc["watermark"], doc["idleTimeoutSeconds"], doc["maxSessionSeconds"])


def parse_header(text: str) -> Controls:
    if len(text) > MAX_HEADER_BYTES:
        raise ControlsError("controls header too long")
    try:
        return from_wire(json.loads(text))
    except ValueError as err:
        if isinstance(err, ControlsError):
            raise
        raise ControlsError(f"controls header is not JSON: {err}") from err


def strictest(each: list[Controls]) -> Controls:
    """No input is looser than the result: permissions only if all give them,
    requirements if any imposes them, the shortest limits."""
    def shortest(values: list[int | None]) -> int | None:
        given = [v for v in values if v is not None]
        return min(given) if given else None

    return Controls(
        clipboard_to_host=all(c.clipboard_to_host for c in each),
        clipboard_to_client=all(c.clipboard_to_client for c in each),
        file_upload=all(c.file_upload for c in each),
        file_download=all(c.file_download for c in each),
        printing=all(c.printing for c in each),
        recording=any(c.recording for c in each),
        watermark=any(c.watermark for c in each),
        idle_timeout_seconds=shortest([c.idle_timeout_seconds for c in each]),
        max_session_seconds=shortest([c.max_session_seconds for c in each]))


def baseline(host_config: Any) -> Controls | None:
    """The pool's baseline from the host config: the strictest of its apps' baselines
    (the host cannot tell which app a header-less request is for). None without any."""
    apps = host_config.get("apps") if isinstance(host_config, dict) else None
    found = []
    for entry in (apps or {}).values():
        wire = entry.get("baselineControls") if isinstance(entry, dict) else None
        if wire is not None:
            found.append(from_wire(wire))
    return strictest(found) if found else None


def choose(header: str | None, pool_baseline: Controls | None) -> tuple[Controls, str]:
    """The controls of one request, and where they came from (`header` or `baseline`)."""
    if header is not None:
        return parse_header(header), "header"
    if pool_baseline is not None:
        return pool_baseline, "baseline"
    raise ControlsError("no X-Deskfleet-Controls header and no baseline in the host config")


def refusals(controls: Controls, can_record: bool) -> list[str]:
    """What this host cannot honour: a connection that requires it is refused."""
    problems = []
    if controls.recording and not can_record:
        problems.append("recording is required, and this host has no recordings directory")
    if controls.watermark:
        problems.append("a watermark is required, and this host cannot draw one")
    return problems


def xvnc_settings(controls: Controls) -> dict[str, str]:
    """The Xvnc parameters a session starts with (see the module's table)."""
    def flag(on: bool) -> str:
        return "1" if on else "0"

    return {"AcceptCutText": flag(controls.clipboard_to_host),
            "SetPrimary": flag(controls.clipboard_to_host),
            "SendCutText": flag(controls.clipboard_to_client),
            "SendPrimary": flag(controls.clipboard_to_client),
            "IdleTimeout": str(controls.idle_timeout_seconds or 0),
            # Nothing above may be changed from inside the session (vncconfig -set).
            "AllowOverride": "desktop"}


def looser_than(session: Controls, request: Controls) -> list[str]:
    """Where the running session's fixed Xvnc settings are looser than what a new
    connection's controls allow: such a reconnect is refused."""
    problems = []
    if session.clipboard_to_host and not request.clipboard_to_host:
        problems.append("clipboard to the session")
    if session.clipboard_to_client and not request.clipboard_to_client:
        problems.append("clipboard to the device")
    if request.idle_timeout_seconds is not None and (
            session.idle_timeout_seconds is None
            or session.idle_timeout_seconds > request.idle_timeout_seconds):
        problems.append("the idle timeout")
    return problems
