"""Kopf registrations. Thin by design: indexes cache what the watches deliver, event
handlers only enqueue the keys an event affects, and workers reconcile keys. The event
handlers are coroutines so that they run on the event loop, which owns the work queue
(Kopf runs plain functions in a thread pool).

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

from ..kube.client import FIELD_MANAGER, Kube, load_api_client
from ..kube.resources import CHILD_TYPES
from ..metrics import STATE
from ..render.catalog import CATALOG_COMPONENT
from ..render.meta import MANAGED_BY, POOL_LABEL
from ..render.route_claims import Claim
from . import cache as c
from . import fanout
from .leader import LeaderElector
from .portal_stats import collect as collect_portal_stats
from .runtime import RUNTIME, enqueue
from .workers import resync, resync_all, worker

GROUP, VERSION = "deskfleet.io", "v1alpha1"
MANAGED = MappingProxyType(dict(MANAGED_BY))
# (api version, plural) of every kind the operator renders: the REST paths and watches;
# the chart's RBAC is checked against the same table (tests/unit/test_rbac.py).
CHILD_RESOURCES = tuple((t.api_version, t.plural) for t in CHILD_TYPES)


# --- indexes ----------------------------------------------------------------------------

@kopf.index(GROUP, VERSION, "sessionhostpools")
def pools_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): c.slim(body)}


@kopf.index(GROUP, VERSION, "publishedapps")
def apps_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    # creationTimestamp: of apps claiming one host and path, the oldest keeps the route.
    return {(namespace, name): c.slim(body, (*c.CHILD_META, "creationTimestamp"))}


@kopf.index(GROUP, VERSION, "publishedapps")
def apps_by_pool_index(namespace: str | None, name: str, spec: kopf.Spec, **_: Any
                       ) -> dict[Any, Any]:
    pool = (spec.get("poolRef") or {}).get("name")
    return {(namespace, pool): name} if pool else {}


@kopf.index(GROUP, VERSION, "publishedapps")
def app_routes_index(namespace: str | None, name: str, spec: kopf.Spec, meta: kopf.Meta,
                     **_: Any) -> dict[Any, Any]:
    route = fanout.app_route(spec)
    if not route or not namespace:
        return {}
    return {route: Claim(meta.get("creationTimestamp") or "", namespace, name)}


@kopf.index(GROUP, VERSION, "accesspolicies")
def policies_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {namespace: c.slim(body)}


def _children_index(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    key = c.child_key(body)
    return {key: c.slim(body)} if key else {}


def _catalogs_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    labels = body.get("metadata", {}).get("labels") or {}
    if labels.get("app.kubernetes.io/component") != CATALOG_COMPONENT[
            "app.kubernetes.io/component"]:
        return {}
    return {namespace: c.slim(body)}


for _api, _plural in CHILD_RESOURCES:
    kopf.index(_api, _plural, labels=MANAGED, id=f"{c.CHILDREN_PREFIX}{_plural}")(
        _children_index)
kopf.index("v1", "configmaps", labels=MANAGED, id=c.CATALOGS)(_catalogs_index)


@kopf.index("v1", "pods", labels={POOL_LABEL: kopf.PRESENT})
def pods_index(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    key = c.pod_key(body)
    if not key:
        return {}
    return {key: c.slim(body, ("name", "namespace", "uid", "labels", "annotations",
                               "creationTimestamp", "deletionTimestamp"))}


# Kopf names each index after its handler id; the cache merges the children_* ones.


# --- events -> keys ----------------------------------------------------------------------

def _swap(kind: str, namespace: str, name: str, body: kopf.Body, event_type: str | None
          ) -> tuple[fanout.Facts | None, fanout.Facts | None]:
    if event_type == "DELETED":  # what passes remembered of it goes too
        RUNTIME.process.forget_object(kind, namespace, name,
                                      body.get("metadata", {}).get("uid") or "")
    new = None if event_type == "DELETED" else fanout.facts(kind, body)
    return RUNTIME.facts.swap((kind, namespace, name), new), new


@kopf.on.event(GROUP, VERSION, "sessionhostpools")
async def pool_event(namespace: str | None, name: str, body: kopf.Body, type: str | None,
               **kwargs: Any) -> None:
    assert namespace  # every deskfleet kind is namespaced
    RUNTIME.cache.bind(kwargs)
    old, new = _swap("SessionHostPool", namespace, name, body, type)
    apps = RUNTIME.cache.apps_of_pool(namespace, name) if RUNTIME.cache.bound else []
    enqueue(kwargs, *fanout.pool_keys(namespace, name, old, new, apps))


@kopf.on.event(GROUP, VERSION, "publishedapps")
async def app_event(namespace: str | None, name: str, body: kopf.Body, type: str | None,
              **kwargs: Any) -> None:
    assert namespace
    RUNTIME.cache.bind(kwargs)
    old, new = _swap("PublishedApp", namespace, name, body, type)
    # Apps that claim (or claimed) the same host and path: who holds it may change.
    routes = {f["route"] for f in (old, new) if f and f.get("route")}
    rivals = [(claim.namespace, claim.name) for route in sorted(routes)
              for claim in RUNTIME.cache.claims(route)] if RUNTIME.cache.bound else []
    enqueue(kwargs, *fanout.app_keys(namespace, name, old, new, rivals))


@kopf.on.event(GROUP, VERSION, "accesspolicies")
async def policy_event(namespace: str | None, name: str, body: kopf.Body, type: str | None,
                 **kwargs: Any) -> None:
    assert namespace
    old, new = _swap("AccessPolicy", namespace, name, body, type)
    enqueue(kwargs, *fanout.policy_keys(namespace, name, old, new))


async def _child_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
    if type != "DELETED" and fanout.own_echo(body, FIELD_MANAGER):
        return
    if type == "DELETED":
        meta = body.get("metadata", {})
        RUNTIME.process.forget_child(body.get("kind", ""), meta.get("namespace", ""),
                                     meta.get("name", ""))
    key = c.child_key(body)
    if key:
        namespace, owner_kind, owner = key
        kind = {"sessionhostpool": "SessionHostPool", "publishedapp": "PublishedApp"}.get(
            owner_kind)
        if kind:
            enqueue(kwargs, (kind, namespace, owner))
    elif CATALOG_COMPONENT.items() <= (body.get("metadata", {}).get("labels") or {}).items():
        enqueue(kwargs, ("catalog", body["metadata"]["namespace"], ""))


for _api, _plural in CHILD_RESOURCES:
    kopf.on.event(_api, _plural, labels=MANAGED, id=f"child_event_{_plural}")(_child_event)


@kopf.on.event("v1", "pods", labels={POOL_LABEL: kopf.PRESENT})
async def pod_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
    if type != "DELETED" and fanout.own_echo(body, FIELD_MANAGER):
        return  # the scaler's own labels; its next pass comes on its timer
    key = c.pod_key(body)
    if key:
        enqueue(kwargs, ("SessionHostPool", key[0], key[1]))


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
