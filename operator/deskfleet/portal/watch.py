"""List-then-watch loops (a client-go "reflector") feeding the Directory.

One thread per kind and namespace scope. Each loop lists, then watches from the list's
resourceVersion with bookmarks; the API server ends every watch after WATCH_SECONDS, so
a healthy stream proves itself at least that often even on a quiet cluster. That
heartbeat is what the portal's freshness bound is measured against: a stream that is
stuck or refused stops proving itself, and after `max_data_age_seconds` every request is
refused (fail closed) and /readyz says why.

The portal only reads: list and watch on the three deskfleet kinds, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from ..api.kinds import RESOURCES
from ..kube.client import Kube, KubeError
from ..kube.resources import ResourceType
from .directory import Directory

log = logging.getLogger("deskfleet.portal.watch")

WATCH_SECONDS = 30
READ_TIMEOUT = WATCH_SECONDS + 15  # no byte for this long: the connection is dead
BACKOFF_MAX = 10.0


class Reflector:
    """Keeps one kind of one scope in the Directory, from a thread."""

    def __init__(self, kube: Kube, rtype: ResourceType, namespace: str | None,
                 deliver: Callable[[Callable[[], None]], None],
                 directory: Directory, stop: threading.Event) -> None:
        self.kube, self.rtype, self.namespace = kube, rtype, namespace
        self.deliver = deliver  # runs a callable on the event loop
        self.directory = directory
        self.stop = stop
        self.path = rtype.collection_path(namespace)
        self.errors = 0

    def run(self) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                version = self._list()
                while not self.stop.is_set():
                    version = self._watch(version)
                backoff = 0.5
            except Gone:
                continue  # re-list at once: the watch fell behind the API server's window
            except (KubeError, OSError, ValueError) as err:
                self.errors += 1
                log.warning("watch of %s failed (%s); retrying in %.1fs", self.path, err,
                            backoff)
                self.stop.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(BACKOFF_MAX, backoff * 2)

    def _list(self) -> str:
        listing = self.kube.request("GET", self.path)
        items = listing.get("items") or []
        kind = self.rtype.kind
        now = time.monotonic()
        ns = self.namespace
        self.deliver(partial(self.directory.replace, kind, ns, items, now))
        return str(listing["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        query = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(WATCH_SECONDS)}
        kind, ns = self.rtype.kind, self.namespace
        for event in self.kube.stream(self.path, query, READ_TIMEOUT):
            kind_of_event, obj = event.get("type"), event.get("object") or {}
            if kind_of_event == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise KubeError(int(obj.get("code") or 0), str(obj.get("reason", "")),
                                str(obj.get("message", "")))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            now = time.monotonic()
            if kind_of_event == "BOOKMARK":
                self.deliver(partial(self.directory.alive, kind, ns, now))
            elif kind_of_event == "DELETED":
                self.deliver(partial(self.directory.delete, kind, ns, obj, now))
            else:
                self.deliver(partial(self.directory.upsert, kind, ns, obj, now))
            if self.stop.is_set():
                break
        # The server closed the watch as asked: it is alive and we are up to date.
        now = time.monotonic()
        self.deliver(partial(self.directory.alive, kind, ns, now))
        return version


class Gone(Exception):
    """410: the resourceVersion is too old to watch from; list again."""


def start_reflectors(kube: Kube, directory: Directory, namespaces: list[str],
                     loop: asyncio.AbstractEventLoop) -> tuple[threading.Event, list[Any]]:
    """Start a reflector thread per kind and scope; set the event to stop them."""
    stop = threading.Event()

    def deliver(fn: Callable[[], None]) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(fn)

    scopes: list[str | None] = list(namespaces) or [None]
    reflectors = [Reflector(kube, rtype, ns, deliver, directory, stop)
                  for rtype in RESOURCES for ns in scopes]
    for r in reflectors:
        threading.Thread(target=r.run, name=f"watch-{r.rtype.plural}", daemon=True).start()
    return stop, reflectors
