"""A real Traefik (built by hack/build-gateway.sh) in front of the test bed, run outside
the cluster the way an in-cluster install would run inside it: its own ServiceAccount
with Traefik's published ClusterRoles, a bound token, the bed's CA.

It reads, from every namespace:
- Gateway API (`kubernetesGateway`, with `nativeLBByDefault`: it dials a Service's
  ClusterIP, since EndpointSlices cannot hold the loopback addresses the stand-in hosts
  listen on) through its GatewayClass and one Gateway whose listeners are the `web`
  entrypoint, 127.0.0.1:<free port>, and `web-short-timeouts`, another port whose
  responding timeouts are all SHORT_TIMEOUT_SECONDS (a route without a sectionName is
  served on both);
- traefik.io objects (`kubernetesCRD`): Middlewares an HTTPRoute's ExtensionRef filter
  names (forwardAuth, ...);
- Ingresses with ingress-nginx annotations (`kubernetesIngressNGINX`, IngressClass
  `nginx` / controller `k8s.io/ingress-nginx`); they need the
  `nginx.ingress.kubernetes.io/service-upstream: "true"` annotation to reach loopback
  ClusterIPs, for the same reason.

    with running_traefik(bed, bin_dir, tmp) as traefik:
        bed.apply(route_with(parentRefs=[traefik.parent_ref()]), namespace)
        traefik.wait_served("app.example", "/x")
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .client import Response, request
from .process import free_port, log_tail, running, wait_until

GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
INGRESS_NGINX_CONTROLLER = "k8s.io/ingress-nginx"
# A second entrypoint (and Gateway listener) whose responding timeouts are all this short,
# so a test can show in seconds what Traefik's defaults (readTimeout 60 s, idleTimeout
# 180 s) would take minutes to show: which connections they cut, and which they do not.
SHORT_TIMEOUT_SECONDS = 5


@dataclass
class Traefik:
    """A running Traefik: `url` is its web entrypoint (where clients send requests)."""

    url: str
    port: int
    api_url: str
    namespace: str  # where its ServiceAccount and Gateway live
    gateway: str
    gateway_class: str
    log_path: Path
    short_timeouts_port: int = 0  # entrypoint `web-short-timeouts` (SHORT_TIMEOUT_SECONDS)

    def parent_ref(self, section: str | None = None) -> dict[str, Any]:
        """An HTTPRoute parentRef to the Gateway this Traefik serves."""
        ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway",
               "name": self.gateway, "namespace": self.namespace}
        if section:
            ref["sectionName"] = section
        return ref

    def routers(self) -> list[dict[str, Any]]:
        """Traefik's HTTP routers as its API reports them (name, rule, status, ...)."""
        with urllib.request.urlopen(f"{self.api_url}/api/http/routers?per_page=1000",
                                    timeout=5) as r:
            routers: list[dict[str, Any]] = json.load(r)
        return routers

    def middlewares(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.api_url}/api/http/middlewares?per_page=1000",
                                    timeout=5) as r:
            mws: list[dict[str, Any]] = json.load(r)
        return mws

    def get(self, host: str, path: str = "/", **kwargs: Any) -> Response:
        """One request through the gateway to Host `host` (see client.request for
        `headers`, `source`, `method`)."""
        return request(f"{self.url}{path}", host=host, **kwargs)

    def wait_served(self, host: str, path: str = "/", *,
                    until: Callable[[Response], bool] | None = None, timeout: float = 30,
                    **kwargs: Any) -> Response:
        """Poll `host` + `path` until Traefik routes it (by default: anything but its
        `404 page not found` for an unknown route); return that response."""
        def routed(r: Response) -> bool:
            return not (r.status == 404 and r.text.strip() == "404 page not found")

        check = until or routed

        def attempt() -> Response | None:
            try:
                r = self.get(host, path, **kwargs)
            except OSError:
                return None
            return r if check(r) else None

        try:
            result: Response = wait_until(attempt, timeout=timeout,
                                          what=f"Traefik to serve {host}{path}")
        except AssertionError as e:
            raise AssertionError(f"{e}\nTraefik's log:\n{log_tail(self.log_path)}") from None
        return result


