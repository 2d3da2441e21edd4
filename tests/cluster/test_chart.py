"""The Helm chart, installed for real on the test bed with real `helm`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from deskfleet.cli import build_parser
from deskfleet.kube.client import Kube, KubeError, load_api_client
from deskfleet.kube.resources import POD
from deskfleet.portal.settings import ENV_PREFIX, PortalSettings, load_settings
from deskfleet.render.offline import render_objects
from deskfleet.settings import Settings

from ..conftest import REPO, Bed, example_docs, free_port, wait_until
from ..support.metrics import total
from .test_reconcile import converge

CHART = REPO / "charts" / "deskfleet"
KUBE_VERSION = ("--kube-version", "1.36.3")  # `helm template` assumes an old one offline
FLAVORS = ("traefik", "envoy-gateway", "gateway-api", "ingress-nginx")
PORTAL_NAME = {"app.kubernetes.io/name": "deskfleet-portal"}


def helm(bed: Bed, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = str(Path(bed.bin) / "helm") if bed.bin else "helm"
    proc = subprocess.run([binary, *args], capture_output=True, text=True, env=bed.env,
                          timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}:\n{proc.stderr}")
    return proc


def render(bed: Bed, *args: str) -> list[dict[str, Any]]:
    out = helm(bed, "template", "df", str(CHART), *KUBE_VERSION, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def render_values(bed: Bed, tmp_path: Path, values: dict[str, Any],
                  *args: str) -> list[dict[str, Any]]:
    path = tmp_path / f"values-{abs(hash(json.dumps(values, sort_keys=True)))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return render(bed, "-f", str(path), *args)


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def container_env(deploy: dict[str, Any]) -> dict[str, str]:
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def portal_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["metadata"].get("labels", {}).get(
        "app.kubernetes.io/name") == "deskfleet-portal"]


NON_DEFAULT = {"replicaCount": 3, "watchNamespaces": ["ward-a", "ward-b"],
               "apiServerCidrs": ["10.0.0.1/32"], "logLevel": "debug",
               "metrics": {"serviceMonitor": {"enabled": True},
                           "prometheusRule": {"enabled": True},
                           "dashboard": {"enabled": True}}}

# Every portal value set to something other than its default.
FULL_PORTAL: dict[str, Any] = {
    "auth": {"signinUrl": "https://workspace.example/oauth2/start"},
    "apiServerCidrs": ["10.0.0.1/32", "10.0.0.2/32"],
    "portal": {
        "replicaCount": 3,
        "namespaces": ["ward-a", "ward-b"],
        "appNamespaces": ["ward-a", "ward-b", "ward-c"],
        "oidc": {"issuer": "https://login.example/realms/trust",
                 "audiences": ["deskfleet", "oauth2-proxy"],
                 "jwks": {"secretName": "idp-jwks", "key": "keys.json"},
                 "userClaims": ["upn", "email"], "groupsClaim": "roles",
                 "mfaAmr": ["mfa", "otp"], "mfaAcr": ["gold"], "clockSkewSeconds": 10},
        "authProxy": {"url": "http://oauth2-proxy.auth.svc:4180/oauth2/auth",
                      "cacheSeconds": 5},
        "stepUpUrl": "https://workspace.example/oauth2/start?acr=mfa",
        "signoutUrl": "https://workspace.example/oauth2/sign_out",
        "publicUrl": "https://workspace.example/",
        "trustedProxies": ["10.42.0.0/16", "fd00::/64"],
        "trustIdentityHeaders": True,
        "trustedHops": 2,
        "countryHeader": "CF-IPCountry",
        "geoip": {"volume": {"persistentVolumeClaim": {"claimName": "geoip"}},
                  "file": "country.mmdb"},
        "maxDataAgeSeconds": 60,
        "title": "Northgate workspace",
        "networkPolicy": {
            "identityProvider": {"cidrs": ["203.0.113.0/24"], "ports": [443, 8443]},
            "authProxy": {"namespaceLabels": {"kubernetes.io/metadata.name": "auth"},
                          "podLabels": {"app": "oauth2-proxy"}, "ports": [4180]},
            "extraEgress": [{"to": [{"ipBlock": {"cidr": "198.51.100.7/32"}}],
                             "ports": [{"port": 514, "protocol": "UDP"}]}]},
        "route": {"enabled": True, "hostnames": ["workspace.example"],
                  "parentRefs": [{"name": "public", "namespace": "gateway-system"}]},
    },
}


def test_lint_and_template_with_default_and_custom_values(bed: Bed, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(NON_DEFAULT))
    full = tmp_path / "full-portal.yaml"
    full.write_text(yaml.safe_dump(FULL_PORTAL))
    helm(bed, "lint", str(CHART))
    helm(bed, "lint", str(CHART), "-f", str(values))
    helm(bed, "lint", str(CHART), "-f", str(full))
    default = render(bed)
    custom = render(bed, "-f", str(values))
    kinds = [d["kind"] for d in custom]
    assert {"ServiceMonitor", "PrometheusRule"} <= set(kinds)
    bindings = sorted((d["metadata"]["namespace"], d["metadata"]["name"])
                      for d in custom if d["kind"] == "RoleBinding")
    # Two watched namespaces, the leader Lease, the portal's EndpointSlices.
    assert bindings == [("default", "df-leader"), ("default", "df-portal-stats"),
                        ("ward-a", "df"), ("ward-b", "df")]
    deploy = find(custom, "Deployment", "df")
    assert "--namespace=ward-a" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(d["kind"] == "ServiceMonitor" for d in default)


def test_no_wildcards_in_rbac(bed: Bed) -> None:
    docs = render(bed)
    for role in (d for d in docs if d["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)


def secret_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for d in docs if d["kind"] == "ClusterRole" for rule in d["rules"]
            if "secrets" in rule["resources"]]


def test_tls_secret_check_gets_by_name_only_or_nothing(bed: Bed) -> None:
    docs = render(bed)
    assert secret_rules(docs) == [{"apiGroups": [""], "resources": ["secrets"],
                                   "verbs": ["get"]}]
    assert container_env(find(docs, "Deployment", "df"))["DESKFLEET_CHECK_TLS_SECRETS"] == \
        "true"
    docs = render(bed, "--set", "checkTlsSecrets=false")
    assert secret_rules(docs) == []
    assert container_env(find(docs, "Deployment", "df"))["DESKFLEET_CHECK_TLS_SECRETS"] == \
        "false"


def test_portal_objects_render_with_defaults(bed: Bed) -> None:
    docs = render(bed, "-n", "deskfleet-system")
    portal = portal_docs(docs)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in portal) == [
        ("ClusterRole", "df-portal"), ("ClusterRoleBinding", "df-portal"),
        ("Deployment", "df-portal"), ("NetworkPolicy", "df-portal"),
        ("PodDisruptionBudget", "df-portal"), ("Service", "df-portal"),
        ("Service", "df-portal-internal"), ("ServiceAccount", "df-portal")]
    deploy = find(docs, "Deployment", "df-portal")
    spec = deploy["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "df-portal"
    # Restricted pod security.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]}}
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert {a["podAffinityTerm"]["topologyKey"] for a in anti} == {
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "internal"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "internal"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8080, "internal": 9090}
    assert container["resources"]["limits"]["memory"]
    # The arguments are ones `deskfleet portal` takes.
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.listen_address, args.port, args.internal_port) == (
        "portal", "0.0.0.0", 8080, 9090)
    # Public and internal Services; the internal one is what the operator reads.
    public, internal = find(docs, "Service", "df-portal"), find(docs, "Service",
                                                               "df-portal-internal")
    assert [(p["name"], p["port"]) for p in public["spec"]["ports"]] == [("http", 8080)]
    assert [(p["name"], p["port"]) for p in internal["spec"]["ports"]] == [("internal", 9090)]
    assert find(docs, "PodDisruptionBudget", "df-portal")["spec"]["maxUnavailable"] == 1
    # Neither the operator's Deployment nor its metrics Service selects portal pods.
    labels = pod.get("labels") or deploy["spec"]["template"]["metadata"]["labels"]
    for selector in (find(docs, "Deployment", "df")["spec"]["selector"]["matchLabels"],
                     find(docs, "Service", "df-metrics")["spec"]["selector"]):
        assert not selector.items() <= labels.items()
    # The portal's RBAC: read the three kinds, nothing else.
    assert find(docs, "ClusterRole", "df-portal")["rules"] == [{
        "apiGroups": ["deskfleet.io"],
        "resources": ["sessionhostpools", "publishedapps", "accesspolicies"],
        "verbs": ["get", "list", "watch"]}]
    # The operator is told where the portal is, its flavour and where to read its stats.
    env = container_env(find(docs, "Deployment", "df"))
    assert env["DESKFLEET_PORTAL_URL"] == "http://df-portal.deskfleet-system.svc:8080"
    assert env["DESKFLEET_GATEWAY_FLAVOR"] == "traefik"
    assert env["DESKFLEET_PORTAL_STATS_SERVICE"] == "deskfleet-system/df-portal-internal"
    assert "DESKFLEET_AUTH_URL" not in env and "DESKFLEET_AUTH_URL_MFA" not in env
    with mock.patch.dict(os.environ, env):
        settings = Settings()
    assert settings.portal_service() == ("df-portal", "deskfleet-system", 8080)
    assert settings.gateway_flavor == "traefik"
    # ... and may read the portal Service's EndpointSlices, in the release namespace only.
    role = find(docs, "Role", "df-portal-stats")
    assert role["metadata"]["namespace"] == "deskfleet-system"
    assert role["rules"] == [{"apiGroups": ["discovery.k8s.io"],
                              "resources": ["endpointslices"],
                              "verbs": ["get", "list", "watch"]}]
    operator_rules = find(docs, "ClusterRole", "df")["rules"]
    routes = next(r for r in operator_rules if r["resources"] == ["httproutes"])
    for group, resource in (("traefik.io", "middlewares"),
                            ("gateway.envoyproxy.io", "securitypolicies")):
        rule = next(r for r in operator_rules if r["resources"] == [resource])
        assert rule["apiGroups"] == [group] and rule["verbs"] == routes["verbs"]


def test_portal_env_is_what_the_portal_reads(bed: Bed, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DESKFLEET_PORTAL_* variable the chart sets is a PortalSettings field, and
    the portal's own loader reads the chart's values back."""
    docs = render_values(bed, tmp_path, FULL_PORTAL)
    deploy = find(docs, "Deployment", "df-portal")
    env = container_env(deploy)
    fields = set(PortalSettings.model_fields)
    for name in env:
        assert name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):].lower() in fields, name
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    portal = FULL_PORTAL["portal"]
    assert s.namespaces == ["ward-a", "ward-b"]
    assert s.oidc_issuer == portal["oidc"]["issuer"]
    assert s.oidc_audiences == ["deskfleet", "oauth2-proxy"]
    assert str(s.oidc_jwks_file) == "/etc/deskfleet/jwks/keys.json"
    assert (s.user_claims, s.groups_claim) == (["upn", "email"], "roles")
    assert (s.mfa_amr, s.mfa_acr, s.clock_skew_seconds) == (["mfa", "otp"], ["gold"], 10)
    assert s.auth_proxy_url == portal["authProxy"]["url"]
    assert s.auth_proxy_cache_seconds == 5
    assert s.signin_url == "https://workspace.example/oauth2/start"  # from auth.signinUrl
    assert s.step_up_url == portal["stepUpUrl"] and s.signout_url == portal["signoutUrl"]
    assert s.public_url == "https://workspace.example/"
    assert s.trusted_proxies == ["10.42.0.0/16", "fd00::/64"]
    assert (s.trust_identity_headers, s.trusted_hops) == (True, 2)
    assert s.country_header == "CF-IPCountry"
    assert str(s.geoip_database) == "/var/lib/deskfleet/geoip/country.mmdb"
    assert (s.max_data_age_seconds, s.title) == (60, "Northgate workspace")
    # The files those settings name are mounted there, read-only, from the volumes.
    pod = deploy["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["jwks"]["mountPath"] == "/etc/deskfleet/jwks" and mounts["jwks"]["readOnly"]
    assert "subPath" not in mounts["jwks"]  # a rotated key reaches the running portal
    assert volumes["jwks"]["secret"] == {"secretName": "idp-jwks"}
    assert mounts["geoip"]["mountPath"] == "/var/lib/deskfleet/geoip"
    assert volumes["geoip"]["persistentVolumeClaim"] == {"claimName": "geoip"}
    # Defaults load too (with a way to identify users, which has no default).
    defaults = container_env(find(render(bed, "--set", "portal.authProxy.url=http://p/auth"),
                                  "Deployment", "df-portal"))
    for name in env:
        monkeypatch.delenv(name, raising=False)
    for name, value in defaults.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s == PortalSettings(auth_proxy_url="http://p/auth")  # the chart keeps the defaults


def test_portal_rbac_per_namespace_and_network_policy(bed: Bed, tmp_path: Path) -> None:
    docs = render_values(bed, tmp_path, FULL_PORTAL, "-n", "deskfleet-system")
    portal = portal_docs(docs)
    assert not [d for d in portal if d["kind"].startswith("Cluster")]
    roles = sorted(d["metadata"]["namespace"] for d in portal if d["kind"] == "Role")
    bindings = [d for d in portal if d["kind"] == "RoleBinding"]
    assert roles == ["ward-a", "ward-b"] == sorted(b["metadata"]["namespace"] for b in bindings)
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "df-portal",
                                        "namespace": "deskfleet-system"}]

    policy = find(docs, "NetworkPolicy", "df-portal")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    public, internal = policy["ingress"]
    assert public["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert public["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}}]
    assert internal["ports"] == [{"port": 9090, "protocol": "TCP"}]
    assert internal["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "deskfleet",
                                         "app.kubernetes.io/instance": "df"}}}]
    dns, api, idp, proxy, extra = policy["egress"]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "kube-system"}}}]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "10.0.0.2/32"}}]
    assert [p["port"] for p in api["ports"]] == [443, 6443]
    assert idp == {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}],
                   "ports": [{"port": 443, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]}
    assert proxy == {"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "auth"}}, "podSelector": {"matchLabels": {
            "app": "oauth2-proxy"}}}], "ports": [{"port": 4180, "protocol": "TCP"}]}
    assert extra == FULL_PORTAL["portal"]["networkPolicy"]["extraEgress"][0]

    # The gateway's pods, when named, narrow the public port to them.
    docs = render(bed, "--set", "gateway.podLabels.app=traefik")
    public = find(docs, "NetworkPolicy", "df-portal")["spec"]["ingress"][0]
    assert public["from"][0]["podSelector"] == {"matchLabels": {"app": "traefik"}}
    # Without apiServerCidrs the API ports are open to any address (NOTES.txt says so).
    egress = find(docs, "NetworkPolicy", "df-portal")["spec"]["egress"]
    assert {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]} \
        in egress


