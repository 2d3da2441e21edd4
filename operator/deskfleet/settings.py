"""Operator-wide settings, read once from the environment (the chart sets them).

Everything here is cluster plumbing that one platform team decides once — where the
gateway runs, which authenticating proxy fronts the routes — rather than per-resource
intent, which belongs in the CRDs.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """`DESKFLEET_<FIELD>` environment variables (dicts and lists as JSON), read by
    pydantic-settings; `Settings()` reads them, `Settings(field=...)` sets them in code."""

    # `extra="ignore"`: the portal's DESKFLEET_PORTAL_* variables share the prefix.
    model_config = SettingsConfigDict(env_prefix="DESKFLEET_", frozen=True, extra="ignore")

    gateway_namespace_labels: dict[str, str] = Field(
        default_factory=lambda: {"kubernetes.io/metadata.name": "ingress-nginx"})
    """Labels of the namespace the gateway (ingress controller) runs in; only pods there
    may open sessions on hosts."""
    gateway_pod_labels: dict[str, str] = Field(default_factory=dict)
    """Labels of the gateway pods within that namespace (all pods when empty)."""
    operator_image: str = "ghcr.io/deskfleet/deskfleet:0.1.0"
    """The image the agent sidecar runs unless a pool overrides it."""
    dns_namespace_labels: dict[str, str] = Field(
        default_factory=lambda: {"kubernetes.io/metadata.name": "kube-system"})
    """Where cluster DNS runs; hosts may reach it on port 53."""
    api_server_cidrs: list[str] = Field(default_factory=list)
    """Where the API server's endpoints are; the agent may reach them on 443 and 6443 to
    report sessions. Empty: no such egress rule (set it where a CNI enforces egress)."""
    monitoring_namespace_labels: dict[str, str] = Field(
        default_factory=lambda: {"kubernetes.io/metadata.name": "monitoring"})
    """Where Prometheus runs; it may scrape the agents' metrics port."""
    gateway_flavor: Literal["traefik", "envoy-gateway", "gateway-api", "ingress-nginx"] = \
        "traefik"
    """How an HTTPRoute makes the gateway ask the portal on every request: a Traefik
    ForwardAuth `Middleware` (ExtensionRef filter), an Envoy Gateway `SecurityPolicy`
    (extAuth), or Gateway API's experimental `ExternalAuth` filter (only for gateways that
    implement it: others accept the route and fail every request). Ingresses always use
    the `auth-url` annotation (ingress-nginx, and Traefik's ingress-nginx provider);
    `ingress-nginx` here means HTTPRoutes get no auth at all (reported on each app)."""
    httproute_session_persistence: bool = False
    """Render Gateway API `sessionPersistence` (a cookie per app) on HTTPRoutes, so a
    reconnect returns to the host holding the session. Experimental channel: only for
    gateways that implement it (Envoy Gateway does; Traefik v3.7 does not) and clusters
    with the experimental CRDs (the standard ones refuse the field)."""
    portal_url: str = ""
    """The portal's in-cluster base URL gateways call, e.g.
    `http://deskfleet-portal.deskfleet.svc:8080`. Empty: routes ask nobody, and every app
    reports `Degraded` with reason `AccessNotEnforced` naming this setting."""
    portal_stats_service: str = ""
    """`<namespace>/<service>` of the portal's internal Service: its replicas' /v1/stats
    (logon demand per pool, dry-run figures per policy) are read from its endpoints."""
    portal_stats_urls: list[str] = Field(default_factory=list)
    """Or the stats URLs themselves (a portal outside the cluster, the test bed)."""
    portal_stats_period_seconds: float = 5.0
    """How often the portal's counts are read."""
    auth_signin: str = ""
    """Where ingress-nginx sends a browser the portal answered 401 for (its
    `auth-signin`), e.g. `https://workspace.example/oauth2/start`. Gateways that pass the
    portal's answer through (Traefik, Envoy) show the portal's own sign-in page instead."""
    check_tls_secrets: bool = True
    """Report an app whose Ingress names a TLS Secret that does not exist. Needs `get`
    on Secrets (by name, metadata only; never list or watch): see
    controllers/tls_secrets.py. Off: nothing is asked, nothing reported."""
    catalog_name: str = "deskfleet-catalog"
    """The name of the per-namespace catalog ConfigMap."""
    resync_seconds: float = 300.0
    """How often every object is re-checked even without events (level-based safety net)."""
    scaling_period_seconds: float = 15.0
    """How often each pool is re-evaluated without events (schedule phases start, the
    scale-in delay runs out); passes that change nothing write nothing."""
    workers: int = 8
    """Reconciles running at once."""
    recheck_workers: int = 2
    """Of those, how many may be re-checks at once (summaries, policy recounts, host
    config re-renders, resyncs): the rest are kept for the passes a change asked for."""

    @field_validator("portal_url")
    @classmethod
    def _portal_url(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"DESKFLEET_PORTAL_URL must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    def portal_service(self) -> tuple[str, str, int] | None:
        """(name, namespace, port) of the portal's Service, when `portal_url` names one
        the cluster way (`http://<name>.<namespace>.svc[.cluster.local][:port]`): Envoy
        Gateway and Gateway API refer to backends as Services, not URLs."""
        parts = urlsplit(self.portal_url)
        labels = (parts.hostname or "").split(".")
        if len(labels) < 3 or labels[2] != "svc":
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return labels[0], labels[1], port