def _cluster_access(kubeconfig: str, workdir: Path) -> tuple[str, Path]:
    """The API server's URL and a file holding its CA, from the bed's kubeconfig."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    current = config.get("current-context")
    ctx = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
    ca = workdir / "ca.crt"
    if "certificate-authority-data" in cluster:
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    else:
        ca.write_bytes(Path(cluster["certificate-authority"]).read_bytes())
    return str(cluster["server"]), ca


def install_access(bed: Any, bin_dir: Path, namespace: str,
                   service_account: str = "traefik") -> str:
    """Traefik's CRDs, a ServiceAccount bound to Traefik's published ClusterRoles (for its
    CRD, Gateway API and ingress-nginx providers), the `nginx` IngressClass; returns a
    token for the ServiceAccount."""
    bed.kubectl("apply", "--server-side", "--force-conflicts",
                "-f", str(bin_dir / "traefik-crds.yaml"))
    bed.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                "crd/middlewares.traefik.io")
    roles = [d for d in yaml.safe_load_all((bin_dir / "traefik-rbac.yaml").read_text())
             if d and d.get("kind") == "ClusterRole"]
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": service_account, "namespace": namespace}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": "nginx"}, "spec": {"controller": INGRESS_NGINX_CONTROLLER}},
    ]
    for role in roles:
        name = role["metadata"]["name"]
        docs += [role, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{namespace}-{service_account}-{name}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": service_account,
                          "namespace": namespace}]}]
    bed.apply(docs)
    token: str = bed.kubectl("create", "token", service_account, "-n", namespace,
                             "--duration=24h").stdout.strip()
    return token


def static_config(*, web_port: int, api_port: int, endpoint: str, token_file: Path,
                  ca_file: Path, short_port: int = 0) -> dict[str, Any]:
    """Traefik's static configuration for the test bed."""
    access = {"endpoint": endpoint, "token": str(token_file),
              "certAuthFilePath": str(ca_file)}
    short = f"{SHORT_TIMEOUT_SECONDS}s"
    entry_points: dict[str, Any] = {"web": {"address": f"127.0.0.1:{web_port}"},
                                    "traefik": {"address": f"127.0.0.1:{api_port}"}}
    if short_port:
        entry_points["web-short-timeouts"] = {
            "address": f"127.0.0.1:{short_port}",
            "transport": {"respondingTimeouts": {"readTimeout": short, "writeTimeout": short,
                                                 "idleTimeout": short}}}
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": entry_points,
        "ping": {"entryPoint": "traefik"},
        "api": {"insecure": True, "dashboard": False},
        "log": {"level": "DEBUG", "noColor": True},
        "accessLog": {"format": "json"},
        "providers": {
            "kubernetesCRD": {**access},
            "kubernetesGateway": {**access, "nativeLBByDefault": True,
                                  "statusAddress": {"ip": "127.0.0.1"}},
            "kubernetesIngressNGINX": {**access, "httpEntryPoint": "web",
                                       "ingressClass": "nginx",
                                       "controllerClass": INGRESS_NGINX_CONTROLLER},
        },
    }


@contextlib.contextmanager
def running_traefik(bed: Any, bin_dir: Path, workdir: Path, *,
                    namespace: str = "deskfleet-gateway", gateway: str = "traefik",
                    gateway_class: str = "traefik") -> Iterator[Traefik]:
    """Start Traefik against the bed until the block ends, with its GatewayClass and a
    Gateway in `namespace` accepting routes from every namespace; yield once the Gateway
    is Programmed. `bin_dir` is hack/build-gateway.sh's output."""
    workdir.mkdir(parents=True, exist_ok=True)
    token = install_access(bed, bin_dir, namespace)
    token_file = workdir / "token"
    token_file.write_text(token)
    endpoint, ca_file = _cluster_access(bed.kubeconfig, workdir)
    web_port, api_port, short_port = free_port(), free_port(), free_port()
    config_file = workdir / "traefik.yaml"
    config_file.write_text(yaml.safe_dump(static_config(
        web_port=web_port, api_port=api_port, endpoint=endpoint, token_file=token_file,
        ca_file=ca_file, short_port=short_port)))
    # The listener's port is how Traefik maps a Gateway listener to its entrypoint.
    bed.apply([
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": gateway_class}, "spec": {"controllerName": GATEWAY_CONTROLLER}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": gateway, "namespace": namespace},
         "spec": {"gatewayClassName": gateway_class, "listeners": [{
             "name": name, "protocol": "HTTP", "port": port,
             "allowedRoutes": {"namespaces": {"from": "All"}}}
             for name, port in (("web", web_port), ("short-timeouts", short_port))]}},
    ])
    log_path = workdir / "traefik.log"

    def ping() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/ping", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    argv = [str(bin_dir / "traefik"), f"--configFile={config_file}"]
    with running(argv, log_path, ready=ping, what="traefik", timeout=60):
        traefik = Traefik(url=f"http://127.0.0.1:{web_port}", port=web_port,
                          api_url=f"http://127.0.0.1:{api_port}", namespace=namespace,
                          gateway=gateway, gateway_class=gateway_class, log_path=log_path,
                          short_timeouts_port=short_port)

        def programmed() -> bool:
            gw = bed.get("gateway", gateway, namespace) or {}
            return any(c.get("type") == "Programmed" and c.get("status") == "True"
                       for c in (gw.get("status") or {}).get("conditions") or [])

        try:
            wait_until(programmed, timeout=60, what=f"Gateway {namespace}/{gateway} "
                       "Programmed by Traefik")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{log_tail(log_path)}") from None
        try:
            yield traefik
        finally:
            bed.kubectl("delete", "gateway", gateway, "-n", namespace, "--wait=false",
                        check=False)
