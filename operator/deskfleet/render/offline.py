"""`deskfleet render`: the operator's render core run on files, for GitOps reviews.

Each app's route is planned by the operator's own plan (render/app_plan.plan_route) on
what the files say. Offline there is no cluster to ask whether a pool has ready hosts,
so pools declared in the files count as ready; there is no route serving yet and no
Secret to look up. So an app whose pool is not in the files, that no enforced policy
opens, or that loses a contested host and path gets no route and is listed not ready,
exactly as the operator decides it. Access policies in the files are enforced
as the operator enforces them, and the DESKFLEET_* settings are read from the
environment as the operator reads them.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ..api.parse import InvalidSpec, parse
from ..manifests import ManifestError, load_paths
from ..policy.enforcement import access_for, app_session_config
from ..settings import Settings
from .app import PoolFacts, build_app_children, catalog_entry
from .app_plan import RouteFacts, plan_route
from .catalog import build_catalog
from .gateway_auth import enforcement_gap
from .meta import Resource
from .pool import build_pool_children
from .route_claims import Claim, RouteKey, conflict_for, route_key

OFFLINE_UID = "00000000-0000-0000-0000-000000000000"


def render_objects(bodies: list[dict[str, Any]], settings: Settings | None = None
                   ) -> list[dict[str, Any]]:
    settings = settings or Settings()
    resources: list[Resource[Any]] = []
    for body in bodies:
        if not str(body.get("apiVersion", "")).startswith("deskfleet.io/"):
            continue
        body = {**body, "metadata": {"uid": OFFLINE_UID, **body.get("metadata", {})}}
        try:
            resources.append(parse(body))
        except InvalidSpec as err:
            raise ManifestError(str(err)) from err

    pools = {(r.namespace, r.name): r for r in resources if r.kind == "SessionHostPool"}
    apps = [r for r in resources if r.kind == "PublishedApp"]
    policies: dict[str, list[Any]] = defaultdict(list)
    for r in resources:
        if r.kind == "AccessPolicy":
            policies[r.namespace].append(r)
    out: list[dict[str, Any]] = []
    for pool in pools.values():
        config = {a.name: app_session_config(policies[a.namespace], a.name, a.labels)
                  for a in apps if a.namespace == pool.namespace
                  and a.spec.pool_ref.name == pool.name}
        out += build_pool_children(pool, settings, config)
    catalogs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    claims = route_claims(bodies)
    for app in apps:
        pool_res = pools.get((app.namespace, app.spec.pool_ref.name))
        facts = PoolFacts(
            name=app.spec.pool_ref.name,
            exists=pool_res is not None,
            ready=pool_res is not None,
            port=pool_res.spec.session_port if pool_res else 0,
            protocol=pool_res.spec.protocol if pool_res else "",
        )
        access = access_for(policies[app.namespace], app.name, app.labels)
        # The operator's own plan, on what the files say (no route serving yet, no
        # Secret to look up), so `deskfleet render` and the live status cannot disagree.
        route = route_key(app.spec.gateway.host, app.spec.gateway.path)
        me = next(c for c in claims[route] if (c.namespace, c.name) == (app.namespace,
                                                                         app.name))
        plan = plan_route(app, me, RouteFacts(
            pool=facts, access=access, conflict=conflict_for(me, claims[route]),
            unenforced=enforcement_gap(app, settings)))
        if plan.route == "render":
            out += build_app_children(app, facts, access, settings)
        catalogs[app.namespace].append(catalog_entry(app, facts, ready=plan.ready.status is True,
                                                     access=access))
    for namespace, entries in sorted(catalogs.items()):
        catalog = build_catalog(namespace, settings.catalog_name, entries)
        if catalog:
            out.append(catalog)
    return out


def route_claims(bodies: list[dict[str, Any]]) -> dict[RouteKey, list[Claim]]:
    """Every app's claim on its host and path (route_claims decides who holds one: the
    oldest, then by namespace and name; files without creationTimestamps are ordered by
    namespace and name)."""
    claims: dict[RouteKey, list[Claim]] = defaultdict(list)
    for body in bodies:
        if body.get("kind") != "PublishedApp":
            continue
        meta = body.get("metadata") or {}
        gateway = (body.get("spec") or {}).get("gateway") or {}
        claims[route_key(gateway.get("host", ""), gateway.get("path") or "/")].append(
            Claim(meta.get("creationTimestamp") or "", meta.get("namespace") or "default",
                  meta.get("name", "")))
    return claims


def render_files(paths: list[Path], settings: Settings | None = None) -> list[dict[str, Any]]:
    return render_objects(load_paths(paths), settings)