@pytest.mark.parametrize("flavor", FLAVORS)
def test_reference_grant_and_route_per_flavor(bed: Bed, tmp_path: Path, flavor: str) -> None:
    values = {**FULL_PORTAL, "gatewayFlavor": flavor}
    docs = render_values(bed, tmp_path, values, "-n", "deskfleet-system")
    grants = [d for d in docs if d["kind"] == "ReferenceGrant"]
    referrer = {"envoy-gateway": ("gateway.envoyproxy.io", "SecurityPolicy"),
                "gateway-api": ("gateway.networking.k8s.io", "HTTPRoute")}.get(flavor)
    if referrer is None:
        assert not grants  # Traefik calls a URL; an Ingress's auth-url is a URL
    else:
        (grant,) = grants
        assert grant["metadata"]["namespace"] == "deskfleet-system"
        assert grant["spec"]["from"] == [
            {"group": referrer[0], "kind": referrer[1], "namespace": ns}
            for ns in ("ward-a", "ward-b", "ward-c")]
        assert grant["spec"]["to"] == [{"group": "", "kind": "Service", "name": "df-portal"}]
        # Without appNamespaces, the namespaces the portal serves; with neither, none.
        ns_only = {**values, "portal": {**values["portal"], "appNamespaces": []}}
        (grant,) = [d for d in render_values(bed, tmp_path, ns_only)
                    if d["kind"] == "ReferenceGrant"]
        assert [f["namespace"] for f in grant["spec"]["from"]] == ["ward-a", "ward-b"]
        assert not [d for d in render(bed, "--set", f"gatewayFlavor={flavor}")
                    if d["kind"] == "ReferenceGrant"]
    route = find(docs, "HTTPRoute", "df-portal")["spec"]
    assert route["parentRefs"] == [{"name": "public", "namespace": "gateway-system"}]
    assert route["rules"][0]["matches"] == [{"path": {"type": "Exact", "value": "/"}},
                                            {"path": {"type": "PathPrefix", "value": "/launch/"}}]
    assert route["rules"][0]["backendRefs"] == [{"name": "df-portal", "port": 8080}]
    assert container_env(find(docs, "Deployment", "df"))["DESKFLEET_GATEWAY_FLAVOR"] == flavor


