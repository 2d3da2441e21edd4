"""PublishedApp -> its gateway route (Ingress or HTTPRoute), and its catalog entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.publishedapp import PublishedAppSpec
from ..policy.model import RouteAccess
from ..settings import Settings
from .gateway_auth import NGINX, auth_children, http_route_filters, ingress_auth_annotations
from .meta import APP_LABEL, POOL_LABEL, Resource

App = Resource[PublishedAppSpec]


@dataclass(frozen=True)
class PoolFacts:
    """What an app needs to know about its pool."""

    name: str
    exists: bool
    ready: bool = False
    port: int = 0  # 0: unknown (a pool whose spec is invalid and that has no Service)
    protocol: str = ""
    elsewhere: tuple[str, ...] = ()  # when missing: namespaces that have a pool so named


def app_url(spec: PublishedAppSpec) -> str:
    scheme = "https" if spec.gateway.tls_secret_name else "http"
    # The gateway does not rewrite paths, so a web app's launch path is a URL path under
    # the route's prefix (admission enforces that).
    return f"{scheme}://{spec.gateway.host}{spec.launch.path or spec.gateway.path}"


def route_open(pool: PoolFacts, access: RouteAccess) -> bool:
    """A route exists only when it leads somewhere and someone may use it."""
    return pool.exists and pool.ready and access.open


def _ingress_annotations(app: App, access: RouteAccess, settings: Settings) -> dict[str, str]:
    gw = app.spec.gateway
    timeout = str(gw.timeout_seconds)
    annotations = {
        # Remote sessions are long-lived WebSockets: default 60 s timeouts cut them.
        f"{NGINX}proxy-read-timeout": timeout,
        f"{NGINX}proxy-send-timeout": timeout,
        # A reconnect returns to the host that holds the user's session.
        f"{NGINX}affinity": "cookie",
        f"{NGINX}affinity-mode": "persistent",
        f"{NGINX}session-cookie-name": f"deskfleet-{app.name}"[:63],
        f"{NGINX}session-cookie-path": gw.path,
        f"{NGINX}session-cookie-samesite": "Strict",
        f"{NGINX}session-cookie-secure": "true" if gw.tls_secret_name else "false",
        f"{NGINX}proxy-buffering": "off",
    }
    if gw.tls_secret_name:
        annotations[f"{NGINX}force-ssl-redirect"] = "true"
    annotations.update(ingress_auth_annotations(app, settings, access.source_ranges))
    return annotations


def build_ingress(app: App, pool: PoolFacts, access: RouteAccess, settings: Settings
                  ) -> dict[str, Any]:
    gw = app.spec.gateway
    spec: dict[str, Any] = {
        "rules": [{
            "host": gw.host,
            "http": {"paths": [{
                "path": gw.path,
                "pathType": "Prefix",
                "backend": {"service": {"name": pool.name, "port": {"name": "session"}}},
            }]},
        }],
    }
    if gw.ingress_class_name:
        spec["ingressClassName"] = gw.ingress_class_name
    if gw.tls_secret_name:
        spec["tls"] = [{"hosts": [gw.host], "secretName": gw.tls_secret_name}]
    metadata = app.child_metadata(app.name, **{APP_LABEL: app.name, POOL_LABEL: pool.name})
    metadata["annotations"] = _ingress_annotations(app, access, settings)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": metadata, "spec": spec}


def build_http_route(app: App, pool: PoolFacts, access: RouteAccess, settings: Settings
                     ) -> dict[str, Any]:
    gw = app.spec.gateway
    assert gw.parent_ref is not None
    parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                              "name": gw.parent_ref.name}
    if gw.parent_ref.namespace:
        parent["namespace"] = gw.parent_ref.namespace
    if gw.parent_ref.section_name:
        parent["sectionName"] = gw.parent_ref.section_name
    metadata = app.child_metadata(app.name, **{APP_LABEL: app.name, POOL_LABEL: pool.name})
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": gw.path}}],
        "backendRefs": [{"name": pool.name, "port": pool.port}],
        # Gateway API's request timeout covers the whole upgraded WebSocket on most
        # implementations: an hour, not the default.
        "timeouts": {"request": f"{gw.timeout_seconds}s"},
    }
    if settings.httproute_session_persistence:
        # A browser session's reconnect returns to the host that holds its desktop.
        rule["sessionPersistence"] = {"sessionName": f"deskfleet-{app.name}"[:128],
                                      "type": "Cookie",
                                      "cookieConfig": {"lifetimeType": "Session"}}
    filters = http_route_filters(app, settings, access.source_ranges)
    if filters:
        rule["filters"] = filters
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": {
            "parentRefs": [parent],
            "hostnames": [gw.host],
            "rules": [rule],
        },
    }


def build_route(app: App, pool: PoolFacts, access: RouteAccess, settings: Settings
                ) -> dict[str, Any] | None:
    if not route_open(pool, access):
        return None
    if app.spec.gateway.parent_ref:
        return build_http_route(app, pool, access, settings)
    return build_ingress(app, pool, access, settings)


def build_app_children(app: App, pool: PoolFacts, access: RouteAccess, settings: Settings
                       ) -> list[dict[str, Any]]:
    """The route, and what its gateway flavour needs beside it to ask the portal."""
    route = build_route(app, pool, access, settings)
    if route is None:
        return []
    return [route, *auth_children(app, settings, access.source_ranges)]


def catalog_entry(app: App, pool: PoolFacts, ready: bool,
                  access: RouteAccess | None = None) -> dict[str, Any]:
    """One app as a landing page needs it; groups/users let a portal show each user
    only the apps they may open."""
    spec = app.spec
    access = access or RouteAccess()
    entry: dict[str, Any] = {
        "name": app.name,
        "displayName": spec.display_name,
        "description": spec.description,
        "category": spec.category,
        "url": app_url(spec),
        "pool": pool.name,
        "protocol": pool.protocol,
        "ready": ready,
        "launch": spec.launch.wire(),
        "allowedGroups": sorted(access.allowed_groups),
        "allowedUsers": sorted(access.allowed_users),
        "requireMFA": access.require_mfa,
    }
    if spec.icon:
        entry["icon"] = spec.icon
    return entry
