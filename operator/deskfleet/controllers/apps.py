"""Reconcile a PublishedApp (its route) and a namespace's catalog."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ..api.parse import InvalidSpec, parse
from ..conditions import is_true
from ..kube.client import Kube, KubeError
from ..kube.compare import needs_apply
from ..kube.resources import BY_KIND
from ..metrics import STATE, AppFacts
from ..policy.enforcement import access_for, allowed_by, valid_policies
from ..render.app import App, PoolFacts, app_url, build_app_children, catalog_entry
from ..render.app_plan import RouteFacts, app_conditions, plan_route
from ..render.catalog import build_catalog
from ..render.configdata import DocumentTooLarge
from ..render.gateway_auth import enforcement_gap
from ..render.meta import POOL_LABEL
from ..render.route_claims import Claim, conflict_for
from ..settings import Settings
from .children import SyncResult, sync_children
from .outcome import Outcome
from .pools import pool_is_ready
from .process import ProcessState
from .status import write_invalid, write_status
from .tls_secrets import RECHECK_SECONDS, SecretChecker

ROUTE_KINDS = ("Ingress", "HTTPRoute")


@dataclass(frozen=True)
class AppSnapshot:
    body: dict[str, Any]
    pool: dict[str, Any] | None
    pool_children: list[dict[str, Any]]
    children: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    policies_version: Hashable | None = None  # see fanout.Memory.version
    pool_elsewhere: tuple[str, ...] = ()  # namespaces holding a pool named like poolRef
    claims: tuple[Claim, ...] = ()  # every app claiming this app's host and path
    live_pool_exists: bool = False  # whether the pool the live route leads to exists


def _session_port(children: list[dict[str, Any]]) -> int:
    for child in children:
        if child.get("kind") == "Service":
            for port in (child.get("spec") or {}).get("ports") or []:
                if port.get("name") == "session" and isinstance(port.get("port"), int):
                    return int(port["port"])
    return 0


def pool_facts(name: str, pool_body: dict[str, Any] | None,
               pool_children: list[dict[str, Any]], elsewhere: tuple[str, ...] = ()
               ) -> PoolFacts:
    if pool_body is None:
        return PoolFacts(name=name, exists=False, elsewhere=elsewhere)
    ready = pool_is_ready(pool_children)
    try:
        pool = parse(pool_body)
    except InvalidSpec:
        # A pool whose spec became invalid (a time zone that does not exist, 30
        # February) touches none of its children: its Service keeps the port it had,
        # and that is where a route must lead. (Its protocol is for the catalog only.)
        protocol = (pool_body.get("spec") or {}).get("protocol")
        return PoolFacts(name=name, exists=True, ready=ready,
                         port=_session_port(pool_children),
                         protocol=protocol if isinstance(protocol, str) else "")
    return PoolFacts(name=name, exists=True, ready=ready,
                     port=pool.spec.session_port, protocol=pool.spec.protocol)


def live_route(children: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((c for c in children if c.get("kind") in ROUTE_KINDS), None)


def live_route_pool(children: list[dict[str, Any]]) -> str:
    """The pool the app's live route leads to ("" when it has none)."""
    labels = ((live_route(children) or {}).get("metadata") or {}).get("labels") or {}
    return str(labels.get(POOL_LABEL, ""))


def claim_of(body: dict[str, Any]) -> Claim:
    meta = body["metadata"]
    return Claim(meta.get("creationTimestamp") or "", meta.get("namespace") or "",
                 meta["name"])


def _tls_secret_exists(kube: Kube, settings: Settings, checker: SecretChecker, app: App
                       ) -> bool | None:
    """Asked only where a route uses the Secret: an Ingress's `tls`. An HTTPRoute's TLS
    is its Gateway listener's, whose controller reports a missing certificate."""
    gw = app.spec.gateway
    if not settings.check_tls_secrets or not gw.tls_secret_name or gw.parent_ref:
        return None
    return checker.exists(kube, app.namespace, gw.tls_secret_name)


def reconcile_app(kube: Kube, settings: Settings, snap: AppSnapshot,
                  process: ProcessState | None = None) -> Outcome:
    process = ProcessState() if process is None else process
    body = snap.body
    try:
        app = parse(body)
    except InvalidSpec as err:
        write_invalid(kube, body, err, process=process)
        return Outcome()
    policies = valid_policies(snap.policies, snap.policies_version)
    access = access_for(policies, app.name, app.labels)
    facts = pool_facts(app.spec.pool_ref.name, snap.pool, snap.pool_children,
                       snap.pool_elsewhere)
    me = claim_of(body)
    current = live_route(snap.children)
    route_facts = RouteFacts(
        pool=facts, access=access, conflict=conflict_for(me, snap.claims),
        live_pool=live_route_pool(snap.children) or None,
        live_pool_exists=snap.live_pool_exists,
        tls_secret_exists=_tls_secret_exists(kube, settings, process.tls_secrets, app),
        unenforced=enforcement_gap(app, settings))
    plan = plan_route(app, me, route_facts)
    if plan.route == "keep":
        result = SyncResult()  # what runs stays exactly as it is
        route = f"{current['kind']}/{current['metadata']['name']}" if current else None
    else:
        desired = (build_app_children(app, facts, access, settings)
                   if plan.route == "render" else [])
        result = sync_children(kube, desired, snap.children, owner=body, gone=process.gone)
        if result.owner_gone:
            return Outcome(owner_gone=True)
        route = f"{desired[0]['kind']}/{desired[0]['metadata']['name']}" if desired else None
    fields: dict[str, Any] = {"url": app_url(app.spec), "poolReady": facts.ready,
                              "route": route,
                              "allowedBy": allowed_by(policies, app.name, app.labels)}
    conditions = app_conditions(plan, result.errors)
    STATE.set_app(app.namespace, app.name, AppFacts(ready=bool(conditions[0].status)))
    write_status(kube, body, fields, conditions, process=process)
    if route_facts.tls_secret_exists is False and not result.errors:
        return Outcome(requeue_after=RECHECK_SECONDS)  # noticed soon once it is created
    return Outcome(result.errors)


@dataclass(frozen=True)
class CatalogSnapshot:
    namespace: str
    apps: list[dict[str, Any]]
    pools: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]
    live: dict[str, Any] | None
    policies: list[dict[str, Any]]
    policies_version: Hashable | None = None  # see fanout.Memory.version


def reconcile_catalog(kube: Kube, settings: Settings, snap: CatalogSnapshot) -> Outcome:
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
        return Outcome([str(err)])  # the catalog in place stays; retried with backoff
    configmap = BY_KIND[("v1", "ConfigMap")]
    try:
        if desired is None and snap.live is not None:
            kube.delete(configmap, snap.namespace, settings.catalog_name,
                        snap.live["metadata"].get("uid"))
        elif desired is not None and needs_apply(desired, snap.live):
            kube.apply(desired)
    except KubeError as err:
        return Outcome([f"catalog: {err}"])
    return Outcome()
