"""Fixtures of the gateway end-to-end tests: the real Traefik and oauth2-proxy built by
hack/build-gateway.sh, a test OIDC issuer, stand-in session hosts on Services'
ClusterIPs, a test country database and a headless Chromium. Each starts on 127.0.0.1 and
is stopped when its scope ends; see tests/support/ for the pieces and
docs/development.md for the address plan.

Like the bed, these fail (never skip) when something cannot start."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from ..conftest import Bed
from ..conftest import gateway_bin as build_gateway
from ..support.browser import chromium
from ..support.crds import install_envoy_gateway_crds, install_gateway_api_experimental
from ..support.geoip import write_country_db
from ..support.hosts import StandInHosts, serve_service
from ..support.oauth2_proxy import OAuth2Proxy, running_oauth2_proxy
from ..support.oidc_issuer import TEST_USERS, OIDCIssuer, running_issuer
from ..support.traefik import Traefik, running_traefik


@pytest.fixture(scope="session")
def gateway_bin() -> Path:
    """hack/build-gateway.sh's bin dir (built once, then cached: a no-op here)."""
    return build_gateway()


@pytest.fixture(scope="session")
def traefik(bed: Bed, gateway_bin: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traefik]:
    """Traefik serving Gateway `deskfleet-gateway/traefik` (its web entrypoint is
    `traefik.url`), plus traefik.io Middlewares and ingress-nginx Ingresses."""
    with running_traefik(bed, gateway_bin, tmp_path_factory.mktemp("traefik")) as t:
        yield t


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[OIDCIssuer]:
    """The test OIDC issuer, with tests.support.oidc_issuer.TEST_USERS."""
    with running_issuer(TEST_USERS) as issuer:
        yield issuer


@pytest.fixture(scope="session")
def oauth2_proxy(gateway_bin: Path, oidc_issuer: OIDCIssuer,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuth2Proxy]:
    """oauth2-proxy against the issuer; any signed-in user passes (no group filter)."""
    with running_oauth2_proxy(gateway_bin, oidc_issuer,
                              tmp_path_factory.mktemp("oauth2-proxy")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def test_country_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MaxMind country database: 127.0.10.0/24 -> GB, 127.0.20.0/24 -> FR."""
    return write_country_db(tmp_path_factory.mktemp("geoip") / "test-countries.mmdb")


@pytest.fixture(scope="session")
def gateway_api_experimental(bed: Bed, gateway_bin: Path) -> None:
    """The Gateway API experimental channel CRDs on the bed (HTTPRoute ExternalAuth)."""
    install_gateway_api_experimental(bed, gateway_bin)


@pytest.fixture(scope="session")
def envoy_gateway_crds(bed: Bed, gateway_bin: Path) -> None:
    """Envoy Gateway's CRDs on the bed (SecurityPolicy, ...); no Envoy runs."""
    install_envoy_gateway_crds(bed, gateway_bin)


StandInFactory = Callable[..., StandInHosts]


@pytest.fixture
def stand_in_hosts(bed: Bed) -> Iterator[StandInFactory]:
    """`stand_in_hosts(namespace, service, hosts=None)`: serve stand-in session hosts on
    that Service's ClusterIP:ports until the test ends."""
    with contextlib.ExitStack() as stack:
        def serve(namespace: str, service: str,
                  hosts: Sequence[str] | None = None) -> StandInHosts:
            return stack.enter_context(serve_service(bed, namespace, service, hosts))

        yield serve


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """A headless Debian Chromium driven by Playwright, new profile per test."""
    with chromium(tmp_path) as context:
        yield context
