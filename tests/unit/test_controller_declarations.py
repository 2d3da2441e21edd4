"""The per-kind controller declarations (controllers/controller.py, registry.py): what
the shell derives from them, and the keys they map events to, on plain-dict indexes."""

from __future__ import annotations

from typing import Any

from deskfleet.api.kinds import KINDS
from deskfleet.controllers.cache import APPS_BY_POOL, ROUTES, Cache, object_entries
from deskfleet.controllers.registry import CONTROLLERS, OWNER_OF_CHILD, WATCHED, controller_for
from deskfleet.controllers.runtime import Runtime


def test_every_watched_controller_is_a_kind_of_the_api_and_each_kind_has_one() -> None:
    assert sorted(c.kind for c in WATCHED) == sorted(k.kind for k in KINDS)
    assert {c.plural for c in WATCHED} == {k.plural for k in KINDS}
    assert len({c.kind for c in CONTROLLERS}) == len(CONTROLLERS)
    # A child's owner label names its owner's kind in lower case.
    assert set(OWNER_OF_CHILD) == {"sessionhostpool", "publishedapp"}


def deployment(ready: int) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "desk-abc"},
            "status": {"readyReplicas": ready}}


def test_a_pools_apps_are_queued_when_its_first_host_turns_ready_or_its_last_goes() -> None:
    rt = Runtime()
    children: list[dict[str, Any]] = [deployment(0)]
    rt.cache = Cache(indexes={APPS_BY_POOL: {("ward", "desk"): ["pacs", "epr"]}},
                     child_indexes=[{("ward", "sessionhostpool", "desk"): children}])
    pool = controller_for("SessionHostPool")
    assert pool is not None
    key = ("SessionHostPool", "ward", "desk")
    apps = [("PublishedApp", "ward", "epr"), ("PublishedApp", "ward", "pacs")]

    def on_child(ready: int) -> list[Any]:
        children[:] = [deployment(ready)]
        return pool.child_keys(rt, key)

    assert on_child(0) == [key]  # first sight: the listing queues every app anyway
    assert on_child(0) == [key]
    assert on_child(1) == [key, *apps]  # the route opens without the pool's status
    assert on_child(2) == [key]
    assert on_child(0) == [key, *apps]
    assert pool.forget is not None
    pool.forget(rt, "ward", "desk")  # deleted: nothing of it is remembered
    assert rt.facts.swap(("SessionHostPool/hosts", "ward", "desk"), None) is None


def test_other_owners_map_a_child_event_to_themselves_only() -> None:
    app = controller_for("PublishedApp")
    assert app is not None
    key = ("PublishedApp", "ward", "epr")
    assert app.child_keys(Runtime(), key) == [key]


def test_a_kinds_further_indexes_share_its_one_kopf_index_without_mixing_keys() -> None:
    cache = Cache()
    cache.watch("PublishedApp", "publishedapps", [APPS_BY_POOL, ROUTES])
    body = {"metadata": {"name": "epr", "namespace": "ward"}}
    entries = object_entries("ward", "epr", body, {
        APPS_BY_POOL: {("ward", "desk"): "epr"},
        ROUTES: {("ward", "desk"): "a route claim"}})  # the same key in two indexes
    cache.indexes = {"objects_publishedapps": {k: [v] for k, v in entries.items()}}
    assert cache.lookup(APPS_BY_POOL, ("ward", "desk")) == ["epr"]
    assert cache.lookup(ROUTES, ("ward", "desk")) == ["a route claim"]
    assert cache.get("PublishedApp", "ward", "epr") is body
    assert cache.in_namespace("PublishedApp", "ward") == [body]
    assert cache.keys_of("PublishedApp") == [("PublishedApp", "ward", "epr")]
    assert cache.namespaces_with("PublishedApp", "epr") == ("ward",)
    assert cache.namespaces() == ["ward"]
