"""Kopf registrations. Thin by design: indexes cache what the watches deliver, event
handlers only enqueue the keys an event affects, and workers reconcile keys.

Kopf's own per-object state (progress annotations, finalizers) is never used: event
and index handlers store nothing on the objects, so a quiet cluster sees no writes,
and deleting anything never waits on this operator.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from ..kube.client import Kube, load_api_client
from ..logcontext import CURRENT_OBJECT
from ..metrics import STATE, observe_reconcile
from ..render.catalog import CATALOG_COMPONENT
from ..render.meta import MANAGED_BY, POOL_LABEL
from ..settings import Settings
from . import cache as c
from .apps import AppSnapshot, CatalogSnapshot, reconcile_app, reconcile_catalog
from .leader import LeaderElector
from .outcome import Outcome
from .policies import PolicySnapshot, reconcile_policy
from .pools import PoolSnapshot, reconcile_pool
from .queue import WorkQueue

log = logging.getLogger("deskfleet")

GROUP, VERSION = "deskfleet.io", "v1alpha1"
MANAGED = {k: v for k, v in MANAGED_BY.items()}
CHILD_RESOURCES = [
    ("", "v1", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("", "v1", "configmaps"),
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("gateway.networking.k8s.io", "v1", "httproutes"),
]


class Runtime:
    """Everything the workers share; one per operator process."""

    def __init__(self) -> None:
        self.cache = c.Cache()
        self.queue: WorkQueue[tuple[str, str, str]] = WorkQueue()
        self.settings = Settings.from_env()
        self.kube: Kube | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.on_reconciled: Callable[[str, float, bool], None] = observe_reconcile
        # Set by `deskfleet run --leader-election` before Kopf starts.
        self.election: dict[str, Any] | None = None
        self.leader: LeaderElector | None = None


RUNTIME = Runtime()


def enqueue(kwargs: dict[str, Any], *keys: tuple[str, str, str]) -> None:
    RUNTIME.cache.bind(kwargs)
    for key in keys:
        RUNTIME.queue.add(key)


# --- indexes ----------------------------------------------------------------------------

@kopf.index(GROUP, VERSION, "sessionhostpools")
def pools_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): c.slim(body, c._CHILD_META)}


@kopf.index(GROUP, VERSION, "publishedapps")
def apps_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): c.slim(body, c._CHILD_META)}


@kopf.index(GROUP, VERSION, "publishedapps")
def apps_by_pool_index(namespace: str | None, name: str, spec: kopf.Spec, **_: Any
                       ) -> dict[Any, Any]:
    pool = (spec.get("poolRef") or {}).get("name")
    return {(namespace, pool): name} if pool else {}


@kopf.index(GROUP, VERSION, "accesspolicies")
def policies_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {namespace: c.slim(body, c._CHILD_META)}


def _children_index(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    key = c.child_key(body)
    return {key: c.slim(body)} if key else {}


def _catalogs_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    labels = body.get("metadata", {}).get("labels") or {}
    if labels.get("app.kubernetes.io/component") != CATALOG_COMPONENT[
            "app.kubernetes.io/component"]:
        return {}
    return {namespace: c.slim(body)}


for _group, _version, _plural in CHILD_RESOURCES:
    _api = f"{_group}/{_version}" if _group else _version
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

@kopf.on.event(GROUP, VERSION, "sessionhostpools")
def pool_event(namespace: str | None, name: str, **kwargs: Any) -> None:
    assert namespace  # every deskfleet kind is namespaced
    RUNTIME.cache.bind(kwargs)
    apps = RUNTIME.cache.apps_of_pool(namespace, name) if RUNTIME.cache.bound else []
    enqueue(kwargs, ("SessionHostPool", namespace, name), ("catalog", namespace, ""),
            *[("PublishedApp", namespace, a) for a in apps])


@kopf.on.event(GROUP, VERSION, "publishedapps")
def app_event(namespace: str | None, name: str, spec: kopf.Spec, **kwargs: Any) -> None:
    assert namespace
    RUNTIME.cache.bind(kwargs)
    pool = (spec.get("poolRef") or {}).get("name", "")
    enqueue(kwargs, ("PublishedApp", namespace, name), ("catalog", namespace, ""),
            ("SessionHostPool", namespace, pool), *_policy_keys(namespace))


@kopf.on.event(GROUP, VERSION, "accesspolicies")
def policy_event(namespace: str | None, **kwargs: Any) -> None:
    """A policy change can open or close any app's route, change any pool's host config,
    and any other policy's conflicts: re-check the whole namespace (unchanged objects cost
    no request)."""
    assert namespace
    RUNTIME.cache.bind(kwargs)
    cache = RUNTIME.cache
    enqueue(kwargs, ("catalog", namespace, ""), *_policy_keys(namespace),
            *[("PublishedApp", namespace, a["metadata"]["name"]) for a in cache.apps_in(namespace)],
            *[("SessionHostPool", namespace, p["metadata"]["name"])
              for p in cache.pools_in(namespace)])


def _policy_keys(namespace: str) -> list[tuple[str, str, str]]:
    return [("AccessPolicy", namespace, p["metadata"]["name"])
            for p in RUNTIME.cache.policies_in(namespace)]


def _child_event(body: kopf.Body, **kwargs: Any) -> None:
    key = c.child_key(body)
    if key:
        namespace, owner_kind, owner = key
        kind = {"sessionhostpool": "SessionHostPool", "publishedapp": "PublishedApp"}.get(
            owner_kind)
        if kind:
            enqueue(kwargs, (kind, namespace, owner))
    elif CATALOG_COMPONENT.items() <= (body.get("metadata", {}).get("labels") or {}).items():
        enqueue(kwargs, ("catalog", body["metadata"]["namespace"], ""))


for _group, _version, _plural in CHILD_RESOURCES:
    _api = f"{_group}/{_version}" if _group else _version
    kopf.on.event(_api, _plural, labels=MANAGED, id=f"child_event_{_plural}")(_child_event)


@kopf.on.event("v1", "pods", labels={POOL_LABEL: kopf.PRESENT})
def pod_event(body: kopf.Body, **kwargs: Any) -> None:
    key = c.pod_key(body)
    if key:
        enqueue(kwargs, ("SessionHostPool", key[0], key[1]))


# --- workers -----------------------------------------------------------------------------

Job = Callable[[], Outcome]


def job_for(key: tuple[str, str, str]) -> Job | None:
    """Snapshot what `key` needs (on the event loop) and return the blocking work."""
    kind, namespace, name = key
    cache, settings, kube = RUNTIME.cache, RUNTIME.settings, RUNTIME.kube
    assert kube is not None
    if kind == "SessionHostPool":
        body = cache.pool(namespace, name)
        if body is None:
            STATE.forget(kind, namespace, name)
            return None  # deleted: the garbage collector removes its children
        apps = [a for a in (cache.app(namespace, n) for n in cache.apps_of_pool(namespace, name))
                if a is not None]
        pool_snap = PoolSnapshot(body, cache.children(namespace, kind, name),
                                 cache.pods(namespace, name), apps,
                                 cache.policies_in(namespace))
        return lambda: reconcile_pool(kube, settings, pool_snap)
    if kind == "PublishedApp":
        body = cache.app(namespace, name)
        if body is None:
            STATE.forget(kind, namespace, name)
            return None
        pool_name = ((body.get("spec") or {}).get("poolRef") or {}).get("name", "")
        app_snap = AppSnapshot(
            body=body, pool=cache.pool(namespace, pool_name),
            pool_children=cache.children(namespace, "SessionHostPool", pool_name),
            children=cache.children(namespace, kind, name),
            policies=cache.policies_in(namespace))
        return lambda: reconcile_app(kube, settings, app_snap)
    if kind == "catalog":
        pools = {p["metadata"]["name"]: (p, cache.children(namespace, "SessionHostPool",
                                                             p["metadata"]["name"]))
                 for p in cache.pools_in(namespace)}
        cat_snap = CatalogSnapshot(namespace, cache.apps_in(namespace), pools,
                                   cache.catalog(namespace), cache.policies_in(namespace))
        return lambda: reconcile_catalog(kube, settings, cat_snap)
    if kind == "AccessPolicy":
        body = next((p for p in cache.policies_in(namespace)
                     if p["metadata"]["name"] == name), None)
        if body is None:
            STATE.forget(kind, namespace, name)
            return None
        pol_snap = PolicySnapshot(body, cache.apps_in(namespace), cache.policies_in(namespace))
        return lambda: reconcile_policy(kube, settings, pol_snap)
    return None


def _object(key: tuple[str, str, str]) -> dict[str, str]:
    """Log fields naming the object, so every line can be filtered by namespace/name."""
    return {"kind": key[0], "namespace": key[1], "name": key[2]}


async def worker() -> None:
    loop = asyncio.get_running_loop()
    queue = RUNTIME.queue
    while True:
        key = await queue.get()
        if RUNTIME.leader and not RUNTIME.leader.leading.is_set():
            # A standby keeps its caches warm but never writes; the keys are re-queued
            # in full when it is elected.
            queue.done(key)
            continue
        started = loop.time()
        failed = False
        CURRENT_OBJECT.set(_object(key))
        try:
            job = job_for(key)
            if job is not None:
                # The thread runs in a copy of this context, so its log lines name the object.
                context = contextvars.copy_context()
                outcome = await loop.run_in_executor(RUNTIME.executor, context.run, job)
                if outcome.errors:
                    failed = True
                    log.warning("reconcile incomplete, will retry",
                                extra={"errors": outcome.errors})
                elif outcome.requeue_after:
                    queue.add_after(key, outcome.requeue_after)
        except Exception:
            failed = True
            log.exception("reconcile failed")
        finally:
            CURRENT_OBJECT.set(None)
            delay = queue.done(key, failed=failed)
            if delay:
                log.info("retrying in %.1fs", delay)
            RUNTIME.on_reconciled(key[0], loop.time() - started, failed)


async def resync() -> None:
    """The level-based safety net: every object is re-checked now and then even if no
    event arrived. Unchanged objects cost no request."""
    while True:
        await asyncio.sleep(RUNTIME.settings.resync_seconds)
        _resync_all()


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Server-side label selectors: only our children and our hosts are streamed,
    # not every ConfigMap and Pod in the cluster.
    for group, _version, plural in CHILD_RESOURCES:
        key = (group, plural) if group else plural
        settings.watching.label_selectors[key] = "app.kubernetes.io/managed-by=deskfleet"
    settings.watching.label_selectors["pods"] = POOL_LABEL
    settings.persistence.finalizer = "deskfleet.io/unused"  # no handler needs one
    settings.posting.level = logging.WARNING
    RUNTIME.kube = Kube(load_api_client())
    RUNTIME.executor = ThreadPoolExecutor(max_workers=RUNTIME.settings.workers,
                                          thread_name_prefix="reconcile")
    RUNTIME.tasks = [asyncio.create_task(worker()) for _ in range(RUNTIME.settings.workers)]
    RUNTIME.tasks.append(asyncio.create_task(resync()))
    if RUNTIME.election:
        RUNTIME.leader = LeaderElector(RUNTIME.kube, on_elected=_resync_all,
                                       on_deposed=STATE.clear, **RUNTIME.election)
        RUNTIME.tasks.append(asyncio.create_task(RUNTIME.leader.run()))


def _resync_all() -> None:
    if RUNTIME.cache.bound:
        for key in RUNTIME.cache.all_keys():
            RUNTIME.queue.add(key)


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    for task in RUNTIME.tasks:
        task.cancel()
    await asyncio.gather(*RUNTIME.tasks, return_exceptions=True)
    RUNTIME.queue.shutdown()
    if RUNTIME.executor:
        RUNTIME.executor.shutdown(wait=False, cancel_futures=True)