def test_without_the_portal(bed: Bed) -> None:
    docs = render(bed, "--set", "portal.enabled=false",
                  "--set", "metrics.prometheusRule.enabled=true",
                  "--set", "metrics.serviceMonitor.enabled=true")
    assert not portal_docs(docs)
    env = container_env(find(docs, "Deployment", "df"))
    assert env["DESKFLEET_PORTAL_URL"] == ""  # every app then reports AccessNotEnforced
    assert "DESKFLEET_PORTAL_STATS_SERVICE" not in env
    assert not [d for d in docs if d["kind"] == "Role" and "portal" in d["metadata"]["name"]]
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    assert [g["name"] for g in rule["spec"]["groups"]] == ["deskfleet"]
    # A portal run elsewhere.
    docs = render(bed, "--set", "portal.enabled=false",
                  "--set", "portal.externalUrl=http://portal.gate.svc:8080",
                  "--set", "metrics.prometheusRule.enabled=true")
    env = container_env(find(docs, "Deployment", "df"))
    assert env["DESKFLEET_PORTAL_URL"] == "http://portal.gate.svc:8080"
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    assert [g["name"] for g in rule["spec"]["groups"]] == ["deskfleet", "deskfleet-portal"]
    # With the portal: its ServiceMonitor scrapes the internal port as job deskfleet-portal.
    docs = render(bed, "--set", "metrics.serviceMonitor.enabled=true")
    monitor = find(docs, "ServiceMonitor", "df-portal")["spec"]
    assert monitor["selector"]["matchLabels"]["app.kubernetes.io/name"] == "deskfleet-portal"
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] == "internal" and endpoint["path"] == "/metrics"
    assert endpoint["relabelings"] == [{"targetLabel": "job", "replacement": "deskfleet-portal"}]
    operator_monitor = find(docs, "ServiceMonitor", "df")["spec"]["selector"]["matchLabels"]
    assert operator_monitor["app.kubernetes.io/name"] == "deskfleet"


