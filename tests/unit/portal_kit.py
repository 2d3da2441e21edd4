"""What the portal's unit tests share: a signing key and tokens as an OIDC provider would
issue them, a Directory filled from the example hospital, a small GeoIP database, and a
Portal wired to them (no cluster, no network)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from deskfleet.portal.app import Portal
from deskfleet.portal.audit import AuditLog
from deskfleet.portal.client import GeoIP
from deskfleet.portal.directory import Directory
from deskfleet.portal.identity import IdentityResolver, TokenVerifier
from deskfleet.portal.settings import PortalSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ISSUER = "https://idp.northgate.example"
AUDIENCE = "workspace"
KEY = RSAKey.generate_key(2048, parameters={"kid": "test-1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "test-1"})  # same kid, wrong key
KEYS = KeySet([KEY])
GB_NET, FR_NET = "81.2.69.0/24", "90.84.0.0/16"  # the documentation's examples
GB_IP, FR_IP = "81.2.69.160", "90.84.1.20"


def token(user: str = "dr.patel@northgate.example", groups: list[str] | None = None,
          mfa: bool = True, key: RSAKey = KEY, lifetime: float = 300,
          **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": user.split("@")[0], "email": user,
            "groups": ["clinicians"] if groups is None else groups,
            "amr": ["pwd", "mfa"] if mfa else ["pwd"], "iat": now,
            "exp": now + int(lifetime), **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


def example_bodies() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    out = []
    for doc in docs:
        if not str(doc.get("apiVersion", "")).startswith("deskfleet.io/"):
            continue
        meta = doc["metadata"]
        body = {**doc, "metadata": {**meta, "uid": f"uid-{meta['name']}", "generation": 1}}
        if doc["kind"] == "SessionHostPool":
            body["status"] = {"readyHosts": 2, "capacity": 16, "sessions": 3}
        out.append(body)
    return out


def fill(directory: Directory, bodies: list[dict[str, Any]], now: float) -> Directory:
    for kind in ("SessionHostPool", "PublishedApp", "AccessPolicy"):
        directory.replace(kind, None, [b for b in bodies if b["kind"] == kind], now)
    return directory


def geoip_database(path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    for cidr, code in ((GB_NET, "GB"), (FR_NET, "FR"), ("175.45.176.0/22", "KP"),
                       ("127.0.10.0/24", "GB"), ("127.0.20.0/24", "FR")):
        writer.insert_network(IPSet([cidr]), {"country": {"iso_code": code}})
    writer.to_db_file(str(path))
    return path


class Clock:
    """Wall time the tests set, and a monotonic clock they move."""

    def __init__(self, when: str = "2026-11-24T10:15:00+00:00") -> None:
        self.now = datetime.fromisoformat(when)
        self.mono = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def settings(**overrides: Any) -> PortalSettings:
    base: dict[str, Any] = {
        "oidc_issuer": ISSUER, "oidc_audiences": [AUDIENCE],
        "trusted_proxies": ["127.0.0.0/8"], "trusted_hops": 1,
        "signin_url": "https://workspace.northgate.example/oauth2/start",
        "public_url": "https://workspace.northgate.example/",
        "max_data_age_seconds": 120,
    }
    return PortalSettings.model_validate({**base, **overrides})


def make_portal(tmp_path: Path, clock: Clock | None = None,
                bodies: list[dict[str, Any]] | None = None, **overrides: Any) -> Portal:
    clock = clock or Clock()
    config = settings(**overrides)
    verifier = TokenVerifier(config, KEYS)
    directory = fill(Directory(), example_bodies() if bodies is None else bodies,
                     clock.monotonic())
    audit = AuditLog(str(tmp_path / "audit.jsonl"))
    geoip = GeoIP(geoip_database(tmp_path / "countries.mmdb"))
    return Portal(config, directory, IdentityResolver(config, verifier, None), verifier,
                  geoip, audit, clock=clock.wall, monotonic=clock.monotonic)


def with_status(bodies: list[dict[str, Any]], pool: str, **status: Any
                ) -> list[dict[str, Any]]:
    return [replace_status(b, status) if b["kind"] == "SessionHostPool"
            and b["metadata"]["name"] == pool else b for b in bodies]


def replace_status(body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {**body, "status": {**body.get("status", {}), **status}}

