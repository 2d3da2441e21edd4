"""The portal's HTTP handlers: the authorization endpoint gateways call, the landing
page, launches, and the internal endpoints (metrics, health, stats).

Each handler reads the request, asks the pure parts (identity, client, authorize,
pages) and writes one answer, one audit line and its metrics. Anything unexpected is a
refusal (fail closed), counted and logged with the request id the user is shown.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import contracts
from ..policy import Request
from . import metrics as m
from .audit import AuditLog, audit_record
from .authorize import (
    DENY,
    FAIL_CLOSED,
    UNAUTHENTICATED,
    Verdict,
    authorize,
    check_data,
    fail_closed,
    find_app,
    unauthenticated,
)
from .client import GeoIP, client_address, country_of, is_trusted, networks
from .directory import AppEntry, Directory, NamespaceView
from .identity import (
    Identity,
    IdentityProblem,
    IdentityResolver,
    IdentityUnavailable,
    TokenVerifier,
)
from .pages import (
    HINT_TEXT,
    SECURITY_HEADERS,
    Chrome,
    Link,
    Tile,
    landing_page,
    message_page,
    safe_icon,
    with_query,
)
from .settings import PortalSettings
from .stats import Stats

log = logging.getLogger("deskfleet.portal")

WAIT_REFRESH_SECONDS = 5


@dataclass
class Portal:
    settings: PortalSettings
    directory: Directory
    resolver: IdentityResolver
    verifier: TokenVerifier | None = None
    geoip: GeoIP | None = None
    audit: AuditLog = field(default_factory=AuditLog)
    stats: Stats = field(default_factory=Stats)
    countries: m.CountryMemory = field(default_factory=m.CountryMemory)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.trusted = networks(self.settings.trusted_proxies)
        m.DATA_AGE.set_function(lambda: self.directory.age(self.monotonic()))
        m.READY.set_function(lambda: 0.0 if self.unready_reason() else 1.0)

    # --- shared steps --------------------------------------------------------------

    def chrome(self, identity: Identity | None = None) -> Chrome:
        return Chrome(title=self.settings.title, user=identity.user if identity else None,
                      mfa=bool(identity and identity.mfa),
                      signout_url=self.settings.signout_url)

    def unready_reason(self) -> str:
        """Why the portal cannot decide now ("" when it can)."""
        verdict = check_data(self.directory.age(self.monotonic()),
                             self.settings.max_data_age_seconds)
        return verdict.detail if verdict else ""

    def view(self, namespace: str) -> NamespaceView | None:
        served = self.settings.namespaces
        if served and namespace not in served:
            return None
        return self.directory.view(namespace)

    def where_from(self, request: web.Request) -> tuple[str, str | None, bool]:
        peer = request.remote or ""
        trusted = is_trusted(peer, self.trusted)
        address = client_address(peer, request.headers, self.trusted,
                                 self.settings.trusted_hops)
        country = country_of(address, request.headers, trusted,
                             self.settings.country_header, self.geoip)
        return address, country, trusted

    def record(self, *, request_id: str, namespace: str, app_name: str,
               identity: Identity | None, address: str, country: str | None,
               verdict: Verdict, kind: str) -> None:
        known = verdict.app is not None
        m.DECISIONS.labels(namespace if known else m.UNKNOWN,
                           app_name if known else m.UNKNOWN,
                           verdict.outcome, verdict.reason).inc()
        m.DECISIONS_BY_COUNTRY.labels(country or "unknown", verdict.outcome).inc()
        if verdict.outcome == FAIL_CLOSED or verdict.reason == "token-invalid":
            m.FAIL_CLOSED.labels(verdict.reason).inc()
            log.warning("refused (fail closed) %s/%s: %s [%s]", namespace, app_name,
                        verdict.detail, request_id)
        if identity is not None and self.countries.is_new(identity.user, country):
            m.NEW_COUNTRY.labels(country or "unknown").inc()
        if verdict.decision is not None:
            for policy in self.stats.dry_run(namespace, verdict.decision):
                m.DRY_RUN_DIFFERENCES.labels(namespace, policy).inc()
        self.audit.write(audit_record(
            request_id=request_id, when=self.clock(), namespace=namespace, app=app_name,
            identity=identity, client_ip=address, country=country, verdict=verdict,
            kind=kind))

    async def decide(self, request: web.Request, namespace: str, app_name: str
                     ) -> tuple[Verdict, Identity | None, str, str | None]:
        """The whole authorization of one request, never raising."""
        identity = None
        address, country = request.remote or "", None
        try:
            address, country, peer_trusted = self.where_from(request)
            refusal = check_data(self.directory.age(self.monotonic()),
                                 self.settings.max_data_age_seconds)
            if refusal is not None:
                return refusal, None, address, country
            view = self.view(namespace)
            found = find_app(view, app_name)
            if isinstance(found, Verdict):
                return found, None, address, country
            assert view is not None
            try:
                identity = await self.resolver.resolve(request.headers, peer_trusted)
            except IdentityUnavailable as err:
                return fail_closed(err.reason, err.detail, 503, found), None, address, country
            except IdentityProblem as err:
                return unauthenticated(err.reason, err.detail, found), None, address, country
            asked = Request(user=identity.user, groups=identity.groups, source_ip=address,
                            country=country, mfa=identity.mfa, time=self.clock())
            return authorize(view, found, asked), identity, address, country
        except Exception as err:  # fail closed, say why in the log
            log.exception("authorization of %s/%s failed", namespace, app_name)
            return fail_closed("error", f"internal error: {type(err).__name__}"), identity, \
                address, country

    # --- the authorization endpoint ------------------------------------------------

    async def authz(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        namespace, app_name = request.match_info["namespace"], request.match_info["app"]
        request_id = uuid.uuid4().hex[:16]
        verdict, identity, address, country = await self.decide(request, namespace, app_name)
        try:
            self.record(request_id=request_id, namespace=namespace, app_name=app_name,
                        identity=identity, address=address, country=country,
                        verdict=verdict, kind="authz")
            response = self.authz_answer(request, verdict, identity, request_id)
        except Exception:
            log.exception("answering the authorization of %s/%s failed", namespace, app_name)
            m.FAIL_CLOSED.labels("error").inc()
            response = web.Response(status=503, text="unavailable")
        m.DECISION_SECONDS.observe(time.perf_counter() - started)
        return response

    def authz_answer(self, request: web.Request, verdict: Verdict, identity: Identity | None,
                     request_id: str) -> web.StreamResponse:
        if verdict.allowed:
            assert identity is not None and verdict.decision is not None
            controls = verdict.decision.controls
            assert controls is not None
            return web.Response(status=200, headers={
                contracts.USER_HEADER: quote(identity.user, safe="@._-+~"),
                contracts.GROUPS_HEADER: json.dumps(sorted(identity.groups)),
                contracts.MFA_HEADER: "true" if identity.mfa else "false",
                contracts.CONTROLS_HEADER: json.dumps(controls.wire(), separators=(",", ":")),
                contracts.POLICIES_HEADER: ",".join(verdict.decision.decided_by),
                contracts.REQUEST_ID_HEADER: request_id,
            })
        back = original_url(request, verdict.app)
        if verdict.outcome == UNAUTHENTICATED:
            return self.signin_answer(back, request_id)
        if "text/html" not in request.headers.get("Accept", ""):
            # Not a page load (a script's request, a WebSocket, a health check): the
            # status says it all, and rendering a page for each would cost more than
            # the decision.
            return web.Response(status=verdict.status, text=f"{verdict.outcome}\n",
                                headers={contracts.REQUEST_ID_HEADER: request_id})
        if verdict.outcome == DENY:
            return self.html(403, self.refusal_page(verdict, back, request_id, identity))
        if verdict.reason == "unknown-app":
            return self.html(403, message_page(
                self.chrome(identity), "This application is not published",
                ["Check the address, or open the workspace's home page."],
                [Link(self.settings.public_url, "Your applications")], request_id))
        return self.html(verdict.status, message_page(
            self.chrome(identity), "The workspace cannot check your access right now",
            ["Please try again in a minute. If it persists, contact the IT service desk "
             "and give them the reference below."], [], request_id))

    def signin_answer(self, back: str, request_id: str) -> web.StreamResponse:
        """401 (gateways that know `auth-signin` redirect on their own); browsers get a
        page that forwards them to sign in and come back."""
        target = with_query(self.settings.signin_url, rd=back) if self.settings.signin_url \
            else ""
        page = message_page(self.chrome(), "Please sign in",
                            ["Sign in with your organisation account to continue."],
                            [Link(target, "Sign in")] if target else [], request_id,
                            refresh_url=target)
        response = self.html(401, page)
        response.headers["WWW-Authenticate"] = 'Bearer realm="deskfleet"'
        return response

    def refusal_page(self, verdict: Verdict, back: str, request_id: str,
                     identity: Identity | None) -> str:
        name = verdict.app.display_name if verdict.app else "this application"
        lines = [HINT_TEXT[h] for h in verdict.hints if h in HINT_TEXT]
        links = []
        if verdict.step_up:
            target = self.settings.step_up_url or self.settings.signin_url
            if target:
                links.append(Link(with_query(target, rd=back), "Sign in with MFA"))
        links.append(Link(self.settings.public_url, "Your applications"))
        return message_page(self.chrome(identity), f"You cannot open {name} right now",
                            lines, links, request_id)

    @staticmethod
    def html(status: int, body: str) -> web.Response:
        return web.Response(status=status, text=body, content_type="text/html",
                            charset="utf-8", headers=SECURITY_HEADERS)

    # --- the landing page and launches ---------------------------------------------

    async def whoami(self, request: web.Request
                     ) -> tuple[Identity | None, web.StreamResponse | None]:
        """The signed-in user of a page request, or the answer that sends them to sign in."""
        _, _, trusted = self.where_from(request)
        try:
            return await self.resolver.resolve(request.headers, trusted), None
        except IdentityUnavailable as err:
            m.FAIL_CLOSED.labels(err.reason).inc()
            log.warning("cannot identify a landing page visitor: %s", err.detail)
            return None, self.html(503, message_page(
                self.chrome(), "The workspace cannot check who you are right now",
                ["Please try again in a minute."]))
        except IdentityProblem:
            return None, self.to_signin(request)

    def to_signin(self, request: web.Request) -> web.StreamResponse:
        """A page of the portal's own, for someone not signed in: off to sign in, and back."""
        public = self.settings.public_url
        back = public.rstrip("/") + request.path_qs if public.startswith("http") \
            else request.path_qs
        if self.settings.signin_url:
            return web.Response(status=302, headers={
                "Location": with_query(self.settings.signin_url, rd=back), **SECURITY_HEADERS})
        return self.signin_answer(back, "")

    async def landing(self, request: web.Request) -> web.StreamResponse:
        identity, answer = await self.whoami(request)
        if answer is not None:
            return answer
        assert identity is not None
        if self.unready_reason():
            return self.html(503, message_page(
                self.chrome(identity), "The workspace is starting",
                ["Your applications will be listed in a moment."],
                refresh_url=request.path_qs, refresh_seconds=WAIT_REFRESH_SECONDS))
        address, country, _ = self.where_from(request)
        asked = Request(user=identity.user, groups=identity.groups, source_ip=address,
                        country=country, mfa=identity.mfa, time=self.clock())
        tiles = []
        for namespace in self.settings.namespaces or self.directory.namespace_names():
            view = self.view(namespace)
            if view is None:
                continue
            for app in view.apps.values():
                tile = self.tile(view, app, asked, request.path_qs)
                if tile is not None:
                    tiles.append(tile)
        return self.html(200, landing_page(self.chrome(identity), tiles))

    def tile(self, view: NamespaceView, app: AppEntry, asked: Request, here: str
             ) -> Tile | None:
        """The app as this user sees it now: openable, behind MFA, or not shown."""
        verdict = authorize(view, app, asked)
        if not (verdict.allowed or verdict.step_up):
            return None
        pool = view.pool_of(app)
        step_up_target = self.settings.step_up_url or self.settings.signin_url
        back = self.settings.public_url if self.settings.public_url.startswith("http") \
            else here
        return Tile(
            namespace=app.namespace, name=app.name, display_name=app.display_name,
            description=app.description, category=app.category, icon=safe_icon(app.icon),
            available=bool(pool and pool.ready), step_up=not verdict.allowed,
            step_up_href=with_query(step_up_target, rd=back) if step_up_target else "")

    async def launch(self, request: web.Request) -> web.StreamResponse:
        """Open an app from the landing page: the same decision as the gateway's, then
        either off to the app, or a page that waits for a host (the launch is counted
        as demand, so the autoscaler starts one)."""
        namespace, app_name = request.match_info["namespace"], request.match_info["app"]
        request_id = uuid.uuid4().hex[:16]
        verdict, identity, address, country = await self.decide(request, namespace, app_name)
        if verdict.outcome == UNAUTHENTICATED:
            return self.to_signin(request)
        self.record(request_id=request_id, namespace=namespace, app_name=app_name,
                    identity=identity, address=address, country=country, verdict=verdict,
                    kind="launch")
        if verdict.outcome == DENY:
            return self.html(403, self.refusal_page(verdict, self.settings.public_url,
                                                    request_id, identity))
        if not verdict.allowed:
            return self.authz_answer(request, verdict, identity, request_id)
        assert identity is not None and verdict.app is not None
        app = verdict.app
        view = self.view(namespace)
        pool = view.pool_of(app) if view else None
        served = bool(pool and pool.ready and pool.free_slots > 0)
        self.stats.launch(namespace, app.pool, app.name, identity.user, served,
                          self.monotonic())
        m.LAUNCHES.labels(namespace, app.pool, "started" if served else "waiting").inc()
        if served:
            return web.Response(status=302, headers={"Location": app.url,
                                                     **SECURITY_HEADERS})
        return self.html(200, message_page(
            self.chrome(identity), f"Starting {app.display_name}",
            ["A host is being started for you. This page opens the application as soon as "
             "it is ready; you do not need to do anything."],
            [Link(self.settings.public_url, "Back to your applications")], request_id,
            refresh_url=request.path_qs, refresh_seconds=WAIT_REFRESH_SECONDS))

    # --- internal endpoints ----------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        reason = self.unready_reason()
        if reason:
            return web.Response(status=503, text=f"not ready: {reason}; every request is "
                                "refused until this clears (fail closed)")
        return web.Response(text="ok")

    async def stats_endpoint(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats.snapshot(self.monotonic()))

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(body=generate_latest(m.REGISTRY))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response