CHART_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"auth": {"url": "https://auth.example/oauth2/auth"}}, "auth.url was removed"),
    ({"auth": {"mfaUrl": "https://auth-mfa.example/oauth2/auth"}}, "auth.mfaUrl was removed"),
    ({"portal": {"oidc": {"issuer": "https://idp.example"}}}, "portal.oidc.audiences"),
    ({"portal": {"oidc": {"jwks": {"secretName": "a", "configMapName": "b"}}}},
     "portal.oidc.jwks"),
    ({"portal": {"oidc": {"jwksUrl": "https://idp.example/keys"}}}, "portal.oidc.issuer"),
    ({"portal": {"trustIdentityHeaders": True}}, "portal.trustedProxies"),
    ({"portal": {"route": {"enabled": True}}}, "portal.route.parentRefs"),
    ({"portal": {"externalUrl": "http://elsewhere.example"}}, "portal.externalUrl"),
]


@pytest.mark.parametrize(("values", "message"), CHART_ERRORS, ids=[m for _, m in CHART_ERRORS])
def test_chart_refuses_values_that_cannot_work(bed: Bed, tmp_path: Path,
                                               values: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    proc = helm(bed, "template", "df", str(CHART), *KUBE_VERSION, "-f", str(path), check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


# The CRDs each flavour's objects need besides the standard Gateway API ones the bed
# installs (hack/build-controlplane.sh): from hack/build-gateway.sh's bin dir.
FLAVOR_CRDS = {"traefik": ("traefik-crds.yaml",),
               "envoy-gateway": ("envoy-gateway-crds.yaml",),
               "gateway-api": ("gateway-api-experimental-crds.yaml",),
               "ingress-nginx": ()}
ROUTE_KINDS = {"Ingress", "HTTPRoute", "Middleware", "SecurityPolicy"}
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.fixture(scope="module")
def gateway_bin() -> Path:
    """hack/build-gateway.sh's bin dir (a no-op once built)."""
    proc = subprocess.run(["bash", str(REPO / "hack" / "build-gateway.sh")],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, f"hack/build-gateway.sh failed:\n{proc.stderr[-5000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


def install_crds(bed: Bed, path: Path) -> None:
    assert path.is_file(), f"{path.name} is missing from {path.parent} (hack/build-gateway.sh)"
    if "experimental" in path.name:
        # The standard channel's CRDs come with a ValidatingAdmissionPolicy refusing
        # experimental CRDs over them; installing the experimental channel (which the
        # gateway-api flavour needs) starts by removing it, as Gateway API documents.
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            bed.kubectl("delete", kind, "safe-upgrades.gateway.networking.k8s.io",
                        "--ignore-not-found")
    crds = [d for d in yaml.load_all(path.read_text(), Loader=YAML_LOADER)
            if d and d.get("kind") == "CustomResourceDefinition"]
    assert crds, f"no CustomResourceDefinition in {path}"
    text = yaml.safe_dump_all(crds)
    # (The API server drops a deleted admission policy a moment later: retry until then.)
    wait_until(lambda: bed.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                                   stdin=text, timeout=300, check=False).returncode == 0,
               timeout=60, interval=2, what=f"{path.name} applied")
    bed.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                *[f"crd/{d['metadata']['name']}" for d in crds])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_each_flavor_passes_the_api_servers_dry_run(bed: Bed, namespace: str, tmp_path: Path,
                                                   gateway_bin: Path, flavor: str) -> None:
    """`helm template` with the flavour, defaults and every portal value set, passes the
    real API server's server-side dry run with the flavour's CRDs installed; so do the
    routes (and Middlewares, SecurityPolicies) the operator renders for the example
    hospital with the settings the chart gives it."""
    for name in FLAVOR_CRDS[flavor]:
        install_crds(bed, gateway_bin / name)
    full = {**FULL_PORTAL, "gatewayFlavor": flavor, "watchNamespaces": [namespace],
            "portal": {**FULL_PORTAL["portal"], "namespaces": [namespace],
                       "appNamespaces": [namespace, "ward-b"]},
            "metrics": {"dashboard": {"enabled": True}}}
    for values in ({"gatewayFlavor": flavor}, full):
        docs = render_values(bed, tmp_path, values, "-n", namespace)
        if values is full and flavor in ("envoy-gateway", "gateway-api"):
            assert any(d["kind"] == "ReferenceGrant" for d in docs)
        bed.apply(docs, dry_run=True)

    env = container_env(find(docs, "Deployment", "df"))
    with mock.patch.dict(os.environ, env):
        settings = Settings()
    assert settings.gateway_flavor == flavor
    children = [c for c in render_objects(example_docs(namespace), settings)
                if c["kind"] in ROUTE_KINDS]
    kinds = {c["kind"] for c in children}
    expected = {"traefik": {"Middleware"}, "envoy-gateway": {"SecurityPolicy"}}
    assert {"Ingress", "HTTPRoute"} | expected.get(flavor, set()) == kinds
    if flavor == "gateway-api":
        route = next(c for c in children if c["kind"] == "HTTPRoute")
        (auth,) = [f for r in route["spec"]["rules"] for f in r.get("filters", [])
                   if f["type"] == "ExternalAuth"]
        assert auth["externalAuth"]["backendRef"] == {
            "name": "df-portal", "namespace": namespace, "port": 8080}
        # With the experimental CRDs, session persistence (reconnects) is accepted too.
        sticky = settings.model_copy(update={"httproute_session_persistence": True})
        bed.apply([c for c in render_objects(example_docs(namespace), sticky)
                   if c["kind"] == "HTTPRoute"], dry_run=True)
    bed.apply(children, dry_run=True)


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"replicaCount": 0}, "replicaCount"),
    ({"replicaCount": "two"}, "replicaCount"),
    ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"watchNamespaces": ["Ward_A"]}, "watchNamespaces"),
    ({"unknownSetting": True}, "unknownSetting"),
    ({"metrics": {"port": 80}}, "port"),
    ({"apiServerCidrs": ["apiserver"]}, "apiServerCidrs"),
    ({"logLevel": "trace"}, "logLevel"),
    ({"metrics": {"serviceMonitor": {"interval": "soon"}}}, "interval"),
    ({"gateway": {"namespaceLabels": {"a": 1}}}, "namespaceLabels"),
    ({"agentAdmissionPolicy": {"enabled": "yes"}}, "enabled"),
    ({"gatewayFlavor": "nginx"}, "gatewayFlavor"),
    ({"dnsNamespaceLabels": {"a": 1}}, "dnsNamespaceLabels"),
    ({"auth": {"signinUrl": "workspace.example/start"}}, "signinUrl"),
    ({"portal": {"enabled": "yes"}}, "enabled"),
    ({"portal": {"replicaCount": 0}}, "replicaCount"),
    ({"portal": {"externalUrl": "portal:8080"}}, "externalUrl"),
    ({"portal": {"namespaces": ["Ward_A"]}}, "namespaces"),
    ({"portal": {"appNamespaces": ["ward a"]}}, "appNamespaces"),
    ({"portal": {"referenceGrant": {"enabled": 1}}}, "enabled"),
    ({"portal": {"oidc": {"issuer": "login.example"}}}, "issuer"),
    ({"portal": {"oidc": {"audiences": "deskfleet"}}}, "audiences"),
    ({"portal": {"oidc": {"jwks": {"secretName": "Bad_Name"}}}}, "secretName"),
    ({"portal": {"oidc": {"jwks": {"key": "../keys"}}}}, "key"),
    ({"portal": {"oidc": {"jwksUrl": "ftp://idp/keys"}}}, "jwksUrl"),
    ({"portal": {"oidc": {"userClaims": []}}}, "userClaims"),
    ({"portal": {"oidc": {"clockSkewSeconds": 3600}}}, "clockSkewSeconds"),
    ({"portal": {"oidc": {"scopes": ["openid"]}}}, "scopes"),
    ({"portal": {"authProxy": {"url": "oauth2-proxy:4180"}}}, "url"),
    ({"portal": {"authProxy": {"cacheSeconds": -1}}}, "cacheSeconds"),
    ({"portal": {"stepUpUrl": "mfa"}}, "stepUpUrl"),
    ({"portal": {"signoutUrl": "javascript:alert(1)"}}, "signoutUrl"),
    ({"portal": {"publicUrl": "workspace.example"}}, "publicUrl"),
    ({"portal": {"trustedProxies": ["the gateway"]}}, "trustedProxies"),
    ({"portal": {"trustedHops": 11}}, "trustedHops"),
    ({"portal": {"countryHeader": "X Country"}}, "countryHeader"),
    ({"portal": {"geoip": {"file": "/etc/passwd"}}}, "file"),
    ({"portal": {"maxDataAgeSeconds": 5}}, "maxDataAgeSeconds"),
    ({"portal": {"podDisruptionBudget": {"maxUnavailable": 0}}}, "maxUnavailable"),
    ({"portal": {"networkPolicy": {"identityProvider": {"cidrs": ["idp.example"]}}}}, "cidrs"),
    ({"portal": {"networkPolicy": {"authProxy": {"ports": [0]}}}}, "ports"),
    ({"portal": {"route": {"hostnames": ["Workspace Example"]}}}, "hostnames"),
]


