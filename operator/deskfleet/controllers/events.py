"""Kubernetes Events for what a person should notice. Posted on transitions only, so a
quiet cluster gets no Event writes.

As client-go's recorder does, a reconcile hands its Event over and goes on: one thread
posts them in order, so a burst of first transitions (a thousand apps turning Ready)
does not hold every reconcile up by an extra request. The hand-over is bounded; if the
API server cannot keep up, Events are dropped and counted, never waited for."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from ..conditions import now_rfc3339
from ..kube.client import Kube, KubeError
from ..metrics import EVENTS_DROPPED

log = logging.getLogger(__name__)


def build_event(body: dict[str, Any], type_: str, reason: str, message: str
                ) -> dict[str, Any]:
    meta = body["metadata"]
    now = now_rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": body["apiVersion"], "kind": body["kind"],
                           "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta.get("uid", "")},
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "deskfleet"},
        "reportingComponent": "deskfleet",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def _post(kube: Kube, event: dict[str, Any]) -> None:
    namespace = event["metadata"]["namespace"]
    try:
        kube.request("POST", f"/api/v1/namespaces/{namespace}/events", body=event)
    except KubeError as err:  # an Event is best effort; never fail a reconcile on it
        log.warning("could not post event %s: %s", event["reason"], err)


class EventRecorder:
    """Posts Events from its own thread once started; inline before that (one-shot
    commands and tests that call a reconcile directly).

    The capacity covers the first pass over a large estate (ten thousand apps turning
    Ready at once) without dropping; drops beyond it are logged at most once per
    `drop_log_interval` seconds with their count, so an overload does not also flood
    the log."""

    def __init__(self, capacity: int = 10_000, drop_log_interval: float = 10.0) -> None:
        self._pending: queue.Queue[tuple[Kube, dict[str, Any]] | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self._drop_log_interval = drop_log_interval
        self._drops_unlogged = 0
        self._last_drop_log = float("-inf")

    def record(self, kube: Kube, body: dict[str, Any], type_: str, reason: str,
               message: str) -> None:
        event = build_event(body, type_, reason, message)
        if self._thread is None:
            _post(kube, event)
            return
        try:
            self._pending.put_nowait((kube, event))
        except queue.Full:
            EVENTS_DROPPED.inc()
            self._log_drop(reason, body["metadata"]["name"])

    def __len__(self) -> int:
        """Events waiting to be posted."""
        return self._pending.qsize()

    def _log_drop(self, reason: str, name: str) -> None:
        self._drops_unlogged += 1
        now = time.monotonic()
        if now - self._last_drop_log < self._drop_log_interval:
            return
        log.warning("event queue full (%d pending); dropped %d event(s), the latest %s "
                    "for %s", self._pending.qsize(), self._drops_unlogged, reason, name)
        self._drops_unlogged = 0
        self._last_drop_log = now

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="events", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Post what is pending (for up to `timeout` seconds), then stop."""
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                self._pending.put(None, timeout=timeout)
            except queue.Full:
                return  # the API server is not answering; what is left is dropped
            thread.join(timeout)

    def _run(self) -> None:
        while (item := self._pending.get()) is not None:
            _post(*item)


def post_event(kube: Kube, body: dict[str, Any], type_: str, reason: str, message: str,
               recorder: EventRecorder | None = None) -> None:
    """Through `recorder` (the process's, ProcessState.events), or posted at once."""
    if recorder is None:
        _post(kube, build_event(body, type_, reason, message))
    else:
        recorder.record(kube, body, type_, reason, message)
