"""The render core: what each resource turns into, checked without a cluster. (The
cluster tests additionally apply every rendered kind to the real API server.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from deskfleet.api.parse import parse
from deskfleet.controllers.pools import _desired_children
from deskfleet.manifests import load_paths
from deskfleet.render.app import PoolFacts, RouteAccess, app_url, build_app_children
from deskfleet.render.catalog import build_catalog
from deskfleet.render.configdata import DocumentTooLarge
from deskfleet.render.offline import render_objects
from deskfleet.render.pool import build_config_map, build_pool_children
from deskfleet.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [d for d in load_paths([REPO / "examples"]) if "deskfleet" in d["apiVersion"]]


def example(name: str) -> Any:
    body = next(d for d in EXAMPLES if d["metadata"]["name"] == name)
    return parse({**body, "metadata": {**body["metadata"], "uid": "uid-1"}})


def by_kind(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in children}


def test_pool_renders_its_children_owned_by_it() -> None:
    kids = build_pool_children(example("clinical-desktop"), Settings())
    assert [c["kind"] for c in kids] == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap",
                                         "Deployment", "Service", "PodDisruptionBudget",
                                         "NetworkPolicy"]
    for kid in kids:
        assert kid["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert kid["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "deskfleet"


def test_deployment_leaves_replicas_to_the_autoscaler_and_is_restricted() -> None:
    deploy = by_kind(build_pool_children(example("clinical-desktop"), Settings()))["Deployment"]
    assert "replicas" not in deploy["spec"]
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    host = pod["containers"][0]
    assert host["securityContext"]["allowPrivilegeEscalation"] is False
    assert host["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert host["ports"][0]["containerPort"] == 3389
    assert host["readinessProbe"]["tcpSocket"]["port"] == "session"
    assert pod["automountServiceAccountToken"] is False
    # The agent sidecar alone mounts a token; the session host gets none.
    agent = pod["containers"][1]
    assert agent["name"] == "deskfleet-agent" and "--port" in agent["args"]
    assert any(m["name"] == "agent-token" for m in agent["volumeMounts"])
    assert not any(m["name"] == "agent-token" for m in host["volumeMounts"])
    assert pod["serviceAccountName"] == "clinical-desktop-agent"
    assert deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert {"name": "AD_JOIN_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "ad-join", "key": "password"}}} in host["env"]


def test_service_selects_only_accepting_hosts_and_pdb_only_busy_ones() -> None:
    kids = by_kind(build_pool_children(example("ehr-web"), Settings()))
    assert kids["Service"]["spec"]["selector"] == {"deskfleet.io/pool": "ehr-web",
                                                   "deskfleet.io/accepting": "true"}
    assert kids["Service"]["spec"]["ports"][0]["port"] == 8443
    assert kids["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"][
        "deskfleet.io/busy"] == "true"


def test_network_policy_admits_only_the_gateway_and_reaches_only_backends() -> None:
    settings = Settings(gateway_pod_labels={"app": "ingress-nginx"})
    np = by_kind(build_pool_children(example("clinical-desktop"), settings))["NetworkPolicy"]
    spec = np["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"][0] == {"from": [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
        "podSelector": {"matchLabels": {"app": "ingress-nginx"}}}],
        "ports": [{"port": 3389, "protocol": "TCP"}]}
    cidrs = [rule["to"][0].get("ipBlock", {}).get("cidr") for rule in spec["egress"]]
    assert cidrs == [None, "10.40.0.0/24", "10.40.8.0/24"]  # DNS, then the backends
    assert spec["ingress"][1]["ports"] == [{"port": 15090, "protocol": "TCP"}]  # agent metrics


def test_agent_may_patch_pods_and_nothing_else() -> None:
    kids = by_kind(build_pool_children(example("ehr-web"), Settings()))
    assert kids["Role"]["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                                      "verbs": ["patch"]}]
    assert kids["RoleBinding"]["subjects"][0]["name"] == "ehr-web-agent"


def test_api_server_egress_only_when_configured() -> None:
    settings = Settings(api_server_cidrs=["10.0.0.1/32"])
    np = by_kind(build_pool_children(example("ehr-web"), settings))["NetworkPolicy"]
    assert np["spec"]["egress"][-1]["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]


def test_user_values_cannot_change_manifest_structure() -> None:
    """Values are data in dicts, never text spliced into YAML."""
    body = next(d for d in EXAMPLES if d["metadata"]["name"] == "epr")
    body = {**body, "metadata": {**body["metadata"], "uid": "u"},
            "spec": {**body["spec"], "description": "x\"}\nkind: Secret\n---\n{",
                     "displayName": "{{ 7*7 }} ' \" \\"}}
    docs = render_objects([*[d for d in EXAMPLES if d["kind"] == "SessionHostPool"], body])
    catalog = next(d for d in docs if d["metadata"]["name"] == "deskfleet-catalog")
    entry = json.loads(catalog["data"]["catalog.json"])["apps"][0]
    assert entry["description"] == "x\"}\nkind: Secret\n---\n{"
    assert entry["displayName"] == "{{ 7*7 }} ' \" \\"
    assert not any(d["kind"] == "Secret" for d in docs)


def ready_pool(name: str = "ehr-web", port: int = 8443) -> PoolFacts:
    return PoolFacts(name=name, exists=True, ready=True, port=port, protocol="http")


def test_ingress_has_websocket_timeouts_affinity_and_tls() -> None:
    [ingress] = build_app_children(example("intranet"), ready_pool(), RouteAccess(),
                                   Settings())
    ann = ingress["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert ann["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert ingress["spec"]["tls"] == [{"hosts": ["workspace.northgate.example"],
                                       "secretName": "workspace-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"] == "/intranet" and path["backend"]["service"]["name"] == "ehr-web"


def test_parent_ref_renders_an_http_route() -> None:
    [route] = build_app_children(example("teleconsult"), ready_pool(), RouteAccess(),
                                 Settings())
    assert route["kind"] == "HTTPRoute"
    assert route["spec"]["parentRefs"][0]["name"] == "public-gateway"
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "ehr-web", "port": 8443}]
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "3600s"}


def test_route_is_down_without_a_ready_pool_or_any_allow() -> None:
    app = example("epr")
    assert build_app_children(app, PoolFacts(name="ehr-web", exists=False), RouteAccess(),
                              Settings()) == []
    assert build_app_children(app, PoolFacts(name="ehr-web", exists=True, ready=False),
                              RouteAccess(), Settings()) == []
    assert build_app_children(app, ready_pool(), RouteAccess(open=False), Settings()) == []


def test_route_carries_source_ranges() -> None:
    [ingress] = build_app_children(example("intranet"), ready_pool(),
                                   RouteAccess(source_ranges=("10.0.0.0/8", "203.0.113.0/24")),
                                   Settings())
    assert ingress["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/whitelist-source-range"] == "10.0.0.0/8,203.0.113.0/24"


def test_urls() -> None:
    assert app_url(example("results-viewer").spec) == \
        "https://workspace.northgate.example/results/home"
    assert app_url(example("desktop").spec) == "https://workspace.northgate.example/desktop"


def test_catalog_is_sorted_and_absent_without_apps() -> None:
    assert build_catalog("ns", "deskfleet-catalog", []) is None
    docs = render_objects(EXAMPLES)
    catalog = next(d for d in docs if d["metadata"]["name"] == "deskfleet-catalog")
    doc = json.loads(catalog["data"]["catalog.json"])
    keys = [(a["category"], a["displayName"]) for a in doc["apps"]]
    assert keys == sorted(keys) and len(keys) == 12
    assert doc["categories"] == ["Clinical", "Desktops", "Office", "Radiology"]


def test_offline_render_of_examples() -> None:
    kinds = [d["kind"] for d in render_objects(EXAMPLES)]
    assert kinds.count("Deployment") == 3 and kinds.count("Ingress") == 1  # the intranet
    assert kinds.count("HTTPRoute") == 11 and kinds.count("ConfigMap") == 4
    # With the portal configured, each HTTPRoute asks it through a Middleware (traefik).
    enforced = [d["kind"] for d in render_objects(
        EXAMPLES, Settings(portal_url="http://deskfleet-portal.deskfleet.svc:8080"))]
    assert enforced.count("Middleware") == 11


def test_a_host_config_too_large_even_compressed_keeps_the_live_one() -> None:
    """The hosts keep the config they have; the other children still converge."""
    pool = example("clinical-desktop")
    # Random grants (incompressible), a few MB of them.
    apps = {f"app-{i}": {"grants": [os.urandom(512).hex()]} for i in range(2000)}
    with pytest.raises(DocumentTooLarge, match=r"host config of pool .*2000 apps.*more pools"):
        build_config_map(pool, apps)
    live_config = {**build_config_map(pool), "metadata": {"name": "kept"}}
    children, error = _desired_children(pool, Settings(), apps, [live_config])
    assert error is not None and "2000 apps" in error
    assert [c for c in children if c["kind"] == "ConfigMap"] == [live_config]
    assert {c["kind"] for c in children} >= {"Deployment", "Service", "NetworkPolicy"}


def test_a_pool_is_rendered_again_only_when_its_inputs_change() -> None:
    """Scaling passes (every 30 s per pool) reuse the rendering; a new app label, a
    policy's new spec or the pool's new generation do not."""
    from deskfleet.controllers.cache import slim
    from deskfleet.controllers.pools import PoolSnapshot, _rendered
    from deskfleet.controllers.process import RenderedChildren
    from deskfleet.kube.compare import Digest

    body = next(d for d in EXAMPLES if d["metadata"]["name"] == "clinical-desktop")
    body = {**body, "metadata": {**body["metadata"], "uid": "uid-r", "generation": 1}}
    policy = next(d for d in EXAMPLES if d["kind"] == "AccessPolicy")
    policy = {**policy, "metadata": {**policy["metadata"], "uid": "p1", "generation": 1}}
    app = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "PublishedApp",
           "metadata": {"name": "epr", "namespace": body["metadata"].get("namespace"),
                        "labels": {"tier": "a"}},
           "spec": {"poolRef": {"name": "clinical-desktop"}}}
    pool = parse(body)
    kept = RenderedChildren()  # the operator process's: ProcessState.rendered

    live: list[dict[str, Any]] = []  # as the cache holds them: documents as digests

    def render(app_labels: dict[str, str], generation: int = 1,
               policy_generation: int = 1) -> list[dict[str, Any]]:
        a = {**app, "metadata": {**app["metadata"], "labels": app_labels}}
        p = {**policy, "metadata": {**policy["metadata"], "generation": policy_generation}}
        b = {**body, "metadata": {**body["metadata"], "generation": generation}}
        children = _rendered(pool, Settings(), PoolSnapshot(b, live, apps=[a], policies=[p]),
                             kept)[0]
        live[:] = [slim(c) for c in children]  # applied
        return children

    def documents(children: list[dict[str, Any]]) -> list[Any]:
        return [v for c in children if c["kind"] == "ConfigMap"
                for part in ("data", "binaryData") for v in (c.get(part) or {}).values()]

    first = render({"tier": "a"})
    assert all(isinstance(d, str) for d in documents(first))  # rendered: what to apply
    again = render({"tier": "a"})  # a status write changed nothing it reads
    assert again is render({"tier": "a"}) and again is not first
    assert all(isinstance(d, Digest) for d in documents(again))  # kept: only compared
    assert documents(again) == documents(first)
    assert render({"tier": "b"}) is not again
    assert render({"tier": "b"}, generation=2) is not render({"tier": "b"})
    assert render({"tier": "b"}, policy_generation=2) is not render({"tier": "b"})
    latest = render({"tier": "b"})
    assert render({"tier": "b"}) is latest
    live[:] = [c for c in live if c["kind"] != "ConfigMap"]  # deleted by hand
    restored = render({"tier": "b"})
    assert restored is not latest and all(isinstance(d, str) for d in documents(restored))
    assert len(kept) == 1  # one entry per pool, until the pool goes
    kept.forget((pool.namespace, pool.name))
    assert len(kept) == 0 and render({"tier": "b"}) is not latest
