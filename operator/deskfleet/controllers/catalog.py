"""Reconcile a namespace's catalog: the ConfigMap the portal's landing page reads."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.kinds import PUBLISHED_APP, SESSION_HOST_POOL
from ..api.parse import InvalidSpec, parse
from ..conditions import is_true
from ..kube.client import Kube, KubeError
from ..kube.compare import needs_apply
from ..kube.resources import CONFIGMAP
from ..policy.enforcement import access_for, valid_policies
from ..render.app import catalog_entry
from ..render.catalog import build_catalog
from ..render.configdata import DocumentTooLarge
from ..settings import Settings
from .apps import pool_facts
from .controller import Body, Controller, Job, policies_of, present
from .pass_result import PassResult

if TYPE_CHECKING:
    from .runtime import Runtime

KIND = "catalog"  # a summary, not a kind of its own: queued by the apps' and pools' events


@dataclass(frozen=True)
class CatalogSnapshot:
    namespace: str
    apps: list[dict[str, Any]]
    pools: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]
    live: dict[str, Any] | None
    policies: list[dict[str, Any]]
    policies_version: Hashable | None = None  # see fanout.FactsMemory.version


def reconcile_catalog(kube: Kube, settings: Settings, snap: CatalogSnapshot) -> PassResult:
    entries = []
    policies = valid_policies(snap.policies, snap.policies_version)
    for body in snap.apps:
        try:
            app = parse(body)
        except InvalidSpec:
            continue  # reported on the app itself
        pool_body, pool_children = snap.pools.get(app.spec.pool_ref.name, (None, []))
        facts = pool_facts(app.spec.pool_ref.name, pool_body, pool_children)
        ready = is_true((body.get("status") or {}).get("conditions"))
        access = access_for(policies, app.name, app.labels)
        entries.append(catalog_entry(app, facts, ready=ready, access=access))
    try:
        desired = build_catalog(snap.namespace, settings.catalog_name, entries)
    except DocumentTooLarge as err:
        return PassResult([str(err)])  # the catalog in place stays; retried with backoff
    configmap = CONFIGMAP
    try:
        if desired is None and snap.live is not None:
            kube.delete(configmap, snap.namespace, settings.catalog_name,
                        snap.live["metadata"].get("uid"))
        elif desired is not None and needs_apply(desired, snap.live):
            kube.apply(desired)
    except KubeError as err:
        return PassResult([f"catalog: {err}"])
    return PassResult()


def _snapshot(rt: Runtime, namespace: str, name: str, body: Body | None) -> Job:
    assert rt.kube is not None
    cache, pool_kind = rt.cache, SESSION_HOST_POOL.kind
    pools = {p["metadata"]["name"]: (p, cache.children(namespace, pool_kind,
                                                        p["metadata"]["name"]))
             for p in cache.in_namespace(pool_kind, namespace)}
    policies, version = policies_of(rt, namespace)
    snap = CatalogSnapshot(namespace, present(rt, cache.in_namespace(PUBLISHED_APP.kind,
                                                                     namespace)),
                           pools, cache.catalog(namespace), policies, version)
    kube, settings = rt.kube, rt.settings
    return lambda: reconcile_catalog(kube, settings, snap)


CONTROLLER = Controller(kind=KIND, snapshot=_snapshot)
