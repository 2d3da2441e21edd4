"""Combining the session controls of several applying allows: most restrictive wins.

The rule is commutative and associative (any/all/min over a set), so the result does not
depend on policy order or priority. Per control:

| control            | kind        | combined                                | unset everywhere |
|--------------------|-------------|-----------------------------------------|------------------|
| clipboardToHost    | permission  | on iff some allow sets true, none false | on               |
| clipboardToClient  | permission  | on iff some allow sets true, none false | off              |
| fileUpload         | permission  | on iff some allow sets true, none false | off              |
| fileDownload       | permission  | on iff some allow sets true, none false | off              |
| printing           | permission  | on iff some allow sets true, none false | off              |
| recording          | requirement | on iff any allow sets true              | off              |
| watermark          | requirement | on iff any allow sets true              | off              |
| idleTimeout        | limit       | the smallest value set                  | no limit         |
| maxSessionDuration | limit       | the smallest value set                  | no limit         |

The defaults keep data on the server: pasting into a session moves nothing out of it
(clipboardToHost on); everything that moves data to the user's device is off.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..api.accesspolicy import SessionControls
from ..api.common import parse_duration
from .model import Controls

PERMISSION_DEFAULTS: dict[str, bool] = {
    "clipboard_to_host": True,
    "clipboard_to_client": False,
    "file_upload": False,
    "file_download": False,
    "printing": False,
}
"""What a permission is when no applying allow sets it (the secure defaults)."""

def most_restrictive(each: Sequence[Controls]) -> Controls:
    """The controls no admitted user is looser than: for the baseline a host applies
    before it knows which grant admitted a session. Each input is one grant's effective
    controls (its own settings over the defaults), so a permission is on only if every
    grant gives it, a requirement on if any grant imposes it, a limit the shortest."""
    if not each:
        raise ValueError("the most restrictive of no controls is undefined")

    def shortest(values: list[int | None]) -> int | None:
        set_values = [v for v in values if v is not None]
        return min(set_values) if set_values else None

    return Controls(
        clipboard_to_host=all(c.clipboard_to_host for c in each),
        clipboard_to_client=all(c.clipboard_to_client for c in each),
        file_upload=all(c.file_upload for c in each),
        file_download=all(c.file_download for c in each),
        printing=all(c.printing for c in each),
        recording=any(c.recording for c in each),
        watermark=any(c.watermark for c in each),
        idle_timeout_seconds=shortest([c.idle_timeout_seconds for c in each]),
        max_session_seconds=shortest([c.max_session_seconds for c in each]),
    )


def _permission(values: list[bool | None], default: bool) -> bool:
    set_values = [v for v in values if v is not None]
    if not set_values:
        return default
    # One explicit false vetoes it; otherwise at least one explicit true granted it.
    return all(set_values)


def _smallest_seconds(values: list[str | None]) -> int | None:
    seconds = [int(parse_duration(v).total_seconds()) for v in values if v is not None]
    return min(seconds) if seconds else None


def combine_controls(grants: Sequence[SessionControls]) -> Controls:
    """The effective controls of a request granted by all of `grants` (at least one)."""
    if not grants:
        raise ValueError("controls are combined from at least one applying allow")

    def permission(name: str) -> bool:
        return _permission([getattr(g, name) for g in grants], PERMISSION_DEFAULTS[name])

    def requirement(name: str) -> bool:
        return any(getattr(g, name) is True for g in grants)

    return Controls(
        clipboard_to_host=permission("clipboard_to_host"),
        clipboard_to_client=permission("clipboard_to_client"),
        file_upload=permission("file_upload"),
        file_download=permission("file_download"),
        printing=permission("printing"),
        recording=requirement("recording"),
        watermark=requirement("watermark"),
        idle_timeout_seconds=_smallest_seconds([g.idle_timeout for g in grants]),
        max_session_seconds=_smallest_seconds([g.max_session_duration for g in grants]),
    )
