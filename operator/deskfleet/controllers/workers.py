"""The workers: take a key, snapshot what it needs from the cache, reconcile it in a
thread, and requeue it (with backoff on failure, or when the clock matters)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from typing import Any

from ..kube.client import KubeError
from ..logcontext import CURRENT_OBJECT
from ..metrics import STATE
from . import fanout
from .apps import AppSnapshot, CatalogSnapshot, live_route_pool, reconcile_app, reconcile_catalog
from .outcome import Outcome
from .policies import PolicySnapshot, known_app_groups, reconcile_policy
from .pool_demand import pool_demand
from .pools import PoolSnapshot, reconcile_pool
from .runtime import RUNTIME

log = logging.getLogger("deskfleet")

Job = Callable[[], Outcome]


def _live(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The cached body, unless the API server has said the object is gone
    (ProcessState.gone)."""
    if body is not None and body["metadata"].get("uid") in RUNTIME.process.gone:
        return None
    return body


def _present(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    gone = RUNTIME.process.gone
    return [b for b in bodies if b["metadata"].get("uid") not in gone]


def _policies_version(namespace: str) -> tuple[str, str, int]:
    return ("policies", namespace, RUNTIME.facts.version("AccessPolicy", namespace))


def job_for(key: tuple[str, str, str]) -> Job | None:
    """Snapshot what `key` needs (on the event loop) and return the blocking work."""
    kind, namespace, name = key
    cache, settings, kube = RUNTIME.cache, RUNTIME.settings, RUNTIME.kube
    process = RUNTIME.process
    assert kube is not None
    if not cache.bound:
        # Queued before Kopf's first event (the portal's collector starts at once): the
        # indexes are not there yet, and their first listing queues every object anyway.
        return None
    if kind in (fanout.NAMESPACE, fanout.POLICIES):  # a debounced fan-out (fanout.py)
        for each in cache.all_keys(namespace):
            if kind == fanout.NAMESPACE or each[0] == "AccessPolicy":
                RUNTIME.queue.add(each, low=True)
        return None
    if kind == "SessionHostPool":
        body = _live(cache.pool(namespace, name))
        if body is None:
            STATE.forget(kind, namespace, name)
            process.forget_pool(namespace, name)
            return None  # deleted: the garbage collector removes its children
        apps = [a for a in (cache.app(namespace, n) for n in cache.apps_of_pool(namespace, name))
                if a is not None]
        demand, signal = pool_demand(namespace, name)
        pool_snap = PoolSnapshot(body, cache.children(namespace, kind, name),
                                 cache.pods(namespace, name), apps,
                                 cache.policies_in(namespace), _policies_version(namespace),
                                 demand=demand, demand_signal=signal)
        return lambda: reconcile_pool(kube, settings, pool_snap, process)
    if kind == "PublishedApp":
        body = _live(cache.app(namespace, name))
        if body is None:
            STATE.forget(kind, namespace, name)
            return None
        pool_name = ((body.get("spec") or {}).get("poolRef") or {}).get("name", "")
        pool = cache.pool(namespace, pool_name)
        children = cache.children(namespace, kind, name)
        live_pool = live_route_pool(children)
        route = fanout.app_route(body.get("spec") or {})
        app_snap = AppSnapshot(
            body=body, pool=pool,
            pool_children=cache.children(namespace, "SessionHostPool", pool_name),
            children=children,
            policies=cache.policies_in(namespace),
            policies_version=_policies_version(namespace),
            pool_elsewhere=() if pool else cache.pool_namespaces(pool_name),
            claims=cache.claims(route) if route else (),
            live_pool_exists=bool(live_pool) and cache.pool(namespace, live_pool) is not None)
        return lambda: reconcile_app(kube, settings, app_snap, process)
    if kind == "catalog":
        pools = {p["metadata"]["name"]: (p, cache.children(namespace, "SessionHostPool",
                                                             p["metadata"]["name"]))
                 for p in cache.pools_in(namespace)}
        cat_snap = CatalogSnapshot(namespace, _present(cache.apps_in(namespace)), pools,
                                   cache.catalog(namespace), cache.policies_in(namespace),
                                   _policies_version(namespace))
        return lambda: reconcile_catalog(kube, settings, cat_snap)
    if kind == "AccessPolicy":
        body = _live(next((p for p in cache.policies_in(namespace)
                                 if p["metadata"]["name"] == name), None))
        if body is None:
            STATE.forget(kind, namespace, name)
            return None
        apps_version = (namespace, RUNTIME.facts.version("PublishedApp", namespace),
                        process.gone.version)
        groups = known_app_groups(process, namespace, apps_version)
        pol_snap = PolicySnapshot(
            body, [] if groups is not None else _present(cache.apps_in(namespace)),
            cache.policies_in(namespace), apps_version=apps_version, groups=groups,
            policies_version=_policies_version(namespace),
            dry_run=RUNTIME.portal_stats.dry_run(namespace, name))
        return lambda: reconcile_policy(kube, settings, pol_snap, process)
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
                if outcome.owner_gone:
                    # Deleted behind the watch's back: forget it, and let the summaries
                    # that listed it drop it.
                    log.info("gone although no watch event said so; forgotten")
                    STATE.forget(*key)
                    queue.add((fanout.NAMESPACE, key[1], ""), low=True)
        except KubeError as err:  # the API refused or did not answer: retried, not a bug
            failed = True
            log.warning("reconcile incomplete, will retry", extra={"errors": [str(err)]})
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
        resync_all()


def resync_all() -> None:
    if RUNTIME.cache.bound:
        for key in RUNTIME.cache.all_keys():
            RUNTIME.queue.add(key, low=True)
