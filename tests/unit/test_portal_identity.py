"""Who is asking and from where: token verification, identity headers, the client's
address through trusted hops, its country, and the portal's start-up checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc.jwk import KeySet, RSAKey

from deskfleet.portal.client import GeoIP, client_address, country_of, networks
from deskfleet.portal.identity import (
    IdentityResolver,
    InvalidCredentials,
    NotSignedIn,
    TokenVerifier,
    load_verifier,
)

from .portal_kit import FR_IP, GB_IP, KEY, KEYS, geoip_database, settings, token

ASYNC = pytest.mark.asyncio(loop_scope="session")

TRUSTED = networks(["10.0.0.0/8", "127.0.0.1/32"])


@pytest.mark.parametrize("peer, forwarded, hops, client", [
    ("10.1.2.3", "81.2.69.160", 1, "81.2.69.160"),  # the gateway appended the client
    ("10.1.2.3", "6.6.6.6, 81.2.69.160", 1, "81.2.69.160"),  # a forged entry is ignored
    ("10.1.2.3", "81.2.69.160, 10.9.9.9", 2, "81.2.69.160"),  # CDN -> gateway -> portal
    ("10.1.2.3", "81.2.69.160", 2, "81.2.69.160"),  # shorter than expected: leftmost
    ("192.0.2.1", "81.2.69.160", 1, "192.0.2.1"),  # untrusted peer: it is the client
    ("10.1.2.3", "", 1, "10.1.2.3"),
    ("10.1.2.3", "not-an-ip", 1, "10.1.2.3"),
    ("::ffff:10.1.2.3", "::ffff:81.2.69.160", 1, "81.2.69.160"),
    ("10.1.2.3", "81.2.69.160", 0, "10.1.2.3"),
])
def test_client_address_believes_only_trusted_hops(peer: str, forwarded: str, hops: int,
                                                   client: str) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert client_address(peer, headers, TRUSTED, hops) == client


def test_ingress_nginx_sends_x_real_ip() -> None:
    assert client_address("10.1.2.3", {"X-Real-IP": GB_IP}, TRUSTED, 1) == GB_IP


def test_country_from_the_database_and_from_a_trusted_header(tmp_path: Path) -> None:
    geoip = GeoIP(geoip_database(tmp_path / "c.mmdb"))
    assert geoip.country(GB_IP) == "GB"
    assert geoip.country(FR_IP) == "FR"
    assert geoip.country(f"::ffff:{FR_IP}") == "FR"  # dual-stack sockets report these
    assert geoip.country("198.51.100.1") is None
    header = {"CF-IPCountry": "fr"}
    assert country_of(GB_IP, header, True, "CF-IPCountry", geoip) == "FR"
    assert country_of(GB_IP, header, False, "CF-IPCountry", geoip) == "GB"  # untrusted
    assert country_of(GB_IP, {"CF-IPCountry": "XX1"}, True, "CF-IPCountry", None) is None


@ASYNC
async def test_token_claims_make_the_identity() -> None:
    config = settings(mfa_acr=["urn:northgate:mfa"])
    verifier = TokenVerifier(config, KEYS)
    claims = await verifier.verify(token("a@x", ["g1", "g,2"], mfa=False))
    who = verifier.identity(claims, "token")
    assert (who.user, who.groups, who.mfa) == ("a@x", frozenset({"g1", "g,2"}), False)
    acr = await verifier.verify(token("a@x", mfa=False, acr="urn:northgate:mfa"))
    assert verifier.identity(acr, "token").mfa
    single = await verifier.verify(token(groups="g1,g2"))  # type: ignore[arg-type]
    assert verifier.identity(single, "token").groups == frozenset({"g1,g2"})  # not split
    with pytest.raises(InvalidCredentials, match="names no user"):
        verifier.identity(await verifier.verify(token(email="", sub="")), "token")
    bad = await verifier.verify(token(groups=[1, 2]))  # type: ignore[list-item]
    with pytest.raises(InvalidCredentials, match="not a list of names"):
        verifier.identity(bad, "token")


@ASYNC
async def test_identity_headers_only_when_enabled_and_from_a_trusted_peer() -> None:
    headers = {"X-Auth-Request-Email": "a@x", "X-Auth-Request-Groups": "clinicians,nurses"}
    off = IdentityResolver(settings(), TokenVerifier(settings(), KEYS), None)
    with pytest.raises(NotSignedIn):
        await off.resolve(headers, peer_trusted=True)
    on_config = settings(trust_identity_headers=True)
    on = IdentityResolver(on_config, TokenVerifier(on_config, KEYS), None)
    with pytest.raises(NotSignedIn):
        await on.resolve(headers, peer_trusted=False)
    who = await on.resolve(headers, peer_trusted=True)
    assert who.groups == frozenset({"clinicians", "nurses"}) and not who.mfa
    # A token that comes with the headers is verified and its groups win.
    with_token = {**headers, "Authorization": f"Bearer {token('a@x', ['radiologists'])}"}
    assert (await on.resolve(with_token, True)).groups == frozenset({"radiologists"})


class FakeProvider:
    """A stand-in for an OIDC provider's discovery and JWKS endpoints (a mock, named as
    such: the real-issuer path is exercised in tests/cluster)."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys
        self.app = web.Application()
        self.app.router.add_get("/.well-known/openid-configuration", self.discovery)
        self.app.router.add_get("/jwks", self.jwks)
        self.fetches = 0
        self.url = ""

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"})

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response(self.keys.as_dict(private=False))


