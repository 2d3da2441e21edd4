"""Where a request comes from: the client's address, through a known number of trusted
proxy hops only, and its country, from a trusted proxy's header or a MaxMind-format
database. A client can write any X-Forwarded-For it likes; only the entries the
trusted hops appended are believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path

import maxminddb

from ..policy.conditions import normalise_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: list[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted(peer: str, trusted: tuple[Network, ...]) -> bool:
    try:
        address = normalise_ip(peer)
    except ValueError:
        return False
    return any(address in net for net in trusted)


def client_address(peer: str, headers: Mapping[str, str], trusted: tuple[Network, ...],
                   hops: int) -> str:
    """The client as the outermost trusted proxy saw it.

    The portal's TCP peer is hop 0. Unless it is a trusted proxy, it is the client and
    forwarded headers are ignored. Otherwise each of the `hops` trusted proxies appended
    the address it was called from to X-Forwarded-For, so the client is the entry
    `hops` from the right (ingress-nginx sends X-Real-IP instead, which it sets itself).
    A shorter list than expected gives its leftmost entry: what the first proxy saw.
    """
    if not is_trusted(peer, trusted) or hops == 0:
        return str(normalise_ip(peer))
    chain = [p.strip() for p in headers.get("X-Forwarded-For", "").split(",") if p.strip()]
    if chain:
        candidate = chain[-hops] if len(chain) >= hops else chain[0]
    else:
        candidate = headers.get("X-Real-IP", "").strip() or peer
    try:
        return str(normalise_ip(candidate))
    except ValueError:
        return str(normalise_ip(peer))  # garbage in the header: the peer is all we know


class GeoIP:
    """Country lookups in a MaxMind-format database (GeoLite2-Country and compatible)."""

    def __init__(self, path: Path) -> None:
        try:
            self.reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as err:
            raise ValueError(f"DESKFLEET_PORTAL_GEOIP_DATABASE: cannot open {path}: {err}"
                             ) from err
        self.path = path

    def country(self, address: str) -> str | None:
        try:
            record = self.reader.get(str(normalise_ip(address)))
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        for key in ("country", "registered_country"):
            entry = record.get(key)
            if isinstance(entry, dict) and isinstance(entry.get("iso_code"), str):
                return str(entry["iso_code"]).upper()
        return None

    def close(self) -> None:
        self.reader.close()


def country_of(address: str, headers: Mapping[str, str], peer_trusted: bool,
               header: str, geoip: GeoIP | None) -> str | None:
    """A trusted proxy's country header wins; else the database; else unknown (None),
    which never satisfies a policy's country list (docs/access-policy.md)."""
    if header and peer_trusted:
        value = headers.get(header, "").strip().upper()
        if len(value) == 2 and value.isalpha():
            return value
    return geoip.country(address) if geoip is not None else None
