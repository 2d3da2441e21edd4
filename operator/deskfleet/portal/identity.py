"""Who is asking: a verified OIDC token, the authenticating proxy's answer for the
request's sign-in cookie, or (only from trusted proxies, only if enabled) its identity
headers. Nothing a client can type into a header is identity by itself.

Every failure is an exception whose `reason` is a short code for the metrics and the
audit line; callers turn `NotSignedIn`/`InvalidCredentials` into 401 (the gateway
sends the user to sign in) and `IdentityUnavailable` into a fail-closed refusal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import aiohttp
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from .settings import PortalSettings

log = logging.getLogger("deskfleet.portal.identity")

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA"]
JWKS_REFRESH_SECONDS = 600.0  # key rotation is picked up within this
JWKS_MIN_REFETCH_SECONDS = 30.0  # an unknown `kid` triggers a fetch at most this often

# oauth2-proxy's names (`--set-xauthrequest`); ingress-nginx's auth-response-headers and
# Traefik's authResponseHeaders conventionally carry the same.
USER_HEADER = "X-Auth-Request-User"
EMAIL_HEADER = "X-Auth-Request-Email"
GROUPS_HEADER = "X-Auth-Request-Groups"
TOKEN_HEADER = "X-Auth-Request-Access-Token"


@dataclass(frozen=True)
class Identity:
    user: str
    groups: frozenset[str]
    mfa: bool
    source: str  # "token", "auth-proxy" or "headers"


class IdentityProblem(Exception):
    reason = "identity"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotSignedIn(IdentityProblem):
    reason = "not-signed-in"


class InvalidCredentials(IdentityProblem):
    """A token that fails verification (bad signature, expired, wrong issuer...)."""

    reason = "token-invalid"


class ExpiredCredentials(InvalidCredentials):
    """A token that was good and has expired: routine, the user signs in again."""

    reason = "token-expired"


class IdentityUnavailable(IdentityProblem):
    """The portal cannot tell at the moment (no keys, the proxy does not answer)."""

    reason = "identity-unavailable"


K = TypeVar("K")
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """A bounded LRU of values that each expire at their own time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K, now: float) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: K, value: V, expires_at: float) -> None:
        self._items[key] = (expires_at, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def read_jwks(text: str, source: str) -> KeySet:
    try:
        data = json.loads(text)
        keys = KeySet.import_key_set(data)
    except (ValueError, KeyError, TypeError, JoseError) as err:
        raise ValueError(f"{source} is not a usable JWKS: {err}") from err
    if not keys.keys:
        raise ValueError(f"{source} holds no keys")
    return keys


class TokenVerifier:
    """Verifies OIDC ID/access tokens against the issuer's JWKS; keeps the verified
    claims of a token until it expires, so a session's every request is one lookup."""

    def __init__(self, settings: PortalSettings, keys: KeySet,
                 session: aiohttp.ClientSession | None = None, jwks_url: str = "") -> None:
        self.settings = settings
        self.keys = keys
        self.keys_at = time.monotonic()
        self.jwks_url = jwks_url
        self.session = session
        self._last_fetch = time.monotonic()
        self._fetch_lock = asyncio.Lock()
        self._verified: ExpiringCache[str, dict[str, Any]] = ExpiringCache(20_000)
        self.registry = JWTClaimsRegistry(
            leeway=settings.clock_skew_seconds,
            iss={"essential": True, "value": settings.oidc_issuer},
            aud={"essential": True, "values": list(settings.oidc_audiences)},
            exp={"essential": True},
        )

    async def verify(self, token: str) -> dict[str, Any]:
        now = time.time()
        cached = self._verified.get(token, now)
        if cached is not None:
            return cached
        try:
            claims = self._decode(token)
        except UnknownKey:
            # The issuer may have rotated its keys: fetch once (rate-limited), retry.
            if not await self.refresh(force=False):
                raise InvalidCredentials("token signed by an unknown key") from None
            try:
                claims = self._decode(token)
            except UnknownKey:
                raise InvalidCredentials("token signed by an unknown key") from None
        exp = float(claims.get("exp", now))
        self._verified.put(token, claims, exp + self.settings.clock_skew_seconds)
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, self.keys, algorithms=ALGORITHMS)
        except InvalidKeyIdError as err:
            raise UnknownKey() from err
        except (JoseError, ValueError) as err:
            if not isinstance(err, JoseError):
                raise InvalidCredentials(f"token not decodable: {err}") from err
            raise InvalidCredentials(f"token refused: {err.error}: {err.description}"
                                     ) from err
        try:
            self.registry.validate(decoded.claims)
        except ExpiredTokenError as err:
            raise ExpiredCredentials("token expired") from err
        except JoseError as err:
            raise InvalidCredentials(f"token refused: {err.error}: {err.description}"
                                     ) from err
        return dict(decoded.claims)

    async def refresh(self, force: bool) -> bool:
        """Fetch the JWKS again (URL sources only). False if nothing new was loaded."""
        if not self.jwks_url or self.session is None:
            return False
        async with self._fetch_lock:
            if not force and time.monotonic() - self._last_fetch < JWKS_MIN_REFETCH_SECONDS:
                return False
            self._last_fetch = time.monotonic()
            try:
                self.keys = await fetch_jwks(self.session, self.jwks_url)
            except (TimeoutError, OSError, ValueError, aiohttp.ClientError) as err:
                log.warning("could not refresh the JWKS from %s: %s", self.jwks_url, err)
                return False
            self.keys_at = time.monotonic()
            return True

    def identity(self, claims: Mapping[str, Any], source: str) -> Identity:
        settings = self.settings
        user = next((str(claims[c]) for c in settings.user_claims if claims.get(c)), "")
        if not user:
            raise InvalidCredentials(f"token names no user (claims {settings.user_claims})")
        raw_groups = claims.get(settings.groups_claim, [])
        if isinstance(raw_groups, str):
            raw_groups = [raw_groups]
        if not isinstance(raw_groups, list) or not all(isinstance(g, str) for g in raw_groups):
            raise InvalidCredentials(f"claim {settings.groups_claim!r} is not a list of names")
        amr = claims.get("amr") or []
        amr = [amr] if isinstance(amr, str) else amr
        mfa = bool(set(map(str, amr)) & set(settings.mfa_amr)) or (
            str(claims.get("acr", "")) in settings.mfa_acr)
        return Identity(user=user, groups=frozenset(raw_groups), mfa=mfa, source=source)