@ASYNC
async def test_jwks_from_discovery_and_a_rotated_key_is_fetched_once() -> None:
    import aiohttp

    provider = FakeProvider(KEYS)
    server = TestServer(provider.app)
    await server.start_server()
    provider.url = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            config = settings(oidc_issuer=provider.url)
            verifier = await load_verifier(config, session)
            assert verifier is not None and provider.fetches == 1
            new = RSAKey.generate_key(2048, parameters={"kid": "rotated"})
            provider.keys = KeySet([KEY, new])
            verifier._last_fetch -= 60  # the rate limit on refetches has passed
            claims = await verifier.verify(token(iss=provider.url, key=new))
            assert claims["email"] == "dr.patel@northgate.example"
            assert provider.fetches == 2
            stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
            with pytest.raises(InvalidCredentials, match="unknown key"):
                await verifier.verify(token(iss=provider.url, key=stranger))
            assert provider.fetches == 2  # rate-limited: no refetch storm
    finally:
        await server.close()


def run_portal(env: Mapping[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    import socket

    with socket.socket() as s:  # a free port, in case a case wrongly gets that far
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    return subprocess.run([sys.executable, "-m", "deskfleet", "portal", "--port", port,
                           "--internal-port", "0"],
                          env={**os.environ, "KUBECONFIG": str(tmp_path / "none"), **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, named", [
    ({}, "DESKFLEET_PORTAL_OIDC_ISSUER"),
    ({"DESKFLEET_PORTAL_OIDC_ISSUER": "https://idp"}, "DESKFLEET_PORTAL_OIDC_AUDIENCES"),
    ({"DESKFLEET_PORTAL_AUTH_PROXY_URL": "http://p", "DESKFLEET_PORTAL_TRUSTED_PROXIES":
      "10.0.0.0/33"}, "DESKFLEET_PORTAL_TRUSTED_PROXIES"),
    ({"DESKFLEET_PORTAL_OIDC_ISSUER": "https://idp", "DESKFLEET_PORTAL_OIDC_AUDIENCES": "w",
      "DESKFLEET_PORTAL_OIDC_JWKS_FILE": "/nonexistent/jwks.json"},
     "DESKFLEET_PORTAL_OIDC_JWKS_FILE"),
    ({"DESKFLEET_PORTAL_OIDC_ISSUER": "https://idp", "DESKFLEET_PORTAL_OIDC_AUDIENCES": "w",
      "DESKFLEET_PORTAL_OIDC_JWKS_FILE": "{garbage}"}, "DESKFLEET_PORTAL_OIDC_JWKS_FILE"),
    ({"DESKFLEET_PORTAL_OIDC_ISSUER": "http://127.0.0.1:9", "DESKFLEET_PORTAL_OIDC_AUDIENCES":
      "w"}, "DESKFLEET_PORTAL_OIDC_ISSUER"),
    ({"DESKFLEET_PORTAL_AUTH_PROXY_URL": "http://p", "DESKFLEET_PORTAL_GEOIP_DATABASE":
      "{garbage}"}, "DESKFLEET_PORTAL_GEOIP_DATABASE"),
    ({"DESKFLEET_PORTAL_AUTH_PROXY_URL": "http://p"}, "no cluster credentials"),
])
def test_bad_settings_stop_the_portal_naming_the_setting(env: dict[str, str], named: str,
                                                         tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("this is not it")
    env = {k: v.replace("{garbage}", str(garbage)) for k, v in env.items()}
    proc = run_portal(env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert named in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr


def test_the_jwks_file_is_a_real_keyset(tmp_path: Path) -> None:
    """The good case of the above: a JWKS file that parses starts the verifier."""
    import asyncio

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(KEYS.as_dict(private=False)))

    async def load() -> Any:
        return await load_verifier(settings(oidc_jwks_file=path), None)  # type: ignore[arg-type]

    assert asyncio.run(load()) is not None