@pytest.mark.parametrize(("values", "field"), BAD_VALUES, ids=[f for _, f in BAD_VALUES])
def test_schema_rejects_bad_values(bed: Bed, tmp_path: Path, values: dict[str, Any],
                                   field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    proc = helm(bed, "template", "df", str(CHART), *KUBE_VERSION, "-f", str(path), check=False)
    assert proc.returncode != 0 and "values don't meet the specifications" in proc.stderr
    assert field in proc.stderr, proc.stderr


@pytest.fixture
def release(bed: Bed) -> Iterator[str]:
    namespace = "deskfleet-system"
    helm(bed, "install", "deskfleet", str(CHART), "-n", namespace, "--create-namespace",
         "--set", "replicaCount=1",
         "--set", "portal.authProxy.url=http://oauth2-proxy.auth.svc:4180/oauth2/auth",
         "--wait", "--timeout", "120s")
    yield namespace
    helm(bed, "uninstall", "deskfleet", "-n", namespace, check=False)


def token_kubeconfig(bed: Bed, namespace: str, sa: str, path: Path, *bound: str) -> Path:
    """A kubeconfig holding only a ServiceAccount token (no client certificate)."""
    token = bed.kubectl("create", "token", sa, "-n", namespace, "--duration=1h",
                        *bound).stdout.strip()
    admin = yaml.safe_load(Path(bed.kubeconfig).read_text())
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "sa",
              "clusters": admin["clusters"],
              "users": [{"name": "sa", "user": {"token": token}}],
              "contexts": [{"name": "sa", "context": {
                  "cluster": admin["clusters"][0]["name"], "user": "sa"}}]}
    path.write_text(json.dumps(config))
    return path


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def can_i(bed: Bed, env: dict[str, str], *args: str) -> str:
    return subprocess.run([str(Path(bed.bin) / "kubectl"), "auth", "can-i", *args],
                          env=env, capture_output=True, text=True).stdout.strip()


