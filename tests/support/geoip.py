"""A tiny MaxMind country database for tests, written with mmdb-writer: loopback source
addresses stand for clients in different countries (a test sends from 127.0.10.5 to be
a client in Great Britain).

The database is IPv6 with IPv4 embedded, as GeoLite2-Country is, so `reader.get(
"127.0.10.5")` answers; look up an IPv4-mapped address (`::ffff:127.0.10.5`) by its IPv4
form."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# network -> ISO 3166 country code
TEST_COUNTRIES: Mapping[str, str] = {
    "127.0.10.0/24": "GB",
    "127.0.20.0/24": "FR",
}


def write_country_db(path: Path, countries: Mapping[str, str] = TEST_COUNTRIES) -> Path:
    """Write a GeoLite2-Country-shaped database mapping each network to its country."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True,
                        database_type="GeoLite2-Country", languages=["en"],
                        description="deskfleet test countries")
    for network, iso_code in countries.items():
        writer.insert_network(IPSet([network]), {"country": {"iso_code": iso_code}})
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path
