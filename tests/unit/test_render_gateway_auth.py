"""Routes that make the gateway ask the portal on every request, per gateway flavour; a
route that asks nobody is reported; subjects never reach a route or a query string."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from deskfleet import contracts
from deskfleet.api.parse import parse
from deskfleet.render.app import PoolFacts, RouteAccess, build_app_children
from deskfleet.render.app_plan import RouteFacts, app_conditions, plan_route
from deskfleet.render.gateway_auth import enforcement_gap
from deskfleet.render.offline import render_objects
from deskfleet.render.route_claims import Claim
from deskfleet.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PORTAL = "http://deskfleet-portal.deskfleet.svc:8080"
DOCS = [d for p in sorted(EXAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
        if d]
POOL = PoolFacts(name="ehr-web", exists=True, ready=True, port=8443, protocol="http")
FENCE = RouteAccess(source_ranges=("203.0.113.0/24",))


def app(name: str, parent: bool = True) -> Any:
    body = next(d for d in DOCS if d["kind"] == "PublishedApp" and d["metadata"]["name"] == name)
    body = json.loads(json.dumps(body))
    body["metadata"]["uid"] = f"uid-{name}-{parent}"
    gateway = body["spec"]["gateway"]
    if parent:
        gateway.pop("ingressClassName", None)
        gateway["parentRef"] = {"name": "public-gateway", "namespace": "gateways"}
    else:
        gateway.pop("parentRef", None)
    return parse(body)


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for doc in docs:
        assert doc["kind"] not in out
        out[doc["kind"]] = doc
    return out


def test_traefik_routes_go_through_a_forward_auth_middleware_after_the_fence() -> None:
    children = build_app_children(app("epr"), POOL, FENCE,
                                  Settings(portal_url=PORTAL, gateway_flavor="traefik"))
    route = children[0]
    middlewares = {m["metadata"]["name"]: m["spec"] for m in children[1:]}
    filters = route["spec"]["rules"][0]["filters"]
    assert [f["extensionRef"]["name"] for f in filters] == [
        "epr-deskfleet-fence", "epr-deskfleet-auth"]
    auth = middlewares["epr-deskfleet-auth"]["forwardAuth"]
    assert auth["address"] == f"{PORTAL}/authz/northgate/epr"
    assert auth["authResponseHeaders"] == list(contracts.AUTH_RESPONSE_HEADERS)
    assert auth["trustForwardHeader"] is False
    assert middlewares["epr-deskfleet-fence"] == {
        "ipAllowList": {"sourceRange": ["203.0.113.0/24"]}}
    assert all(m["metadata"]["ownerReferences"][0]["name"] == "epr" for m in children)
    assert "annotations" not in route["metadata"]  # nothing that no gateway reads


def test_envoy_gateway_routes_get_a_security_policy() -> None:
    route, policy = build_app_children(app("epr"), POOL, FENCE,
                                       Settings(portal_url=PORTAL,
                                                gateway_flavor="envoy-gateway"))
    assert "filters" not in route["spec"]["rules"][0]
    spec = policy["spec"]
    assert spec["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                   "name": "epr"}]
    ext = spec["extAuth"]
    assert ext["http"]["backendRefs"] == [{"name": "deskfleet-portal",
                                           "namespace": "deskfleet", "port": 8080}]
    assert ext["http"]["path"] == "/authz/northgate/epr"
    assert ext["failOpen"] is False
    assert {"cookie", "authorization", "x-forwarded-for"} <= set(ext["headersToExtAuth"])
    assert spec["authorization"]["rules"][0]["principal"] == {
        "clientCIDRs": ["203.0.113.0/24"]}


def test_gateway_api_external_auth_filter_only_when_chosen() -> None:
    [route] = build_app_children(app("epr"), POOL, RouteAccess(),
                                 Settings(portal_url=PORTAL, gateway_flavor="gateway-api"))
    [f] = route["spec"]["rules"][0]["filters"]
    assert f["type"] == "ExternalAuth"
    assert f["externalAuth"]["http"]["path"] == "/authz/northgate/epr"
    assert f["externalAuth"]["http"]["allowedResponseHeaders"] == list(
        contracts.AUTH_RESPONSE_HEADERS)
    for flavor in ("traefik", "envoy-gateway"):
        docs = build_app_children(app("epr"), POOL, RouteAccess(),
                                  Settings(portal_url=PORTAL, gateway_flavor=flavor))
        assert "ExternalAuth" not in json.dumps(docs)


def test_ingresses_ask_the_portal_through_auth_url() -> None:
    settings = Settings(portal_url=PORTAL, auth_signin="https://w.example/oauth2/start")
    [ingress] = build_app_children(app("epr", parent=False), POOL, FENCE, settings)
    ann = ingress["metadata"]["annotations"]
    nginx = "nginx.ingress.kubernetes.io/"
    assert ann[f"{nginx}auth-url"] == f"{PORTAL}/authz/northgate/epr"
    assert ann[f"{nginx}auth-response-headers"] == ",".join(contracts.AUTH_RESPONSE_HEADERS)
    assert ann[f"{nginx}auth-signin"] == "https://w.example/oauth2/start?rd=$escaped_request_uri"
    assert ann[f"{nginx}whitelist-source-range"] == "203.0.113.0/24"


@pytest.mark.parametrize("settings, parent, named", [
    (Settings(), True, "DESKFLEET_PORTAL_URL"),
    (Settings(), False, "DESKFLEET_PORTAL_URL"),
    (Settings(portal_url=PORTAL, gateway_flavor="ingress-nginx"), True,
     "DESKFLEET_GATEWAY_FLAVOR"),
    (Settings(portal_url="http://portal.example:8080", gateway_flavor="envoy-gateway"), True,
     "DESKFLEET_PORTAL_URL must read"),
])
def test_a_route_that_asks_nobody_is_reported_naming_the_setting(
        settings: Settings, parent: bool, named: str) -> None:
    subject = app("epr", parent)
    claim = Claim("2026-01-01T00:00:00Z", subject.namespace, subject.name)
    gap = enforcement_gap(subject, settings)
    assert named in gap
    children = build_app_children(subject, POOL, RouteAccess(), settings)
    assert "authz" not in json.dumps(children)
    plan = plan_route(subject, claim, RouteFacts(POOL, RouteAccess(), unenforced=gap))
    ready, degraded = app_conditions(plan, [])
    assert ready.status and ready.reason == "RouteOpenUnenforced"
    assert degraded.status and degraded.reason == "AccessNotEnforced" and named in degraded.message
    assert not enforcement_gap(subject, Settings(portal_url=PORTAL))


@pytest.mark.parametrize("flavor", ["traefik", "envoy-gateway", "gateway-api", "ingress-nginx"])
def test_no_subject_ever_reaches_a_rendered_route(flavor: str) -> None:
    """Groups and users are decided by the portal from the token, never written into a
    route or a query string, so no separator in a name can widen who is admitted."""
    comma = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
             "metadata": {"name": "dn-groups", "namespace": "northgate"},
             "spec": {"subjects": {"groups": ["CN=Ward 7,OU=Nurses,DC=northgate"],
                                   "users": ["a,b@northgate.example"]},
                      "apps": {"selector": {}}}}
    docs = render_objects([*DOCS, comma], Settings(portal_url=PORTAL, gateway_flavor=flavor))
    routes = [d for d in docs if d["kind"] in ("Ingress", "HTTPRoute", "Middleware",
                                               "SecurityPolicy")]
    assert routes
    text = json.dumps(routes)
    for name in ("Ward 7", "OU=Nurses", "a,b@", "clinicians", "allowed_groups",
                 "allowed_emails", "allowed-groups"):
        assert name not in text, name


def test_session_persistence_only_when_asked() -> None:
    """Reconnects return to their host through Gateway API's (experimental) cookie
    persistence where the platform turned it on; the standard CRDs refuse the field."""
    [plain] = build_app_children(app("epr"), POOL, RouteAccess(), Settings())
    assert "sessionPersistence" not in plain["spec"]["rules"][0]
    [sticky] = build_app_children(app("epr"), POOL, RouteAccess(),
                                  Settings(httproute_session_persistence=True))
    assert sticky["spec"]["rules"][0]["sessionPersistence"] == {
        "sessionName": "deskfleet-epr", "type": "Cookie",
        "cookieConfig": {"lifetimeType": "Session"}}