def test_install_rbac_upgrade_uninstall(bed: Bed, release: str, namespace: str,
                                        tmp_path: Path) -> None:
    # The CRDs, the operator and the two portal replicas, whose pods run on simulated
    # nodes (the portal's on two different ones).
    assert bed.kubectl("get", "crd", "sessionhostpools.deskfleet.io", check=False).returncode == 0
    wait_until(lambda: any(p["status"].get("phase") == "Running" for p in bed.list(
        "pods", release, "app.kubernetes.io/name=deskfleet")), timeout=60,
        what="operator pod Running")
    portal_pods = wait_until(lambda: [p for p in bed.list(
        "pods", release, "app.kubernetes.io/name=deskfleet-portal")
        if p["status"].get("phase") == "Running"], timeout=60, what="portal pods Running")
    assert len(portal_pods) == 2
    assert len({p["spec"]["nodeName"] for p in portal_pods}) == 2, "anti-affinity"

    check_portal_rbac(bed, release, namespace, tmp_path)

    # Run the operator locally with exactly the chart's ServiceAccount's rights: the
    # example hospital converges, so the grant is sufficient ...
    kubeconfig = token_kubeconfig(bed, release, "deskfleet", tmp_path / "sa.kubeconfig")
    env = {**bed.env, "KUBECONFIG": str(kubeconfig)}
    log = tmp_path / "operator.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskfleet", "run", "-n", namespace,
         "--liveness-port", str(free_port()), "--metrics-port", "0"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        bed.apply(example_docs(namespace))
        converge(bed, namespace)
        assert bed.get("httproute", "epr", namespace) is not None
        assert bed.get("ingress", "intranet", namespace) is not None
        # The TLS Secret its Ingress names is checked with the grant (and missing here).
        wait_until(lambda: any(
            c["type"] == "Degraded" and "Secret workspace-tls does not exist" in c["message"]
            for c in (bed.get("papp", "intranet", namespace) or {}).get(
                "status", {}).get("conditions", [])), what="intranet's TLS Secret reported")
        assert bed.get("role", "clinical-desktop-agent", namespace) is not None
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "Forbidden" not in log.read_text(), log.read_text()[-3000:]

    # ... and not excessive: what it never needs is refused.
    def can(*args: str) -> str:
        return can_i(bed, env, *args)
    assert can("list", "secrets", "-n", namespace) == "no"
    # The TLS Secrets apps name: by name only (metadata asked), never enumerated.
    assert can("get", "secrets", "-n", namespace) == "yes"
    assert can("watch", "secrets", "-n", namespace) == "no"
    assert can("create", "pods", "-n", namespace) == "no"
    assert can("delete", "sessionhostpools", "-n", namespace) == "no"
    assert can("patch", "nodes") == "no"
    assert can("create", "clusterrolebindings") == "no"
    assert can("patch", "deployments", "-n", namespace) == "yes"
    # What makes each gateway flavour ask the portal, as the operator renders it.
    for resource in ("middlewares.traefik.io", "securitypolicies.gateway.envoyproxy.io"):
        for verb in ("get", "list", "watch", "create", "patch", "delete"):
            assert can(verb, resource, "-n", namespace) == "yes", (verb, resource)
        assert can("update", resource, "-n", namespace) == "no"
    # The portal replicas' addresses: EndpointSlices of the release namespace only.
    for verb in ("get", "list", "watch"):
        assert can(verb, "endpointslices.discovery.k8s.io", "-n", release) == "yes"
    assert can("list", "endpointslices.discovery.k8s.io", "-n", namespace) == "no"
    assert can("create", "endpointslices.discovery.k8s.io", "-n", release) == "no"
    forbidden = subprocess.run([str(Path(bed.bin) / "kubectl"), "get", "secrets", "-n",
                                namespace], env=env, capture_output=True, text=True)
    assert forbidden.returncode != 0 and "Forbidden" in forbidden.stderr

    # Upgrade with a changed value, then uninstall.
    helm(bed, "upgrade", "deskfleet", str(CHART), "-n", release, "--reuse-values",
         "--set", "replicaCount=2", "--wait", "--timeout", "120s")
    deploy = bed.get("deployment", "deskfleet", release)
    assert deploy and deploy["spec"]["replicas"] == 2
    helm(bed, "uninstall", "deskfleet", "-n", release, "--wait")
    wait_until(lambda: bed.get("deployment", "deskfleet", release) is None, what="uninstalled")
    # Helm keeps CRDs (and so every user's pools) on uninstall, by design.
    assert bed.kubectl("get", "crd", "sessionhostpools.deskfleet.io",
                       check=False).returncode == 0


