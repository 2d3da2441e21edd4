"""Kopf registrations. Thin by design: indexes cache what the watches deliver, event
handlers only enqueue the keys an event affects, and workers reconcile keys. Index and
event handlers are coroutines, so that they run on the event loop, which owns the work
queue: Kopf runs plain functions in a thread pool, and at 10,000 apps the hand-over to a
thread and back, for each of an event's handlers, waited on the interpreter behind the
reconciles' threads.

Kopf's own per-object state (progress annotations, finalizers) is never used: event
and index handlers store nothing on the objects, so a quiet cluster sees no writes,
and deleting anything never waits on this operator.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any

import kopf

from ..api.common import GROUP, VERSION
from ..api.kinds import SESSION_HOST_POOL
from ..kube.client import FIELD_MANAGER, Kube, load_api_client
from ..kube.resources import CHILD_TYPES
from ..metrics import STATE
from ..render.catalog import CATALOG_COMPONENT
from ..render.meta import MANAGED_BY, POOL_LABEL
from . import cache as index_cache
from . import fanout
from .controller import Controller
from .diffbase import NoDiffBase
from .leader import LeaderElector
from .portal_stats import collect as collect_portal_stats
from .registry import OWNER_OF_CHILD, WATCHED
from .runtime import RUNTIME, enqueue
from .workers import resync, resync_all, worker

MANAGED = MappingProxyType(dict(MANAGED_BY))
# (api version, plural) of every kind the operator renders: the REST paths and watches;
# the chart's RBAC is checked against the same table (tests/unit/test_rbac.py).
CHILD_RESOURCES = tuple((t.api_version, t.plural) for t in CHILD_TYPES)


# --- deskfleet's kinds: one index and one event handler each, from the declarations -----

def _object_index(ctl: Controller) -> Any:
    async def index(namespace: str | None, name: str, body: kopf.Body, **_: Any
                    ) -> dict[Any, Any]:
        assert namespace  # every deskfleet kind is namespaced
        return index_cache.object_entries(
            namespace, name, index_cache.slim(body, ctl.meta, ctl.compared_status),
            {index_id: fn(namespace, name, body) for index_id, fn in ctl.indexes})
    return index


def _event_handler(ctl: Controller) -> Any:
    async def on_event(namespace: str | None, name: str, body: kopf.Body, type: str | None,
                       **kwargs: Any) -> None:
        assert namespace
        RUNTIME.cache.bind(kwargs)
        key = (ctl.kind, namespace, name)
        new = None
        if type == "DELETED":  # what passes remembered of it goes too
            RUNTIME.process.gone.discard(body.get("metadata", {}).get("uid") or "")
            if ctl.forget:
                ctl.forget(RUNTIME, namespace, name)
        else:
            new = ctl.facts(body)
        old = RUNTIME.facts.swap(key, new, ctl.versioned_by)
        enqueue(kwargs, *ctl.keys(RUNTIME, key, old, new))
    return on_event


for _ctl in WATCHED:
    assert _ctl.plural
    RUNTIME.cache.watch(_ctl.kind, _ctl.plural, (_id for _id, _ in _ctl.indexes))
    kopf.index(GROUP, VERSION, _ctl.plural, id=index_cache.objects_index(_ctl.plural))(
        _object_index(_ctl))
    kopf.on.event(GROUP, VERSION, _ctl.plural, id=f"{_ctl.kind}_event")(_event_handler(_ctl))


# --- what the operator renders, and its hosts ---------------------------------------------

async def _children_index(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    key = index_cache.child_key(body)
    return {key: index_cache.slim(body)} if key else {}


async def _catalogs_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    labels = body.get("metadata", {}).get("labels") or {}
    if labels.get("app.kubernetes.io/component") != CATALOG_COMPONENT[
            "app.kubernetes.io/component"]:
        return {}
    return {namespace: index_cache.slim(body)}


for _api, _plural in CHILD_RESOURCES:
    kopf.index(_api, _plural, labels=MANAGED, id=f"{index_cache.CHILDREN_PREFIX}{_plural}")(
        _children_index)
kopf.index("v1", "configmaps", labels=MANAGED, id=index_cache.CATALOGS)(_catalogs_index)


@kopf.index("v1", "pods", labels={POOL_LABEL: kopf.PRESENT})
async def pods_index(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    key = index_cache.pod_key(body)
    if not key:
        return {}
    return {key: index_cache.slim(body, ("name", "namespace", "uid", "labels", "annotations",
                                         "creationTimestamp", "deletionTimestamp"))}


async def _child_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
    if type != "DELETED" and fanout.own_echo(body, FIELD_MANAGER):
        return
    if type == "DELETED":
        meta = body.get("metadata", {})
        RUNTIME.process.forget_child(body.get("kind", ""), meta.get("namespace", ""),
                                     meta.get("name", ""))
    key = index_cache.child_key(body)
    if key:
        namespace, owner_kind, owner = key
        ctl = OWNER_OF_CHILD.get(owner_kind)
        if ctl:
            enqueue(kwargs, *ctl.child_keys(RUNTIME, (ctl.kind, namespace, owner)))
    elif CATALOG_COMPONENT.items() <= (body.get("metadata", {}).get("labels") or {}).items():
        enqueue(kwargs, ("catalog", body["metadata"]["namespace"], ""))


for _api, _plural in CHILD_RESOURCES:
    kopf.on.event(_api, _plural, labels=MANAGED, id=f"child_event_{_plural}")(_child_event)


@kopf.on.event("v1", "pods", labels={POOL_LABEL: kopf.PRESENT})
async def pod_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
    if type != "DELETED" and fanout.own_echo(body, FIELD_MANAGER):
        return  # the scaler's own labels; its next pass comes on its timer
    key = index_cache.pod_key(body)
    if key:
        enqueue(kwargs, (SESSION_HOST_POOL.kind, key[0], key[1]))


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Server-side label selectors: only our children and our hosts are streamed,
    # not every ConfigMap and Pod in the cluster.
    for api, plural in CHILD_RESOURCES:
        group = api.rpartition("/")[0]
        key = (group, plural) if group else plural
        settings.watching.label_selectors[key] = "app.kubernetes.io/managed-by=deskfleet"
    settings.watching.label_selectors["pods"] = POOL_LABEL
    settings.posting.level = logging.WARNING
    settings.persistence.diffbase_storage = NoDiffBase()
    # Kopf keeps a worker per object for this long after its last event, holding that
    # event's whole body (managedFields and all): 5 s by default, during a burst
    # thousands of bodies no one reads again. A new event starts a new worker.
    settings.queueing.idle_timeout = 1.0
    RUNTIME.kube = Kube(load_api_client())
    RUNTIME.executor = ThreadPoolExecutor(max_workers=RUNTIME.settings.workers,
                                          thread_name_prefix="reconcile")
    RUNTIME.tasks = [asyncio.create_task(worker()) for _ in range(RUNTIME.settings.workers)]
    RUNTIME.tasks.append(asyncio.create_task(resync()))
    RUNTIME.tasks.append(asyncio.create_task(collect_portal_stats()))
    RUNTIME.process.events.start()
    if RUNTIME.election:
        RUNTIME.leader = LeaderElector(RUNTIME.kube, on_elected=resync_all,
                                       on_deposed=STATE.clear, **RUNTIME.election)
        RUNTIME.tasks.append(asyncio.create_task(RUNTIME.leader.run()))


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    for task in RUNTIME.tasks:
        task.cancel()
    await asyncio.gather(*RUNTIME.tasks, return_exceptions=True)
    RUNTIME.queue.shutdown()
    await asyncio.get_running_loop().run_in_executor(None, RUNTIME.process.events.stop)
    if RUNTIME.executor:
        RUNTIME.executor.shutdown(wait=False, cancel_futures=True)
