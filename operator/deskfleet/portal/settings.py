"""The portal's settings: `DESKFLEET_PORTAL_<FIELD>` environment variables (the chart
sets them), or flags of `deskfleet portal`. Bad settings stop the portal at start with
a message naming the variable — never a traceback loop in a crash-looping pod.

Identity is the part a platform team must get right, so here is how the settings fit:

- Gateways call `/authz/<namespace>/<app>` for every request. The portal finds out who
  is asking itself: a bearer token it verifies (issuer, audience, expiry, signature
  against the JWKS), or the sign-in cookie, which it shows to the authenticating proxy
  (`authProxyURL`, e.g. oauth2-proxy's `/oauth2/auth`) and whose answer it trusts
  because it asked. Headers a client can send are never identity...
- ...except identity headers (`X-Auth-Request-User/-Email/-Groups`) from a peer in
  `trustedProxies`: for platforms whose authenticating reverse proxy sits in front of
  everything. Empty by default.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "DESKFLEET_PORTAL_"


def _split(value: object) -> object:
    """Lists from the environment are comma-separated (JSON arrays work too)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    listen_address: str = "127.0.0.1"
    """Where the public (landing page, authorization) and internal (metrics, health,
    stats) listeners bind; 0.0.0.0 in a pod."""
    port: int = Field(default=8080, ge=1, le=65535)
    """The public listener: `/`, `/launch/...`, `/authz/...`."""
    internal_port: int = Field(default=9090, ge=0, le=65535)
    """`/metrics`, `/healthz`, `/readyz`, `/v1/stats` (0: served on the public port)."""
    namespaces: Annotated[list[str], NoDecode] = []
    """The namespaces whose apps the portal serves; all when empty."""

    oidc_issuer: str = ""
    """The OIDC issuer tokens must name in `iss`. Empty: bearer tokens are refused."""
    oidc_audiences: Annotated[list[str], NoDecode] = []
    """Accepted `aud` values (the client ids of the gateway's and the proxy's clients)."""
    oidc_jwks_file: Path | None = None
    """A JWKS file (a mounted Secret/ConfigMap); read at start and re-read when changed."""
    oidc_jwks_url: str = ""
    """Fetch the JWKS from here (else the issuer's discovery document's `jwks_uri`)."""
    user_claims: Annotated[list[str], NoDecode] = ["email", "preferred_username", "sub"]
    """The first of these claims a token has names the user, as policies list users."""
    groups_claim: str = "groups"
    """The claim holding the user's directory groups (a JSON array)."""
    mfa_amr: Annotated[list[str], NoDecode] = ["mfa"]
    """`amr` values (RFC 8176) that mean multi-factor authentication was done."""
    mfa_acr: Annotated[list[str], NoDecode] = []
    """`acr` values that mean the same (e.g. Keycloak's level names)."""
    clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    """Leeway on `exp`/`nbf`/`iat`."""

    auth_proxy_url: str = ""
    """The authenticating proxy's check endpoint (oauth2-proxy `/oauth2/auth`), asked
    with the request's cookies when it carries no bearer token."""
    auth_proxy_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    """How long the proxy's answer for one cookie is reused."""
    signin_url: str = ""
    """Where a browser that is not signed in is sent (`?rd=<where it was going>` is
    added), e.g. `https://workspace.example/oauth2/start`."""
    step_up_url: str = ""
    """Where to sign in again with MFA (an IdP client that demands it); else signin_url."""
    signout_url: str = ""
    """The landing page's "Sign out" link (oauth2-proxy `/oauth2/sign_out`)."""
    public_url: str = "/"
    """The landing page as users reach it, e.g. `https://workspace.example/`: the way back
    from a refusal page shown on an app's own host."""

    trusted_proxies: Annotated[list[str], NoDecode] = []
    """CIDRs of peers whose identity headers, X-Forwarded-For and country header are
    believed. The gateway belongs here for X-Forwarded-For; see the module docstring
    before trusting identity headers."""
    trust_identity_headers: bool = False
    """Believe X-Auth-Request-User/-Email/-Groups from trusted proxies."""
    trusted_hops: int = Field(default=1, ge=0, le=10)
    """Proxies between the client and the portal that append to X-Forwarded-For (the
    gateway: 1; a CDN in front of it: 2). The client is that many entries from the right."""
    country_header: str = ""
    """A header set by a trusted proxy with the client's ISO 3166 country code."""
    geoip_database: Path | None = None
    """A MaxMind-format country database (GeoLite2-Country or compatible)."""

    max_data_age_seconds: float = Field(default=120.0, ge=10)
    """Refuse every request when the watched policies are older than this (fail closed)."""
    audit_log: str = "-"
    """Where audit lines go: `-` for stdout, else a file path."""
    title: str = "Remote workspace"
    """The landing page's heading."""

    @field_validator("namespaces", "oidc_audiences", "user_claims", "mfa_amr", "mfa_acr",
                     "trusted_proxies", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad one
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PortalSettings:
        if self.oidc_issuer and not self.oidc_audiences:
            raise ValueError("oidc_audiences: required with oidc_issuer (which `aud` to "
                             "accept)")
        if (self.oidc_jwks_file or self.oidc_jwks_url) and not self.oidc_issuer:
            raise ValueError("oidc_issuer: required when a JWKS is given")
        if self.trust_identity_headers and not self.trusted_proxies:
            raise ValueError("trusted_proxies: required with trust_identity_headers")
        if not (self.oidc_issuer or self.auth_proxy_url or self.trust_identity_headers):
            raise ValueError("oidc_issuer: no way to identify users: set oidc_issuer "
                             "(bearer tokens), auth_proxy_url (sign-in cookies) or "
                             "trust_identity_headers")
        return self


class SettingsError(ValueError):
    """A setting the portal cannot start with; the message names it."""


def load_settings(**overrides: object) -> PortalSettings:
    """From the environment, with command-line values taking precedence."""
    try:
        values = {k: v for k, v in overrides.items() if v is not None}
        return PortalSettings.model_validate(values)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"])
            message = e["msg"].removeprefix("Value error, ")
            if not where:  # a rule across settings: its message starts with the field
                where, _, message = message.partition(": ")
            problems.append(f"{ENV_PREFIX}{where.upper()}: {message}")
        raise SettingsError("; ".join(problems)) from None