class UnknownKey(Exception):
    pass


async def fetch_jwks(session: aiohttp.ClientSession, url: str) -> KeySet:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
        if response.status != 200:
            raise ValueError(f"{url} answered {response.status}")
        return read_jwks(await response.text(), url)


async def jwks_url_of(session: aiohttp.ClientSession, issuer: str) -> str:
    """The issuer's discovery document names its JWKS."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
        if response.status != 200:
            raise ValueError(f"{url} answered {response.status}")
        document = await response.json(content_type=None)
    jwks = document.get("jwks_uri") if isinstance(document, dict) else None
    if not isinstance(jwks, str) or not jwks:
        raise ValueError(f"{url} names no jwks_uri")
    return jwks


async def load_verifier(settings: PortalSettings, session: aiohttp.ClientSession
                        ) -> TokenVerifier | None:
    """The verifier the settings ask for; raises ValueError naming what is wrong."""
    if not settings.oidc_issuer:
        return None
    if settings.oidc_jwks_file is not None:
        path = Path(settings.oidc_jwks_file)
        try:
            text = path.read_text()
        except OSError as err:
            raise ValueError(f"DESKFLEET_PORTAL_OIDC_JWKS_FILE: cannot read {path}: "
                             f"{err.strerror}") from err
        try:
            keys = read_jwks(text, str(path))
        except ValueError as err:
            raise ValueError(f"DESKFLEET_PORTAL_OIDC_JWKS_FILE: {err}") from err
        return TokenVerifier(settings, keys)
    try:
        url = settings.oidc_jwks_url or await jwks_url_of(session, settings.oidc_issuer)
        keys = await fetch_jwks(session, url)
    except (TimeoutError, OSError, ValueError, aiohttp.ClientError) as err:
        name = "OIDC_JWKS_URL" if settings.oidc_jwks_url else "OIDC_ISSUER"
        raise ValueError(f"DESKFLEET_PORTAL_{name}: cannot load the JWKS: {err}") from err
    return TokenVerifier(settings, keys, session, url)


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def header_groups(value: str) -> frozenset[str]:
    """oauth2-proxy joins groups with commas, so a group name containing one cannot be
    carried in the header: each piece is read as the literal name it spells. Prefer the
    token's groups claim (the proxy forwards the token with --set-authorization-header)."""
    return frozenset(g.strip() for g in value.split(",") if g.strip())


