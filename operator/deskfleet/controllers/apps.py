"""Reconcile a PublishedApp (its route) and a namespace's catalog."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ..api.parse import InvalidSpec, parse
from ..conditions import Cond
from ..kube.client import Kube, KubeError
from ..kube.compare import needs_apply
from ..kube.resources import BY_KIND
from ..metrics import STATE, AppFacts
from ..policy.enforcement import access_for, allowed_by, valid_policies
from ..render.app import PoolFacts, RouteAccess, app_url, build_app_children, catalog_entry
from ..render.catalog import build_catalog
from ..render.configdata import DocumentTooLarge
from ..render.gateway_auth import enforcement_gap
from ..settings import Settings
from .children import sync_children
from .outcome import Outcome
from .pools import pool_is_ready
from .status import write_status


@dataclass(frozen=True)
class AppSnapshot:
    body: dict[str, Any]
    pool: dict[str, Any] | None
    pool_children: list[dict[str, Any]]
    children: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    policies_version: Hashable | None = None  # see fanout.Memory.version


def pool_facts(name: str, pool_body: dict[str, Any] | None,
               pool_children: list[dict[str, Any]]) -> PoolFacts:
    if pool_body is None:
        return PoolFacts(name=name, exists=False)
    try:
        pool = parse(pool_body)
    except InvalidSpec:
        # An invalid pool keeps running what it had; its Service port is what counts.
        return PoolFacts(name=name, exists=True, ready=pool_is_ready(pool_children))
    return PoolFacts(name=name, exists=True, ready=pool_is_ready(pool_children),
                     port=pool.spec.session_port, protocol=pool.spec.protocol)


def app_conditions(facts: PoolFacts, access: RouteAccess, errors: list[str],
                   unenforced: str = "") -> list[Cond]:
    """Ready says whether users can reach the app; Degraded also says when the route
    reaches it without asking the portal (`unenforced`, naming the setting)."""
    if errors:
        msg = "; ".join(errors)
        return [Cond("Ready", False, "RouteFailed", msg), Cond("Degraded", True,
                                                               "RouteFailed", msg)]
    if not facts.exists:
        ready = Cond("Ready", False, "PoolNotFound",
                     f"SessionHostPool {facts.name} does not exist; the route is down")
    elif not facts.ready:
        ready = Cond("Ready", False, "PoolNotReady",
                     f"SessionHostPool {facts.name} has no ready hosts; the route is down")
    elif not access.open:
        ready = Cond("Ready", False, "NoPolicyAllows",
                     "no enforced AccessPolicy allows anyone to open this app; the route is "
                     "closed")
    elif unenforced:
        ready = Cond("Ready", True, "RouteOpenUnenforced", unenforced)
    else:
        ready = Cond("Ready", True, "RouteOpen", "")
    if unenforced:
        return [ready, Cond("Degraded", True, "AccessNotEnforced", unenforced)]
    return [ready, Cond("Degraded", False, "AsExpected", "")]


def reconcile_app(kube: Kube, settings: Settings, snap: AppSnapshot) -> Outcome:
    body = snap.body
    try:
        app = parse(body)
    except InvalidSpec as err:
        write_status(kube, body, {}, [Cond("Ready", False, "InvalidSpec", str(err)),
                                      Cond("Degraded", True, "InvalidSpec",
                                           "; ".join(err.problems))])
        return Outcome()
    policies = valid_policies(snap.policies, snap.policies_version)
    access = access_for(policies, app.name, app.labels)
    facts = pool_facts(app.spec.pool_ref.name, snap.pool, snap.pool_children)
    desired = build_app_children(app, facts, access, settings)
    result = sync_children(kube, desired, snap.children, owner=body)
    if result.owner_gone:
        return Outcome(owner_gone=True)
    route = f"{desired[0]['kind']}/{desired[0]['metadata']['name']}" if desired else None
    fields: dict[str, Any] = {"url": app_url(app.spec), "poolReady": facts.ready,
                              "route": route,
                              "allowedBy": allowed_by(policies, app.name, app.labels)}
    conditions = app_conditions(facts, access, result.errors,
                                enforcement_gap(app, settings))
    STATE.set_app(app.namespace, app.name, AppFacts(ready=bool(conditions[0].status)))
    write_status(kube, body, fields, conditions)
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
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (body.get("status") or {}).get("conditions") or [])
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
