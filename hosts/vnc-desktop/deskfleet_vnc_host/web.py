"""What the session port serves where, and the operator's host config. Standard library
only; pure but for reading the config file."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")
"""A name in a desktop's transfer area: no path, no leading dot."""


def relative(prefix: str, path: str) -> str | None:
    """The part of a request path under the prefix ('' for the prefix itself), or None."""
    path = urlsplit(path).path
    if prefix == "/":
        return path
    if path == prefix or path.startswith(prefix + "/"):
        return path[len(prefix):]
    return None


def novnc_location(prefix: str) -> str:
    """noVNC's page with this host's settings (noVNC 1.3 reads them from the query)."""
    base = "" if prefix == "/" else prefix
    websocket = f"{base}/websockify".lstrip("/")
    return (f"{base}/vnc.html?autoconnect=true&resize=remote&reconnect=false"
            f"&path={websocket}")


def read_host_config(path: Path) -> Any:
    """The operator's host config: `host.json`, or `host.json.gz` when it is large."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        packed = path.with_name(path.name + ".gz")
        return json.loads(gzip.decompress(packed.read_bytes())) if packed.exists() else None
