"""The Event recorder: off the reconcile path once started, in order, bounded."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from deskfleet.controllers.events import EventRecorder
from deskfleet.metrics import EVENTS_DROPPED

APP = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "PublishedApp",
       "metadata": {"name": "emr", "namespace": "ward", "uid": "u1"}}


class FakeKube:
    """Stands in for the API server: records POSTs, optionally blocking until released."""

    def __init__(self, block: threading.Event | None = None) -> None:
        self.posted: list[tuple[str, str, dict[str, Any]]] = []
        self.block = block

    def request(self, method: str, path: str, body: dict[str, Any]) -> None:
        if self.block is not None:
            self.block.wait(5)
        self.posted.append((method, path, body))


def test_posts_inline_before_start() -> None:
    kube = FakeKube()
    EventRecorder().record(kube, APP, "Normal", "RouteOpen", "")  # type: ignore[arg-type]
    [(method, path, event)] = kube.posted
    assert (method, path) == ("POST", "/api/v1/namespaces/ward/events")
    assert event["involvedObject"]["uid"] == "u1" and event["reason"] == "RouteOpen"


def test_started_recorder_does_not_wait_for_the_api_server_and_keeps_order() -> None:
    release = threading.Event()
    kube = FakeKube(block=release)
    recorder = EventRecorder()
    recorder.start()
    for i in range(5):
        recorder.record(kube, APP, "Normal", f"R{i}", "")  # type: ignore[arg-type]
    assert kube.posted == []  # the reconcile went on; the API server has not answered
    release.set()
    recorder.stop()
    assert [e["reason"] for _, _, e in kube.posted] == [f"R{i}" for i in range(5)]


def test_a_full_queue_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    kube = FakeKube(block=release)
    recorder = EventRecorder(capacity=2)
    recorder.start()
    before = EVENTS_DROPPED._value.get()
    for i in range(10):
        recorder.record(kube, APP, "Warning", f"R{i}", "x" * 2000)  # type: ignore[arg-type]
    dropped = EVENTS_DROPPED._value.get() - before
    release.set()
    recorder.stop()
    # One taken by the thread (blocked in the API call), two queued, the rest dropped.
    assert 7 <= dropped <= 8 and len(kube.posted) == 10 - dropped
    assert all(len(e["message"]) == 1024 for _, _, e in kube.posted)
    # A flood of drops is one log line per interval (here: the first), with its count.
    warnings = [r.getMessage() for r in caplog.records if "event queue full" in r.message]
    assert len(warnings) == 1 and "dropped 1 event(s)" in warnings[0]


def test_drop_log_reports_the_count_since_the_last_line(
        caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    kube = FakeKube(block=release)
    recorder = EventRecorder(capacity=1, drop_log_interval=0.0)
    recorder.start()
    for i in range(6):
        recorder.record(kube, APP, "Normal", f"R{i}", "")  # type: ignore[arg-type]
    release.set()
    recorder.stop()
    lines = [r.getMessage() for r in caplog.records if "event queue full" in r.message]
    assert lines and all("dropped 1 event(s)" in line for line in lines)