PORTAL_READS = ("sessionhostpools.deskfleet.io", "publishedapps.deskfleet.io",
                "accesspolicies.deskfleet.io")


def check_portal_rbac(bed: Bed, release: str, namespace: str, tmp_path: Path) -> None:
    """The portal run with exactly the chart's portal ServiceAccount's token: it lists
    and watches what it needs (it becomes ready and sees an app published after it
    started), and is refused everything else."""
    kubeconfig = token_kubeconfig(bed, release, "deskfleet-portal",
                                  tmp_path / "portal.kubeconfig")
    env = {k: v for k, v in bed.env.items() if not k.startswith(ENV_PREFIX)}
    env.update({"KUBECONFIG": str(kubeconfig),
                f"{ENV_PREFIX}AUTH_PROXY_URL": "http://127.0.0.1:9/oauth2/auth"})
    port, internal = free_port(), free_port()
    log = tmp_path / "portal.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskfleet", "portal", "--port", str(port),
         "--internal-port", str(internal)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    authz = f"http://127.0.0.1:{port}/authz/{namespace}/epr"
    try:
        wait_until(lambda: http_status(f"http://127.0.0.1:{internal}/readyz") == 200,
                   timeout=30, what="the portal ready (the three kinds listed)")
        assert http_status(authz) == 403  # not published yet: unknown app, refused
        bed.apply(example_docs(namespace))
        # Published (seen through the watch), and this request is not signed in.
        wait_until(lambda: http_status(authz) == 401, timeout=30, what="the app watched")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    assert "Forbidden" not in text and "failed" not in text, text[-3000:]

    for resource in PORTAL_READS:
        for verb in ("get", "list", "watch"):
            assert can_i(bed, env, verb, resource, "--all-namespaces") == "yes"
        for verb in ("create", "update", "patch", "delete", "deletecollection"):
            assert can_i(bed, env, verb, resource, "-n", namespace) == "no", (verb, resource)
        assert can_i(bed, env, "patch", resource, "--subresource=status",
                     "-n", namespace) == "no"
    for args in (("list", "secrets", "-n", namespace), ("get", "configmaps", "-n", namespace),
                 ("list", "pods", "-n", namespace), ("list", "services", "-n", release),
                 ("list", "endpointslices.discovery.k8s.io", "-n", release),
                 ("list", "httproutes.gateway.networking.k8s.io", "-n", namespace),
                 ("create", "events", "-n", release), ("get", "leases.coordination.k8s.io",
                                                        "-n", release),
                 ("list", "namespaces"), ("create", "tokenreviews.authentication.k8s.io")):
        assert can_i(bed, env, *args) == "no", args


