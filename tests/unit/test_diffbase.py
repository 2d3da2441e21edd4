"""Kopf's change detection is off (controllers/diffbase.py): safe only while the operator
registers no handler that reads it."""

from __future__ import annotations

import inspect

import kopf

import deskfleet.controllers.handlers  # noqa: F401 - registers the handlers
from deskfleet.controllers.diffbase import NoDiffBase


def test_no_handler_reads_kopfs_diff_base() -> None:
    registry = kopf.get_default_registry()
    assert not registry._changing.get_all_handlers()  # on.create/update/delete/field
    assert not registry._spawning.get_all_handlers()  # daemons and timers
    assert registry._indexing.get_all_handlers() and registry._watching.get_all_handlers()


def test_every_index_and_event_handler_runs_on_the_event_loop() -> None:
    # Kopf runs plain functions in its thread pool: a hand-over per handler per event.
    registry = kopf.get_default_registry()
    handlers = [*registry._indexing.get_all_handlers(), *registry._watching.get_all_handlers()]
    assert [h.id for h in handlers if not inspect.iscoroutinefunction(h.fn)] == []


def test_nothing_is_kept_or_diffed() -> None:
    storage = NoDiffBase()
    body = kopf.Body({"metadata": {"name": "x", "annotations": {"a": "b"}}, "spec": {"k": 1}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch
