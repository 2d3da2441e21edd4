"""Operator-wide settings, read once from the environment (the chart sets them).

Everything here is cluster plumbing that one platform team decides once — where the
gateway runs, which authenticating proxy fronts the routes — rather than per-resource
intent, which belongs in the CRDs.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

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
    auth_url: str = ""
    """The authenticating proxy's check endpoint, e.g. oauth2-proxy's
    `https://auth.example.org/oauth2/auth`. Routes then admit only the groups and users
    the access policies allow (oauth2-proxy's `allowed_groups`/`allowed_emails`)."""
    auth_url_mfa: str = ""
    """A second proxy endpoint that only passes users who completed MFA (e.g. an
    oauth2-proxy in front of an IdP client that demands an MFA `acr`); used for apps
    whose every allowing policy requires MFA."""
    auth_signin: str = ""
    """Where the proxy sends users to sign in, e.g. `https://auth.example.org/oauth2/start`."""
    catalog_name: str = "deskfleet-catalog"
    """The name of the per-namespace catalog ConfigMap."""
    resync_seconds: float = 300.0
    """How often every object is re-checked even without events (level-based safety net)."""
    scaling_period_seconds: float = 15.0
    """How often each pool is re-evaluated without events (schedule phases start, the
    scale-in delay runs out); passes that change nothing write nothing."""
    workers: int = 8
    """Reconciles running at once."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """`DESKFLEET_<FIELD>` variables; dict fields are JSON."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            raw = env.get(f"DESKFLEET_{name.upper()}")
            if raw is None:
                continue
            structured = field.annotation in (dict[str, str], list[str])
            values[name] = json.loads(raw) if structured else raw
        return cls.model_validate(values)
