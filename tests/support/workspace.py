"""The whole front door on the test bed, as a hospital runs it: the real operator and
`deskfleet portal` processes, Traefik (reading the bed's Gateway API, traefik.io and
Ingress objects), oauth2-proxy signing users in at a test OIDC issuer, all on loopback.

    host workspace.test  ->  Traefik web entrypoint (127.0.0.1:<port>)
      /oauth2/...        ->  oauth2-proxy, listening on its Service's ClusterIP
      /, /launch/...     ->  deskfleet portal, listening on its Service's ClusterIP
      /<app path>        ->  the app's HTTPRoute (Middleware: ForwardAuth to the portal)
                             ->  the pool's Service ClusterIP (stand-in session hosts)

The operator is told the portal's URL (its ClusterIP) and reads its /v1/stats; the portal
verifies tokens against the issuer's JWKS and asks oauth2-proxy about sign-in cookies;
clients send from loopback addresses that a test country database maps to countries.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .geoip import write_country_db
from .oauth2_proxy import OAuth2Proxy, running_oauth2_proxy
from .oidc_issuer import OIDCIssuer, TestUser, running_issuer
from .process import free_port, log_tail, wait_until
from .traefik import Traefik

HOST = "workspace.test"
PORTAL_SERVICE, PROXY_SERVICE = "deskfleet-portal", "oauth2-proxy"
# Clients in countries: the loopback networks tests send from.
COUNTRIES = {"127.0.10.0/24": "GB", "127.0.20.0/24": "FR", "127.0.40.0/24": "KP",
             "127.0.0.1/32": "GB"}  # the browser (it cannot choose a source address)


@dataclass
class Portal:
    """A `deskfleet portal` process listening on its Service's ClusterIP."""

    address: str
    port: int
    internal_port: int
    env: dict[str, str]
    namespace: str
    log_path: Path
    audit_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def internal_url(self) -> str:
        return f"http://{self.address}:{self.internal_port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.internal_url}/readyz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deskfleet", "portal", "-n", self.namespace,
             "--listen-address", self.address, "--port", str(self.port),
             "--internal-port", str(self.internal_port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        wait_until(lambda: self.ready() or self.proc is None or self.proc.poll() is not None,
                   timeout=60, what="portal /readyz")
        assert self.ready(), f"the portal did not become ready:\n{log_tail(self.log_path)}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.internal_url}/v1/stats", timeout=2) as r:
            result: dict[str, Any] = json.load(r)
        return result


@dataclass
class Workspace:
    namespace: str
    traefik: Traefik
    issuer: OIDCIssuer
    proxy: OAuth2Proxy
    portal: Portal
    operator_env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """What a browser opens (with workspace.test mapped to 127.0.0.1)."""
        return f"http://{HOST}:{self.traefik.port}"

    def token(self, user: str, **claims: Any) -> str:
        return self.issuer.mint_id_token(user, **claims)


def _service(namespace: str, name: str, port: int) -> dict[str, Any]:
    """A Service without selector: only its ClusterIP matters (a local process listens
    on it, as a pod would behind it)."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": "http", "port": port, "targetPort": port}]}}


def _front_routes(namespace: str, traefik: Traefik, portal_port: int,
                  proxy_port: int) -> list[dict[str, Any]]:
    def rule(path: str, service: str, port: int) -> dict[str, Any]:
        return {"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                "backendRefs": [{"name": service, "port": port}]}

    return [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "front-door", "namespace": namespace},
             "spec": {"parentRefs": [traefik.parent_ref()], "hostnames": [HOST],
                      "rules": [rule("/oauth2", PROXY_SERVICE, proxy_port),
                                rule("/launch", PORTAL_SERVICE, portal_port),
                                {**rule("/", PORTAL_SERVICE, portal_port),
                                 "matches": [{"path": {"type": "Exact", "value": "/"}}]}]}}]


@contextlib.contextmanager
def running_workspace(bed: Any, namespace: str, traefik: Traefik, gateway_bin: Path,
                      workdir: Path, users: tuple[TestUser, ...],
                      portal_env: Mapping[str, str] | None = None) -> Iterator[Workspace]:
    """Issuer, oauth2-proxy and the portal for `namespace`, routed through `traefik`.
    The caller starts the operator with `workspace.operator_env`."""
    bed.apply([_service(namespace, PORTAL_SERVICE, 8080),
               _service(namespace, PROXY_SERVICE, 4180)])
    portal_ip = bed.get("service", PORTAL_SERVICE, namespace)["spec"]["clusterIP"]
    proxy_ip = bed.get("service", PROXY_SERVICE, namespace)["spec"]["clusterIP"]
    countries = write_country_db(workdir / "countries.mmdb", COUNTRIES)
    base = f"http://{HOST}:{traefik.port}"
    with contextlib.ExitStack() as stack:
        issuer = stack.enter_context(running_issuer(users))
        proxy = stack.enter_context(running_oauth2_proxy(
            gateway_bin, issuer, workdir / "oauth2-proxy", host=proxy_ip, port=4180,
            redirect_url=f"{base}/oauth2/callback",
            extra_args=[f"--whitelist-domain={HOST}:*", "--cookie-samesite=lax"]))
        internal = free_port()
        env = {**os.environ, "KUBECONFIG": bed.kubeconfig,
               "DESKFLEET_PORTAL_OIDC_ISSUER": issuer.url,
               "DESKFLEET_PORTAL_OIDC_AUDIENCES": issuer.client_id,
               "DESKFLEET_PORTAL_AUTH_PROXY_URL": proxy.auth_url,
               "DESKFLEET_PORTAL_SIGNIN_URL": f"{base}/oauth2/start",
               "DESKFLEET_PORTAL_SIGNOUT_URL": f"{base}/oauth2/sign_out",
               "DESKFLEET_PORTAL_PUBLIC_URL": f"{base}/",
               # Traefik dials the portal from 127.0.0.1 and appends the client it saw.
               "DESKFLEET_PORTAL_TRUSTED_PROXIES": "127.0.0.1/32",
               "DESKFLEET_PORTAL_TRUSTED_HOPS": "1",
               "DESKFLEET_PORTAL_GEOIP_DATABASE": str(countries),
               "DESKFLEET_PORTAL_AUDIT_LOG": str(workdir / "audit.jsonl"),
               "DESKFLEET_PORTAL_TITLE": "Northgate remote workspace",
               **(portal_env or {})}
        portal = Portal(portal_ip, 8080, internal, env, namespace, workdir / "portal.log",
                        workdir / "audit.jsonl")
        portal.start()
        stack.callback(portal.stop)
        bed.apply(_front_routes(namespace, traefik, 8080, 4180))
        workspace = Workspace(namespace, traefik, issuer, proxy, portal, {
            "DESKFLEET_PORTAL_URL": portal.url,
            "DESKFLEET_GATEWAY_FLAVOR": "traefik",
            "DESKFLEET_PORTAL_STATS_URLS": json.dumps([f"{portal.internal_url}/v1/stats"]),
            "DESKFLEET_PORTAL_STATS_PERIOD_SECONDS": "1",
            "DESKFLEET_AUTH_SIGNIN": f"{base}/oauth2/start",
        })
        yield workspace
