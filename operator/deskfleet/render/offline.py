"""`deskfleet render`: the operator's render core run on files, for GitOps reviews.

Offline there is no cluster to ask whether a pool has ready hosts, so pools declared in
the files count as ready; an app whose pool is not in the files gets no route, exactly
as the operator would do for a missing pool.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ..api.parse import InvalidSpec, parse
from ..manifests import ManifestError, load_paths
from ..settings import Settings
from .app import PoolFacts, build_app_children, catalog_entry
from .catalog import build_catalog
from .meta import Resource
from .pool import build_pool_children

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
    out: list[dict[str, Any]] = []
    for pool in pools.values():
        out += build_pool_children(pool, settings)
    catalogs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for app in (r for r in resources if r.kind == "PublishedApp"):
        pool_res = pools.get((app.namespace, app.spec.pool_ref.name))
        facts = PoolFacts(
            name=app.spec.pool_ref.name,
            exists=pool_res is not None,
            ready=pool_res is not None,
            port=pool_res.spec.session_port if pool_res else 0,
            protocol=pool_res.spec.protocol if pool_res else "",
        )
        children = build_app_children(app, facts)
        out += children
        catalogs[app.namespace].append(catalog_entry(app, facts, ready=bool(children)))
    for namespace, entries in sorted(catalogs.items()):
        catalog = build_catalog(namespace, settings.catalog_name, entries)
        if catalog:
            out.append(catalog)
    return out


def render_files(paths: list[Path], settings: Settings | None = None) -> list[dict[str, Any]]:
    return render_objects(load_paths(paths), settings)
