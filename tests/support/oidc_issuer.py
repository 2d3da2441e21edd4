"""A small OpenID Connect issuer for tests, on a loopback address.

It serves what a relying party (oauth2-proxy, the portal) needs, and signs with a test
RSA key generated per run:

    GET  /.well-known/openid-configuration   discovery
    GET  /jwks                               the public key
    GET  /authorize                          authorization-code login: signs a configured
                                             test user in (auto_login, or login_hint), or
                                             shows a page with one button per user
    POST /authorize                          the button: {user, + the original params}
    POST /token                              authorization_code (PKCE S256/plain
                                             checked) and refresh_token grants
    GET  /userinfo                           the user's claims, for a Bearer access token

and tests mint tokens directly with `mint_id_token`. Claims: iss, sub, aud, iat, exp,
email, email_verified, name, preferred_username, groups, amr (MFA means `amr` holds
"mfa" or "otp"), and nonce when the login asked for one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from .aioserver import serving
from .process import free_port

MFA_AMR = ("pwd", "otp", "mfa")  # a sign-in with a second factor
PASSWORD_AMR = ("pwd",)  # a password only


@dataclass(frozen=True)
class TestUser:
    """A directory user the issuer can sign in."""

    __test__ = False  # not a pytest test class

    sub: str
    email: str
    groups: tuple[str, ...] = ()
    amr: tuple[str, ...] = PASSWORD_AMR
    name: str = ""

    def claims(self) -> dict[str, Any]:
        return {"sub": self.sub, "email": self.email, "email_verified": True,
                "name": self.name or self.sub, "preferred_username": self.sub,
                "groups": list(self.groups), "amr": list(self.amr)}


@dataclass
class _Grant:
    user: TestUser
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    challenge_method: str


@dataclass
class OIDCIssuer:
    """The issuer's state; `url` is set once it serves. Tests may change `auto_login`,
    `id_token_ttl` and `users` while it runs."""

    users: dict[str, TestUser]
    client_id: str = "deskfleet-test"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    id_token_ttl: int = 300
    auto_login: str | None = None  # sign this user in without showing the page
    url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(
        2048, parameters={"kid": f"test-{secrets.token_hex(4)}", "use": "sig",
                          "alg": "RS256"}, private=True))
    logins: list[str] = field(default_factory=list)  # who signed in through /authorize
    _codes: dict[str, _Grant] = field(default_factory=dict)
    _refresh: dict[str, tuple[TestUser, str]] = field(default_factory=dict)
    _access: dict[str, TestUser] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- tokens ------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def mint_id_token(self, user: TestUser | str, *, audience: str | None = None,
                      expires_in: int | None = None, nonce: str | None = None,
                      **extra_claims: Any) -> str:
        """An ID token for `user` (a TestUser or the name of a configured one), signed
        with the issuer's key. `expires_in` may be negative (an expired token); extra
        claims are added or override (e.g. amr=["pwd", "otp"], groups=[...])."""
        if isinstance(user, str):
            user = self.users[user]
        now = int(time.time())
        ttl = self.id_token_ttl if expires_in is None else expires_in
        claims: dict[str, Any] = {"iss": self.url, "aud": audience or self.client_id,
                                  "iat": now, "exp": now + ttl, **user.claims()}
        if nonce:
            claims["nonce"] = nonce
        claims.update(extra_claims)
        return jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims,
                          self.key)

    def _tokens(self, user: TestUser, client_id: str, nonce: str | None) -> dict[str, Any]:
        access = self.mint_id_token(user, audience=client_id)
        refresh = secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = user
            self._refresh[refresh] = (user, client_id)
        return {"access_token": access, "token_type": "Bearer",
                "expires_in": self.id_token_ttl, "refresh_token": refresh,
                "id_token": self.mint_id_token(user, audience=client_id, nonce=nonce),
                "scope": "openid email profile groups"}

    # -- HTTP --------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        u = self.url
        return {
            "issuer": u, "authorization_endpoint": f"{u}/authorize",
            "token_endpoint": f"{u}/token", "jwks_uri": f"{u}/jwks",
            "userinfo_endpoint": f"{u}/userinfo",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "claims_supported": ["sub", "email", "email_verified", "name",
                                 "preferred_username", "groups", "amr", "nonce"],
        }

    def app(self) -> web.Application:
        async def discovery(_: web.Request) -> web.Response:
            return web.json_response(self.discovery())

        async def jwks(_: web.Request) -> web.Response:
            return web.json_response(self.jwks())

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/jwks", jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/userinfo", self._userinfo)
        return app

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
        if client_id != self.client_id or not redirect_uri:
            return web.Response(status=400, text="unknown client_id or no redirect_uri")
        if params.get("response_type", "code") != "code":
            return web.Response(status=400, text="only response_type=code")
        name = params.get("user") or params.get("login_hint") or self.auto_login
        if not name:
            return web.Response(text=self._login_page(params), content_type="text/html")
        if name not in self.users:
            return web.Response(status=403, text=f"no such test user {name!r}")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(self.users[name], client_id, redirect_uri,
                                       params.get("nonce"), params.get("code_challenge"),
                                       params.get("code_challenge_method", "plain"))
            self.logins.append(name)
        query = {"code": code, **({"state": params["state"]} if "state" in params else {})}
        sep = "&" if "?" in redirect_uri else "?"
        raise web.HTTPFound(f"{redirect_uri}{sep}{urllib.parse.urlencode(query)}")

    def _login_page(self, params: dict[str, str]) -> str:
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" '
                         f'value="{html.escape(v)}">' for k, v in params.items()
                         if k != "user")
        buttons = "".join(
            f'<p><button type="submit" name="user" value="{html.escape(n)}">'
            f'Sign in as {html.escape(u.name or n)} ({html.escape(u.email)})</button></p>'
            for n, u in self.users.items())
        return ("<!doctype html><html><head><title>Test identity provider</title></head>"
                "<body><h1>Test identity provider</h1>"
                f'<form method="post" action="/authorize">{hidden}{buttons}</form>'
                "</body></html>")

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            raw = base64.b64decode(auth[6:]).decode()
            cid, _, secret = raw.partition(":")
            client_id, client_secret = (urllib.parse.unquote_plus(cid),
                                        urllib.parse.unquote_plus(secret))
        if client_id != self.client_id or client_secret != self.client_secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self._lock:
                grant = self._codes.pop(form.get("code", ""), None)
            if (grant is None or grant.client_id != client_id
                    or grant.redirect_uri != form.get("redirect_uri")
                    or not _pkce_ok(grant, form.get("code_verifier"))):
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(self._tokens(grant.user, client_id, grant.nonce))
        if grant_type == "refresh_token":
            with self._lock:
                held = self._refresh.pop(form.get("refresh_token", ""), None)
            if held is None or held[1] != client_id:
                return web.json_response({"error": "invalid_grant"}, status=400)
            user = self.users.get(held[0].sub, held[0])  # a changed user takes effect
            return web.json_response(self._tokens(user, client_id, None))
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    async def _userinfo(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            user = self._access.get(token)
        if user is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(user.claims())


def _pkce_ok(grant: _Grant, verifier: str | None) -> bool:
    if grant.challenge is None:
        return True
    if verifier is None:
        return False
    if grant.challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == grant.challenge
    return verifier == grant.challenge


@contextlib.contextmanager
def running_issuer(users: Iterable[TestUser], *, host: str = "127.0.0.1",
                   port: int | None = None, client_id: str = "deskfleet-test",
                   auto_login: str | None = None,
                   id_token_ttl: int = 300) -> Iterator[OIDCIssuer]:
    """Serve a test issuer for `users` (keyed by `sub`) on host:port until the block
    ends. Its issuer URL is `issuer.url` (http://host:port, no path)."""
    issuer = OIDCIssuer(users={u.sub: u for u in users}, client_id=client_id,
                        auto_login=auto_login, id_token_ttl=id_token_ttl)
    port = port or free_port()
    issuer.url = f"http://{host}:{port}"
    with serving(issuer.app(), host, port):
        yield issuer


# Users the gateway tests sign in as (the issuer fixture serves these).
TEST_USERS = (
    TestUser("alice", "alice@northgate.example", ("clinicians", "northgate-staff"),
             amr=MFA_AMR, name="Alice Clinician"),
    TestUser("bob", "bob@northgate.example", ("northgate-staff",), amr=PASSWORD_AMR,
             name="Bob Porter"),
    TestUser("carol", "carol@northgate.example", ("it-admins",), amr=MFA_AMR,
             name="Carol Admin"),
)