class IdentityResolver:
    """The order of the sources, and the authenticating-proxy round trip."""

    def __init__(self, settings: PortalSettings, verifier: TokenVerifier | None,
                 session: aiohttp.ClientSession | None) -> None:
        self.settings = settings
        self.verifier = verifier
        self.session = session
        self._proxy_answers: ExpiringCache[str, Identity] = ExpiringCache(20_000)

    async def resolve(self, headers: Mapping[str, str], peer_trusted: bool) -> Identity:
        if self.settings.trust_identity_headers and peer_trusted and (
                headers.get(USER_HEADER) or headers.get(EMAIL_HEADER)):
            return await self._from_headers(headers, headers, "headers")
        token = bearer(headers)
        if token is not None:
            return await self._from_token(token, "token")
        cookie = headers.get("Cookie", "")
        if cookie and self.settings.auth_proxy_url:
            return await self._from_proxy(cookie)
        raise NotSignedIn("no token and no sign-in cookie")

    async def _from_token(self, token: str, source: str) -> Identity:
        if self.verifier is None:
            raise InvalidCredentials("a bearer token, but no OIDC issuer is configured")
        claims = await self.verifier.verify(token)
        return self.verifier.identity(claims, source)  # cheap: the claims are cached

    async def _from_headers(self, answer: Mapping[str, str], request: Mapping[str, str],
                            source: str) -> Identity:
        """Identity headers (from the proxy's answer, or a trusted proxy's request); the
        token that may come with them is verified and, when it is, wins."""
        token = bearer(answer) or answer.get(TOKEN_HEADER) or None
        if token and self.verifier is not None:
            return await self._from_token(token, source)
        user = answer.get(EMAIL_HEADER) or answer.get(USER_HEADER) or ""
        if not user:
            raise InvalidCredentials("the authenticating proxy named no user")
        return Identity(user=user, groups=header_groups(answer.get(GROUPS_HEADER, "")),
                        mfa=False, source=source)

    async def _from_proxy(self, cookie: str) -> Identity:
        assert self.session is not None
        key = hashlib.sha256(cookie.encode()).hexdigest()
        now = time.monotonic()
        cached = self._proxy_answers.get(key, now)
        if cached is not None:
            return cached
        try:
            async with self.session.get(
                    self.settings.auth_proxy_url, headers={"Cookie": cookie},
                    allow_redirects=False, timeout=aiohttp.ClientTimeout(total=3)) as response:
                status, answer = response.status, response.headers
        except (TimeoutError, OSError, aiohttp.ClientError) as err:
            raise IdentityUnavailable(f"authenticating proxy unreachable: {err}") from err
        if status in (401, 403):
            raise NotSignedIn(f"authenticating proxy answered {status}")
        if not 200 <= status < 300:
            raise IdentityUnavailable(f"authenticating proxy answered {status}")
        identity = await self._from_headers(answer, {}, "auth-proxy")
        self._proxy_answers.put(key, identity, now + self.settings.auth_proxy_cache_seconds)
        return identity
