"""Smoke tests of the gateway test harness (tests/support/) against the real things: the
Traefik and oauth2-proxy built by hack/build-gateway.sh, the test OIDC issuer, stand-in
session hosts on loopback ClusterIPs, and headless Chromium.

The authorizer here is a stand-in for `deskfleet portal` (StandInPortalAuthorizer): it
answers what the test tells it to, and records what the gateway sent it. Each test fails
if the gateway feature it relies on is missing: a route that ignored its auth filter
would let a refused request through to the host.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from aiohttp import web

from ..conftest import Bed
from ..support.aioserver import serving
from ..support.client import request, websocket_roundtrip
from ..support.oauth2_proxy import OAuth2Proxy
from ..support.oidc_issuer import OIDCIssuer
from ..support.process import free_port
from ..support.traefik import Traefik

USER_HEADER = "X-Deskfleet-User"
CONTROLS_HEADER = "X-Deskfleet-Controls"


@dataclass
class StandInPortalAuthorizer:
    """Stands in for the portal's authorization endpoint: answers `status` (200 allows,
    with the identity and controls headers) and records each request's headers."""

    status: int = 200
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> web.Application:
        async def authz(request: web.Request) -> web.Response:
            with self.lock:
                self.seen.append({"path": request.path, "peer": request.remote,
                                  "headers": dict(request.headers)})
                status = self.status
            if status == 200:
                return web.Response(status=200, headers={
                    USER_HEADER: "alice", CONTROLS_HEADER: "clipboard=off;printing=off"})
            return web.Response(status=status, text=f"stand-in portal says {status}")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", authz)
        return app

    def last(self) -> dict[str, Any]:
        with self.lock:
            return self.seen[-1]


@pytest.fixture
def authorizer() -> Iterator[StandInPortalAuthorizer]:
    authz = StandInPortalAuthorizer()
    with serving(authz.app(), "127.0.0.1", free_port()) as url:
        authz.url = url
        yield authz


def desk_service(bed: Bed, namespace: str) -> None:
    """A Service for stand-in session hosts; its ClusterIP is a loopback address."""
    bed.apply([{"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "desk", "namespace": namespace},
                "spec": {"selector": {"app": "desk"},
                         "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}}])


def header_values(host_answer: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in host_answer["headers"] if k.lower() == name.lower()]


def assert_guarded(traefik: Traefik, authz: StandInPortalAuthorizer, hosts: Any,
                   host: str) -> None:
    """Through `host`, /epr reaches the stand-in host only when the authorizer says 200;
    a client's forged identity header is replaced by the authorizer's."""
    authz.status = 200
    forged = {USER_HEADER: "mallory", CONTROLS_HEADER: "clipboard=on"}
    r = traefik.wait_served(host, "/epr/chart", until=lambda r: r.status == 200,
                            headers=forged)
    answer = r.json()
    assert answer["host"] == "desk" and answer["path"] == "/epr/chart"
    assert header_values(answer, USER_HEADER) == ["alice"]
    assert header_values(answer, CONTROLS_HEADER) == ["clipboard=off;printing=off"]
    assert authz.last()["headers"].get(USER_HEADER) == "mallory"  # it saw the client's

    for status in (401, 403):
        authz.status = status
        before = len(hosts.requests)
        r = traefik.get(host, "/epr/chart")
        assert r.status == status, r.text
        assert "stand-in portal says" in r.text
        assert len(hosts.requests) == before, "a refused request reached the host"


def test_httproute_extensionref_forwardauth_guards_the_host(
        bed: Bed, namespace: str, traefik: Traefik, authorizer: StandInPortalAuthorizer,
        stand_in_hosts: Any) -> None:
    desk_service(bed, namespace)
    hosts = stand_in_hosts(namespace, "desk")
    host = f"{namespace}.gateway.test"
    bed.apply([
        {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware",
         "metadata": {"name": "portal-auth", "namespace": namespace},
         "spec": {"forwardAuth": {"address": f"{authorizer.url}/authz/epr",
                                  "authResponseHeaders": [USER_HEADER, CONTROLS_HEADER]}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "epr", "namespace": namespace},
         "spec": {"parentRefs": [traefik.parent_ref()], "hostnames": [host],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/epr"}}],
                             "filters": [{"type": "ExtensionRef", "extensionRef": {
                                 "group": "traefik.io", "kind": "Middleware",
                                 "name": "portal-auth"}}],
                             "backendRefs": [{"name": "desk", "port": 8080}]}]}},
    ])
    assert_guarded(traefik, authorizer, hosts, host)
    # Traefik calls the configured address, not the original path, and says where the
    # request was going in X-Forwarded-*.
    seen = authorizer.last()
    assert seen["path"] == "/authz/epr"
    assert seen["headers"]["X-Forwarded-Uri"] == "/epr/chart"
    assert seen["headers"]["X-Forwarded-Host"] == host
    assert seen["headers"]["X-Forwarded-Method"] == "GET"
    # A session's WebSocket passes the same check.
    authorizer.status = 200
    greeting, echo = websocket_roundtrip(f"ws://127.0.0.1:{traefik.port}/epr/ws", host=host,
                                         message="keystrokes")
    assert greeting["websocket"] and header_values(greeting, USER_HEADER) == ["alice"]
    assert echo == "keystrokes"


def test_ingress_nginx_auth_url_guards_the_host(
        bed: Bed, namespace: str, traefik: Traefik, authorizer: StandInPortalAuthorizer,
        stand_in_hosts: Any) -> None:
    desk_service(bed, namespace)
    hosts = stand_in_hosts(namespace, "desk")
    host = f"{namespace}.ingress.test"
    bed.apply([{
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "epr", "namespace": namespace, "annotations": {
            "nginx.ingress.kubernetes.io/auth-url": f"{authorizer.url}/authz/epr",
            "nginx.ingress.kubernetes.io/auth-response-headers":
                f"{USER_HEADER},{CONTROLS_HEADER}",
            # dial the Service's ClusterIP: EndpointSlices cannot hold loopback addresses
            "nginx.ingress.kubernetes.io/service-upstream": "true"}},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [{
            "path": "/epr", "pathType": "Prefix",
            "backend": {"service": {"name": "desk", "port": {"number": 8080}}}}]}}]},
    }])
    assert_guarded(traefik, authorizer, hosts, host)


