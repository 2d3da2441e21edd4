"""How each gateway flavour is made to ask the portal on every request, and to keep the
static outer fence (source ranges) where it can.

- Ingress, any flavour: the `nginx.ingress.kubernetes.io/auth-url` annotation (read by
  ingress-nginx and by Traefik's ingress-nginx provider); outer fence:
  `whitelist-source-range`.
- HTTPRoute, `traefik`: a forwardAuth `Middleware` referenced by an ExtensionRef filter;
  outer fence: an `ipAllowList` Middleware before it.
- HTTPRoute, `envoy-gateway`: a `SecurityPolicy` with `extAuth` targeting the route;
  outer fence: the same policy's `authorization` on client CIDRs.
- HTTPRoute, `gateway-api`: the experimental `ExternalAuth` filter; no outer fence.
- HTTPRoute, `ingress-nginx`: nothing can be attached; reported on the app.

The app is named in the path the gateway calls (`/authz/<namespace>/<app>`), which the
route carries: nothing the client sends decides which app is being authorized. The
portal's answer headers (contracts.AUTH_RESPONSE_HEADERS) are listed for the gateway to
copy upstream, which replaces any copy the client sent.
"""

from __future__ import annotations

from typing import Any

from .. import contracts
from ..api.publishedapp import PublishedAppSpec
from ..settings import Settings
from .meta import APP_LABEL, Resource

App = Resource[PublishedAppSpec]

NGINX = "nginx.ingress.kubernetes.io/"
TRAEFIK_API = "traefik.io/v1alpha1"
ENVOY_API = "gateway.envoyproxy.io/v1alpha1"

# What the portal needs of the original request when a gateway sends only what it is
# told to (Envoy, Gateway API): the sign-in cookie or token, the client's address, and
# where the user was going (for the sign-in's return address).
REQUEST_HEADERS_TO_PORTAL = ("cookie", "authorization", "x-forwarded-for", "x-forwarded-proto",
                             "x-forwarded-host", "x-forwarded-uri", "x-original-url")


def authz_url(settings: Settings, app: App) -> str:
    return settings.portal_url + contracts.authz_path(app.namespace, app.name)


def auth_name(app: App) -> str:
    return f"{app.name}-deskfleet-auth"[:253]


def fence_name(app: App) -> str:
    return f"{app.name}-deskfleet-fence"[:253]


def enforcement_gap(app: App, settings: Settings) -> str:
    """Why requests to the app's route would not reach the portal ("" when they do):
    a route that asks nobody is reported, never silently open to all."""
    if not settings.portal_url:
        return ("no portal to ask: DESKFLEET_PORTAL_URL (chart: portal.enabled) is not set, "
                "so the route enforces no AccessPolicy; anyone who reaches the gateway "
                "reaches the app")
    if app.spec.gateway.parent_ref is None:
        return ""
    if settings.gateway_flavor == "ingress-nginx":
        return ("DESKFLEET_GATEWAY_FLAVOR=ingress-nginx cannot attach external auth to an "
                "HTTPRoute: set it to traefik, envoy-gateway or gateway-api, or give the "
                "app an Ingress (remove gateway.parentRef)")
    if settings.gateway_flavor in ("envoy-gateway", "gateway-api") and \
            settings.portal_service() is None:
        return (f"DESKFLEET_GATEWAY_FLAVOR={settings.gateway_flavor} refers to the portal as "
                f"a Service: DESKFLEET_PORTAL_URL must read "
                f"http://<service>.<namespace>.svc:<port> (it is {settings.portal_url})")
    return ""


def ingress_auth_annotations(app: App, settings: Settings, source_ranges: tuple[str, ...]
                             ) -> dict[str, str]:
    annotations = {}
    if source_ranges:
        annotations[f"{NGINX}whitelist-source-range"] = ",".join(source_ranges)
    if enforcement_gap(app, settings):
        return annotations
    annotations[f"{NGINX}auth-url"] = authz_url(settings, app)
    annotations[f"{NGINX}auth-response-headers"] = ",".join(contracts.AUTH_RESPONSE_HEADERS)
    if settings.auth_signin:
        annotations[f"{NGINX}auth-signin"] = settings.auth_signin + "?rd=$escaped_request_uri"
    return annotations


def http_route_filters(app: App, settings: Settings, source_ranges: tuple[str, ...]
                       ) -> list[dict[str, Any]]:
    """The filters of the route's rule that make the gateway ask the portal."""
    if enforcement_gap(app, settings):
        return []
    flavor = settings.gateway_flavor
    if flavor == "traefik":
        names = ([fence_name(app)] if source_ranges else []) + [auth_name(app)]
        return [{"type": "ExtensionRef", "extensionRef": {
            "group": "traefik.io", "kind": "Middleware", "name": n}} for n in names]
    if flavor == "gateway-api":
        service = settings.portal_service()
        assert service is not None
        name, namespace, port = service
        return [{"type": "ExternalAuth", "externalAuth": {
            "protocol": "HTTP",
            "backendRef": {"name": name, "namespace": namespace, "port": port},
            "http": {"path": contracts.authz_path(app.namespace, app.name),
                     "allowedHeaders": list(REQUEST_HEADERS_TO_PORTAL),
                     "allowedResponseHeaders": list(contracts.AUTH_RESPONSE_HEADERS)},
        }}]
    return []  # envoy-gateway attaches a SecurityPolicy to the route instead


def auth_children(app: App, settings: Settings, source_ranges: tuple[str, ...]
                  ) -> list[dict[str, Any]]:
    """Objects beside an HTTPRoute that its flavour needs (none for an Ingress)."""
    if app.spec.gateway.parent_ref is None or enforcement_gap(app, settings):
        return []
    metadata = lambda name: app.child_metadata(name, **{APP_LABEL: app.name})  # noqa: E731
    if settings.gateway_flavor == "traefik":
        out = [{"apiVersion": TRAEFIK_API, "kind": "Middleware", "metadata": metadata(
            auth_name(app)), "spec": {"forwardAuth": {
                "address": authz_url(settings, app),
                # Traefik then sets X-Forwarded-For to the client it sees, which is
                # what the portal's trusted hop reads (a client's own is not appended).
                "trustForwardHeader": False,
                "authResponseHeaders": list(contracts.AUTH_RESPONSE_HEADERS),
            }}}]
        if source_ranges:
            out.insert(0, {"apiVersion": TRAEFIK_API, "kind": "Middleware",
                           "metadata": metadata(fence_name(app)),
                           "spec": {"ipAllowList": {"sourceRange": list(source_ranges)}}})
        return out
    if settings.gateway_flavor == "envoy-gateway":
        service = settings.portal_service()
        assert service is not None
        name, namespace, port = service
        spec: dict[str, Any] = {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                            "name": app.name}],
            "extAuth": {
                "http": {"backendRefs": [{"name": name, "namespace": namespace,
                                          "port": port}],
                         "path": contracts.authz_path(app.namespace, app.name),
                         "headersToBackend": list(contracts.AUTH_RESPONSE_HEADERS)},
                "headersToExtAuth": list(REQUEST_HEADERS_TO_PORTAL),
                "failOpen": False,
            },
        }
        if source_ranges:
            spec["authorization"] = {"defaultAction": "Deny", "rules": [{
                "name": "outer-fence", "action": "Allow",
                "principal": {"clientCIDRs": list(source_ranges)}}]}
        return [{"apiVersion": ENVOY_API, "kind": "SecurityPolicy",
                 "metadata": metadata(auth_name(app)), "spec": spec}]
    return []