def original_url(request: web.Request, app: AppEntry | None) -> str:
    """Where the user was going, from what the gateway forwarded (Traefik:
    X-Forwarded-Proto/-Host/-Uri; ingress-nginx: X-Original-URL), if it is on the app's
    own host; else the app's URL. Used only as the sign-in's return address."""
    headers = request.headers
    candidate = headers.get("X-Original-URL", "")
    if not candidate and headers.get("X-Forwarded-Host"):
        candidate = (f"{headers.get('X-Forwarded-Proto', 'https')}://"
                     f"{headers['X-Forwarded-Host']}{headers.get('X-Forwarded-Uri', '/')}")
    if app is None:
        return candidate or "/"
    if candidate and urlsplit(candidate).hostname == urlsplit(app.url).hostname:
        return candidate
    return app.url


def build_apps(portal: Portal) -> tuple[web.Application, web.Application]:
    """The public application and the internal one (metrics, health, stats)."""
    public = web.Application()
    authz = f"{contracts.AUTHZ_PREFIX}/{{namespace}}/{{app}}"
    public.router.add_route("*", authz, portal.authz)
    public.router.add_route("*", authz + "/{tail:.*}", portal.authz)
    public.router.add_get("/", portal.landing)
    public.router.add_get("/launch/{namespace}/{app}", portal.launch)
    internal = web.Application()
    internal.router.add_get("/metrics", portal.metrics)
    internal.router.add_get("/healthz", portal.healthz)
    internal.router.add_get("/readyz", portal.readyz)
    internal.router.add_get("/v1/stats", portal.stats_endpoint)
    return public, internal


def describe(portal: Portal) -> dict[str, Any]:
    """What the portal was started with, for its first log line."""
    s = portal.settings
    return {"namespaces": s.namespaces or "all", "oidcIssuer": s.oidc_issuer or None,
            "authProxy": s.auth_proxy_url or None, "trustedProxies": s.trusted_proxies,
            "identityHeaders": s.trust_identity_headers, "trustedHops": s.trusted_hops,
            "geoip": str(s.geoip_database) if s.geoip_database else None,
            "countryHeader": s.country_header or None,
            "maxDataAgeSeconds": s.max_data_age_seconds}
