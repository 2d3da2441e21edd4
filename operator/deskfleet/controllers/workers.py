"""The workers: take a key, snapshot what it needs from the cache, reconcile it in a
thread, and requeue it (with backoff on failure, or when the clock matters)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from types import MappingProxyType

from ..kube.client import KubeError
from ..logcontext import CURRENT_OBJECT
from ..metrics import STATE
from . import fanout
from .controller import Job
from .registry import WATCHED, controller_for
from .runtime import RUNTIME

log = logging.getLogger("deskfleet")

# A debounced fan-out key (fanout.py) -> the kind it re-queues (None: every kind).
FANOUTS = MappingProxyType({fanout.NAMESPACE: None, fanout.POLICIES: fanout.POLICY})


def job_for(key: tuple[str, str, str]) -> Job | None:
    """Snapshot what `key` needs (on the event loop) and return the blocking work."""
    kind, namespace, name = key
    cache = RUNTIME.cache
    if not cache.bound:
        # Queued before Kopf's first event (the portal's collector starts at once): the
        # indexes are not there yet, and their first listing queues every object anyway.
        return None
    if kind in FANOUTS:
        for each in all_keys(namespace, FANOUTS[kind]):
            RUNTIME.queue.add(each, low=True)
        return None
    ctl = controller_for(kind)
    if ctl is None:
        return None
    body = None
    if ctl.plural:
        body = cache.get(kind, namespace, name)
        if body is not None and body["metadata"].get("uid") in RUNTIME.process.gone:
            body = None  # the API server said it is gone (ProcessState.gone)
        if body is None:
            STATE.forget(kind, namespace, name)
            if ctl.forget:
                ctl.forget(RUNTIME, namespace, name)
            return None  # deleted: the garbage collector removes its children
    return ctl.snapshot(RUNTIME, namespace, name, body)


def all_keys(namespace: str | None = None, kind: str | None = None
             ) -> list[tuple[str, str, str]]:
    """Every object a resync should look at (of one kind, in one namespace, if given),
    and the catalog of every namespace holding any."""
    out = [k for ctl in WATCHED if kind in (None, ctl.kind)
           for k in RUNTIME.cache.keys_of(ctl.kind, namespace)]
    if kind is None:
        out += [(fanout.CATALOG, ns, "") for ns in RUNTIME.cache.namespaces()
                if namespace in (None, ns)]
    return out


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
            took = loop.time() - started
            RUNTIME.process.pacing.record(key, took)
            RUNTIME.on_reconciled(key[0], took, failed)


async def resync() -> None:
    """The level-based safety net: every object is re-checked now and then even if no
    event arrived. Unchanged objects cost no request."""
    while True:
        await asyncio.sleep(RUNTIME.settings.resync_seconds)
        resync_all()


def resync_all() -> None:
    if RUNTIME.cache.bound:
        for key in all_keys():
            RUNTIME.queue.add(key, low=True)