def test_portal_rbac_limited_to_its_namespaces(bed: Bed, namespace: str,
                                               tmp_path: Path) -> None:
    """With portal.namespaces the portal's grant is a Role in each: it reads there and
    nowhere else (nor cluster-wide)."""
    docs = render(bed, "-n", namespace, "--set", f"portal.namespaces={{{namespace}}}")
    rbac = [d for d in portal_docs(docs)
            if d["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                             "ClusterRoleBinding")]
    assert sorted(d["kind"] for d in rbac) == ["Role", "RoleBinding", "ServiceAccount"]
    bed.apply(rbac)
    kubeconfig = token_kubeconfig(bed, namespace, "df-portal", tmp_path / "ns.kubeconfig")
    env = {**bed.env, "KUBECONFIG": str(kubeconfig)}
    for resource in PORTAL_READS:
        for verb in ("get", "list", "watch"):
            assert can_i(bed, env, verb, resource, "-n", namespace) == "yes"
        assert can_i(bed, env, "list", resource, "-n", "default") == "no"
        assert can_i(bed, env, "list", resource, "--all-namespaces") == "no"
        assert can_i(bed, env, "patch", resource, "-n", namespace) == "no"
    assert can_i(bed, env, "list", "secrets", "-n", namespace) == "no"


def test_agent_may_change_only_its_own_pod(bed: Bed, release: str, namespace: str,
                                          tmp_path: Path) -> None:
    bed.apply([{"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "desk-agent", "namespace": namespace}}])
    bed.kubectl("create", "role", "desk-agent", "--verb=patch", "--resource=pods",
                "-n", namespace)
    bed.kubectl("create", "rolebinding", "desk-agent", "--role=desk-agent",
                f"--serviceaccount={namespace}:desk-agent", "-n", namespace)
    pods = []
    for name in ("host-a", "host-b"):
        bed.apply([{"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": namespace, "labels": {"deskfleet.io/pool": "desk"}},
            "spec": {"serviceAccountName": "desk-agent",
                     "containers": [{"name": "c", "image": "x"}]}}])
        pods.append(bed.get("pod", name, namespace))
    # The agent's token, bound to host-a as the kubelet would project it.
    kubeconfig = token_kubeconfig(bed, namespace, "desk-agent", tmp_path / "agent.kubeconfig",
                                  "--bound-object-kind=Pod", "--bound-object-name=host-a",
                                  f"--bound-object-uid={pods[0]['metadata']['uid']}")
    agent = Kube(load_api_client(str(kubeconfig)), field_manager="deskfleet-agent")

    def patch(pod: str, annotations: dict[str, str]) -> str:
        """PATCH as the agent does (no GET: it has no read right); '' when allowed."""
        try:
            agent.merge_patch(POD, namespace, pod, {"metadata": {"annotations": annotations}})
            return ""
        except KubeError as err:
            return str(err)

    assert patch("host-a", {"deskfleet.io/sessions": "3"}) == ""
    # The API server loads a new ValidatingAdmissionPolicy and its binding through an
    # informer, so enforcement starts a moment after `helm install --wait` returns.
    wait_until(lambda: "only change the pod it runs in" in patch(
        "host-b", {"deskfleet.io/sessions": "3"}), timeout=30, what="the admission policy")
    assert "sessions annotations" in patch("host-a", {"deskfleet.io/draining-since": "x"})
    assert patch("host-a", {"deskfleet.io/sessions-reported-at": "2026-11-24T10:00:00Z"}) == ""


def test_failover_between_two_operators(bed: Bed, namespace: str, tmp_path: Path) -> None:
    def start(name: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "deskfleet", "run", "-n", namespace, "--leader-election",
             "--lease-namespace", namespace, "--lease-duration", "6",
             "--liveness-port", str(free_port()), "--metrics-port", str(port)],
            env={**bed.env, "POD_NAME": name}, stdout=(tmp_path / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        return proc, port

    procs = dict(a=start("replica-a"), b=start("replica-b"))

    def holder() -> str:
        lease = bed.get("lease", "deskfleet-leader", namespace) or {}
        return str(lease.get("spec", {}).get("holderIdentity") or "")

    try:
        leader = wait_until(holder, timeout=30, what="a leader")
        bed.apply(example_docs(namespace))
        converge(bed, namespace)
        time.sleep(2)
        standby = "replica-b" if leader == "replica-a" else "replica-a"
        reconciles = {n: _reconciles(p[1]) for n, p in
                      (("replica-a", procs["a"]), ("replica-b", procs["b"]))}
        assert reconciles[leader] > 0 and reconciles[standby] == 0, reconciles

        # Kill the leader without letting it release the Lease: the worst case.
        leader_proc = procs["a" if leader == "replica-a" else "b"][0]
        killed = time.monotonic()
        leader_proc.kill()
        leader_proc.wait()
        extra = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
                 "metadata": {"name": "after-failover", "namespace": namespace},
                 "spec": {"image": "registry.example/desktop:1"}}
        bed.apply([extra])
        # A pool's Deployment is named after its revision (<pool>-<template hash>).
        wait_until(lambda: bed.list("deployments", namespace, "deskfleet.io/pool=after-failover"),
                   timeout=60, interval=0.1, what="the standby to take over and reconcile")
        failover = time.monotonic() - killed
        print(f"\nfailover (leader killed -> new pool reconciled by the standby): "
              f"{failover:.1f}s with a 6s lease")
        assert holder() == standby
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)


def _reconciles(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return total(text, "deskfleet_reconcile_total")