def test_oauth2_proxy_answers_for_a_bearer_token(oauth2_proxy: OAuth2Proxy,
                                                oidc_issuer: OIDCIssuer) -> None:
    token = oidc_issuer.mint_id_token("alice")
    r = request(oauth2_proxy.auth_url, headers={"Authorization": f"Bearer {token}"})
    assert r.status == 202, r.text
    assert r.headers["X-Auth-Request-User"] == "alice"
    assert r.headers["X-Auth-Request-Email"] == "alice@northgate.example"
    assert r.headers["X-Auth-Request-Groups"] == "clinicians,northgate-staff"
    assert r.headers["Authorization"] == f"Bearer {token}"  # the amr claim rides in it

    assert request(oauth2_proxy.auth_url).status == 401
    expired = oidc_issuer.mint_id_token("alice", expires_in=-60)
    assert request(oauth2_proxy.auth_url,
                   headers={"Authorization": f"Bearer {expired}"}).status == 401
    foreign = oidc_issuer.mint_id_token("alice", audience="someone-else")
    assert request(oauth2_proxy.auth_url,
                   headers={"Authorization": f"Bearer {foreign}"}).status == 401


def test_oauth2_proxy_signs_in_through_the_issuer(oauth2_proxy: OAuth2Proxy,
                                                 oidc_issuer: OIDCIssuer) -> None:
    """The authorization-code flow (PKCE S256) a browser goes through, step by step."""
    start = request(f"{oauth2_proxy.signin_url}?rd=/epr/")
    assert start.status == 302
    csrf = "; ".join(c.split(";")[0] for c in start.headers.get_all("Set-Cookie") or [])
    authorize = urllib.parse.urlsplit(start.headers["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == oidc_issuer.url
    assert "code_challenge_method=S256" in authorize.query
    to_callback = request(f"{start.headers['Location']}&login_hint=bob")
    assert to_callback.status == 302, to_callback.text
    callback = request(to_callback.headers["Location"], headers={"Cookie": csrf})
    assert callback.status == 302 and callback.headers["Location"] == "/epr/", callback.text
    session = "; ".join(c.split(";")[0] for c in callback.headers.get_all("Set-Cookie") or [])
    r = request(oauth2_proxy.auth_url, headers={"Cookie": session})
    assert r.status == 202
    assert r.headers["X-Auth-Request-User"] == "bob"
    assert r.headers["X-Auth-Request-Groups"] == "northgate-staff"


def test_client_source_address_reaches_the_authorizer(
        bed: Bed, namespace: str, traefik: Traefik, authorizer: StandInPortalAuthorizer,
        stand_in_hosts: Any, test_country_db: Path) -> None:
    """A client at 127.0.10.5 (GB in the test country database) is seen as such by the
    authorizer behind Traefik, and cannot claim another address."""
    desk_service(bed, namespace)
    stand_in_hosts(namespace, "desk")
    host = f"{namespace}.gateway.test"
    bed.apply([
        {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware",
         "metadata": {"name": "portal-auth", "namespace": namespace},
         "spec": {"forwardAuth": {"address": f"{authorizer.url}/authz/epr"}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "epr", "namespace": namespace},
         "spec": {"parentRefs": [traefik.parent_ref()], "hostnames": [host],
                  "rules": [{"filters": [{"type": "ExtensionRef", "extensionRef": {
                      "group": "traefik.io", "kind": "Middleware", "name": "portal-auth"}}],
                             "backendRefs": [{"name": "desk", "port": 8080}]}]}},
    ])
    traefik.wait_served(host, "/", until=lambda r: r.status == 200, source="127.0.10.5")
    seen = authorizer.last()["headers"]
    assert seen["X-Forwarded-For"] == "127.0.10.5"
    with maxminddb.open_database(str(test_country_db)) as countries:
        assert countries.get(seen["X-Forwarded-For"]) == {"country": {"iso_code": "GB"}}
        assert countries.get("127.0.20.9") == {"country": {"iso_code": "FR"}}
        assert countries.get("127.0.0.1") is None

    # A forged X-Forwarded-For from an untrusted client is not what the authorizer sees.
    r = traefik.get(host, "/", source="127.0.10.5", headers={"X-Forwarded-For": "127.0.20.9"})
    assert r.status == 200
    assert authorizer.last()["headers"]["X-Forwarded-For"] == "127.0.10.5"


def test_browser_signs_in_through_oauth2_proxy(browser: Any, oauth2_proxy: OAuth2Proxy,
                                               oidc_issuer: OIDCIssuer,
                                               tmp_path: Path) -> None:
    """Headless Chromium (Playwright as the driver) loads loopback pages: the issuer's
    sign-in page, a click, oauth2-proxy's callback, and a screenshot."""
    page = browser.new_page()
    page.goto(f"{oauth2_proxy.signin_url}?rd=/")
    page.wait_for_selector("text=Test identity provider")
    shot = tmp_path / "signin.png"
    page.screenshot(path=str(shot))
    page.click("button[value=carol]")
    page.wait_for_url(f"{oauth2_proxy.url}/")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 2000
    assert "carol" in oidc_issuer.logins
    # The session cookie (split in chunks when large) signs the browser in.
    session = "; ".join(f"{c['name']}={c['value']}" for c in browser.cookies()
                        if c["name"].startswith(oauth2_proxy.cookie_name))
    assert session
    r = request(oauth2_proxy.auth_url, headers={"Cookie": session})
    assert r.status == 202 and r.headers["X-Auth-Request-User"] == "carol"


@pytest.mark.usefixtures("gateway_api_experimental", "envoy_gateway_crds")
def test_experimental_and_envoy_gateway_crds_validate_auth_objects(bed: Bed,
                                                                 namespace: str) -> None:
    """The API server knows HTTPRoute's ExternalAuth filter and Envoy Gateway's
    SecurityPolicy extAuth, and validates them (a bad one is refused)."""
    backend = {"name": "portal", "port": 8080}
    route: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "epr", "namespace": namespace},
        "spec": {"parentRefs": [{"name": "eg"}], "rules": [{
            "filters": [{"type": "ExternalAuth", "externalAuth": {
                "protocol": "HTTP", "backendRef": backend,
                "http": {"path": "/authz/epr",
                         "allowedHeaders": ["Cookie", "X-Forwarded-For"],
                         "allowedResponseHeaders": [USER_HEADER]}}}],
            "backendRefs": [{"name": "desk", "port": 8080}]}]}}
    policy = {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy",
              "metadata": {"name": "epr", "namespace": namespace},
              "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io",
                                       "kind": "HTTPRoute", "name": "epr"}],
                       "extAuth": {"failOpen": False, "headersToExtAuth": [
                           "cookie", "authorization", "x-forwarded-for"],
                           "http": {"backendRefs": [backend], "path": "/authz/epr",
                                    "headersToBackend": [USER_HEADER]}}}}
    bed.apply([route, policy], dry_run=True)
    bad_route = {**route, "spec": {**route["spec"], "rules": [{"filters": [
        {"type": "ExternalAuth", "externalAuth": {"protocol": "SMTP",
                                                  "backendRef": backend}}]}]}}
    refused = bed.apply([bad_route], dry_run=True, check=False)
    assert refused.returncode != 0 and "protocol" in refused.stderr, refused.stderr
