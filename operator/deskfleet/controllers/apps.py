"""Reconcile a PublishedApp: its route."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.kinds import PUBLISHED_APP, SESSION_HOST_POOL
from ..api.parse import InvalidSpec, parse
from ..kube.client import Kube
from ..metrics import STATE, AppMetrics
from ..policy.enforcement import access_for, allowed_by, valid_policies
from ..render.app import App, PoolFacts, app_url, build_app_children
from ..render.app_plan import RouteFacts, app_conditions, plan_route
from ..render.gateway_auth import enforcement_gap
from ..render.meta import POOL_LABEL
from ..render.route_claims import Claim, conflict_for
from ..settings import Settings
from . import fanout
from .cache import APPS_BY_POOL, ROUTES
from .children import SyncResult, sync_children
from .controller import Body, Controller, Job, policies_of
from .fanout import Delayed, Facts, Key
from .pass_result import PassResult
from .pools import pool_is_ready
from .process import ProcessState
from .status import write_invalid, write_status
from .tls_secrets import RECHECK_SECONDS, SecretChecker

if TYPE_CHECKING:
    from .runtime import Runtime

KIND = PUBLISHED_APP.kind
ROUTE_KINDS = ("Ingress", "HTTPRoute")


@dataclass(frozen=True)
class AppSnapshot:
    body: dict[str, Any]
    pool: dict[str, Any] | None
    pool_children: list[dict[str, Any]]
    children: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    policies_version: Hashable | None = None  # see fanout.FactsMemory.version
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
                  process: ProcessState | None = None) -> PassResult:
    process = ProcessState() if process is None else process
    body = snap.body
    try:
        app = parse(body)
    except InvalidSpec as err:
        write_invalid(kube, body, err, process=process)
        return PassResult()
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
            return PassResult(owner_gone=True)
        route = f"{desired[0]['kind']}/{desired[0]['metadata']['name']}" if desired else None
    fields: dict[str, Any] = {"url": app_url(app.spec), "poolReady": facts.ready,
                              "route": route,
                              "allowedBy": allowed_by(policies, app.name, app.labels)}
    conditions = app_conditions(plan, result.errors)
    STATE.set_app(app.namespace, app.name, AppMetrics(ready=bool(conditions[0].status)))
    write_status(kube, body, fields, conditions, process=process)
    if route_facts.tls_secret_exists is False and not result.errors:
        return PassResult(requeue_after=RECHECK_SECONDS)  # noticed soon once it is created
    return PassResult(result.errors)


# -- the declaration ------------------------------------------------------------------------

def _by_pool(namespace: str, name: str, body: Mapping[str, Any]) -> dict[Any, Any]:
    pool = ((body.get("spec") or {}).get("poolRef") or {}).get("name")
    return {(namespace, pool): name} if pool else {}


def _by_route(namespace: str, name: str, body: Mapping[str, Any]) -> dict[Any, Any]:
    route = fanout.app_route(body.get("spec") or {})
    if not route:
        return {}
    # Of apps claiming one host and path, the oldest keeps the route.
    return {route: Claim((body.get("metadata") or {}).get("creationTimestamp") or "",
                         namespace, name)}


def _claims(rt: Runtime, route: tuple[str, str]) -> tuple[Claim, ...]:
    return tuple(sorted(set(rt.cache.lookup(ROUTES, route))))


def _keys(rt: Runtime, key: Key, old: Facts | None, new: Facts | None
          ) -> list[Key | Delayed]:
    _, namespace, name = key
    # Apps that claim (or claimed) the same host and path: who holds it may change.
    routes = {f["route"] for f in (old, new) if f and f.get("route")}
    rivals = [(claim.namespace, claim.name) for route in sorted(routes)
              for claim in _claims(rt, route)] if rt.cache.bound else []
    return fanout.app_keys(namespace, name, old, new, rivals)


def _snapshot(rt: Runtime, namespace: str, name: str, body: Body | None) -> Job:
    assert body is not None and rt.kube is not None
    cache, pool_kind = rt.cache, SESSION_HOST_POOL.kind
    pool_name = ((body.get("spec") or {}).get("poolRef") or {}).get("name", "")
    pool = cache.get(pool_kind, namespace, pool_name)
    children = cache.children(namespace, KIND, name)
    live_pool = live_route_pool(children)
    route = fanout.app_route(body.get("spec") or {})
    policies, version = policies_of(rt, namespace)
    snap = AppSnapshot(
        body=body, pool=pool, pool_children=cache.children(namespace, pool_kind, pool_name),
        children=children, policies=policies, policies_version=version,
        pool_elsewhere=() if pool else cache.namespaces_with(pool_kind, pool_name),
        claims=_claims(rt, route) if route else (),
        live_pool_exists=bool(live_pool) and cache.get(pool_kind, namespace,
                                                       live_pool) is not None)
    kube, settings, process = rt.kube, rt.settings, rt.process
    return lambda: reconcile_app(kube, settings, snap, process)


CONTROLLER = Controller(
    kind=KIND, plural=PUBLISHED_APP.plural, snapshot=_snapshot,
    facts=fanout.app_event_facts, keys=_keys,
    indexes=((APPS_BY_POOL, _by_pool), (ROUTES, _by_route)), owns_children=True,
    compared_status=("allowedBy",))
