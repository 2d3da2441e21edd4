"""Reconciliation end to end: the example hospital converges, stays converged whatever
happens to its children, and a quiet cluster sees no writes."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any

import yaml

from deskfleet.kube.compare import is_subset

from ..conftest import PORTAL_URL, Bed, Operator, example_docs, wait_until
from ..support.faults import CHILD_KINDS
from ..support.metrics import samples
from ..support.revisions import host_deployments

POOLS = ("clinical-desktop", "ehr-web", "pacs-viewer")


def ready(bed: Bed, kind: str, name: str, ns: str) -> bool:
    obj = bed.get(kind, name, ns) or {}
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (obj.get("status") or {}).get("conditions", []))


def converge(bed: Bed, ns: str) -> None:
    for pool in POOLS:
        wait_until(lambda p=pool: ready(bed, "shp", p, ns), timeout=60, what=f"pool {pool}")
    apps = [a["metadata"]["name"] for a in bed.list("papp", ns)]
    for app in apps:
        if app != "teleconsult":
            wait_until(lambda a=app: ready(bed, "papp", a, ns), timeout=60, what=f"app {app}")


def children(bed: Bed, ns: str) -> list[dict[str, Any]]:
    return bed.list(CHILD_KINDS, ns, "app.kubernetes.io/managed-by=deskfleet")


def test_examples_converge_with_owned_children(bed: Bed, namespace: str,
                                               operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)
    kids = children(bed, namespace)
    kinds = sorted({k["kind"] for k in kids})
    assert kinds == ["ConfigMap", "Deployment", "HTTPRoute", "Ingress", "NetworkPolicy",
                     "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"]
    for kid in kids:
        if kid["metadata"]["name"] == "deskfleet-catalog":
            continue
        refs = kid["metadata"]["ownerReferences"]
        assert len(refs) == 1 and refs[0]["controller"] is True
    # Hosts run on the simulated nodes and the pool reports them.
    pods = bed.list("pods", namespace, "deskfleet.io/pool=clinical-desktop")
    wait_until(lambda: all(p["status"].get("phase") == "Running" for p in
                           bed.list("pods", namespace, "deskfleet.io/pool=clinical-desktop")),
               what="hosts Running")
    assert pods
    pool = bed.get("shp", "clinical-desktop", namespace)
    # Tuesday 11:00 (the pinned clock): day-peak phase, minHosts 2, nothing reported yet.
    assert pool and pool["status"]["hosts"] == "2/2"
    assert pool["status"]["phase"] == "day-peak"
    assert pool["status"]["observedGeneration"] == pool["metadata"]["generation"]
    app = bed.get("papp", "epr", namespace)
    assert app and app["status"]["url"] == "https://workspace.northgate.example/epr"
    assert app["status"]["route"] == "HTTPRoute/epr"
    route = bed.get("httproute", "epr", namespace)
    assert route and route["spec"]["rules"][0]["timeouts"]["request"] == "3600s"
    # The route asks the portal on every request (the default flavour: Traefik).
    [auth] = route["spec"]["rules"][0]["filters"]
    assert bed.get("middleware", auth["extensionRef"]["name"], namespace)
    ingress = bed.get("ingress", "intranet", namespace)  # the legacy path
    assert ingress
    assert ingress["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert ingress["spec"]["tls"][0]["secretName"] == "workspace-tls"
    catalog = bed.get("configmap", "deskfleet-catalog", namespace)
    assert catalog and '"displayName": "Electronic Patient Record"' in catalog["data"][
        "catalog.json"]
    out = bed.kubectl("get", "deskfleet", "-n", namespace).stdout
    assert re.search(r"clinical-desktop\s+2/2", out)


def test_children_are_restored_and_specs_propagate(bed: Bed, namespace: str,
                                                   operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)

    # A child deleted by hand comes back.
    uid = bed.get("service", "ehr-web", namespace)["metadata"]["uid"]  # type: ignore[index]
    bed.kubectl("delete", "service", "ehr-web", "-n", namespace)
    wait_until(lambda: (bed.get("service", "ehr-web", namespace) or {}).get(
        "metadata", {}).get("uid") not in (None, uid), what="Service recreated")

    # A managed field edited by hand is put back.
    bed.kubectl("annotate", "--overwrite", "ingress", "intranet", "-n", namespace,
                "nginx.ingress.kubernetes.io/proxy-read-timeout=60")
    wait_until(lambda: bed.get("ingress", "intranet", namespace)["metadata"]["annotations"][  # type: ignore[index]
        "nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600", what="annotation restored")
    bed.kubectl("patch", "networkpolicy", "ehr-web", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"egress":[]}}')
    wait_until(lambda: len(bed.get("networkpolicy", "ehr-web", namespace)["spec"].get(  # type: ignore[index]
        "egress", [])) == 2, what="egress rules restored")

    # A spec change reaches the children: a new port re-renders Service and route.
    bed.kubectl("patch", "shp", "ehr-web", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"port":9443}}')
    wait_until(lambda: bed.get("service", "ehr-web", namespace)["spec"]["ports"][0][  # type: ignore[index]
        "port"] == 9443, what="Service port updated")

    # An app moved to the Gateway API loses its Ingress and gains an HTTPRoute.
    bed.kubectl("patch", "papp", "intranet", "-n", namespace, "--type=merge", "-p",
                '{"spec":{"gateway":{"ingressClassName":null,"parentRef":{"name":"gw"}}}}')
    wait_until(lambda: bed.get("ingress", "intranet", namespace) is None and
               bed.get("httproute", "intranet", namespace) is not None, what="route swapped")


def test_deleting_a_pool_takes_its_apps_routes_down(bed: Bed, namespace: str,
                                                    operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)
    bed.kubectl("delete", "shp", "pacs-viewer", "-n", namespace)

    def reason(app: str) -> str:
        obj = bed.get("papp", app, namespace) or {}
        return next((c["reason"] for c in obj.get("status", {}).get("conditions", [])
                     if c["type"] == "Ready"), "")

    for app in ("pacs", "dictation"):
        wait_until(lambda a=app: reason(a) == "PoolNotFound", what=f"{app} PoolNotFound")
        wait_until(lambda a=app: bed.get("httproute", a, namespace) is None,
                   what=f"{app} route removed")
    wait_until(lambda: not host_deployments(bed, namespace, "pacs-viewer"), timeout=60,
               what="garbage collection of the pool's hosts")
    assert ready(bed, "papp", "epr", namespace)  # other pools' apps untouched
    # The pool comes back: so do the routes.
    bed.apply([d for d in example_docs(namespace) if d["metadata"]["name"] == "pacs-viewer"])
    wait_until(lambda: ready(bed, "papp", "pacs", namespace), timeout=60, what="pacs ready")


def test_restart_mid_way_converges_without_duplicates(bed: Bed, namespace: str,
                                                      operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    time.sleep(0.7)  # part-way through the first passes
    operator.stop()
    operator.start()
    converge(bed, namespace)
    kids = children(bed, namespace)
    names = [(k["kind"], k["metadata"]["name"]) for k in kids]
    assert len(names) == len(set(names))
    assert sum(1 for k, _ in names if k == "Deployment") == 3
    assert sum(1 for k, _ in names if k in ("Ingress", "HTTPRoute")) == 12


WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}
OPERATOR_RESOURCES = {"configmaps", "deployments", "services", "poddisruptionbudgets",
                      "networkpolicies", "ingresses", "httproutes", "events",
                      "sessionhostpools", "publishedapps", "accesspolicies"}


def count_writes(metrics: str) -> dict[str, int]:
    """Writes to the kinds the operator writes, from apiserver_request_total, by
    verb/resource/subresource."""
    counts: dict[str, int] = {}
    for labels, value in samples(metrics, "apiserver_request_total"):
        if labels.get("verb") in WRITE_VERBS and labels.get("resource") in OPERATOR_RESOURCES:
            key = f"{labels['verb']} {labels['resource']}/{labels.get('subresource', '')}"
            counts[key] = counts.get(key, 0) + int(value)
    return counts


def wait_for_quiet_cluster(bed: Bed) -> None:
    """The metrics count every writer: wait until earlier tests' namespaces are gone, so
    whatever writes during the window is this test's operator."""
    def no_terminating() -> bool:
        return "Terminating" not in bed.kubectl("get", "namespaces").stdout
    wait_until(no_terminating, timeout=180, interval=1, what="no Terminating namespaces")


def test_quiet_minute_after_convergence_makes_no_writes(bed: Bed, namespace: str,
                                                        operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)
    # kwok runs no agent: a host that never reported becomes "unknown" once older than
    # signalMaxAge (2m), a change of state its pool's status reports once. Wait for it.
    wait_until(lambda: all((p.get("status") or {}).get("unknownHosts") ==
                           (p.get("status") or {}).get("readyHosts")
                           for p in bed.list("shp", namespace)),
               timeout=240, interval=2, what="every pool's silent agents reported")
    wait_for_quiet_cluster(bed)
    time.sleep(5)  # let the last status echoes settle
    before = count_writes(bed.metrics())
    time.sleep(60)
    after = count_writes(bed.metrics())
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    writes = sum(delta.values())
    print(f"\nwrites to operator-managed kinds during a quiet minute: {writes} {delta}")
    assert writes == 0, delta


def test_offline_render_equals_what_the_operator_created(bed: Bed, namespace: str,
                                                         operator: Operator, tmp_path) -> None:
    docs = example_docs(namespace)
    bed.apply(docs)
    converge(bed, namespace)
    wait_until(lambda: bed.get("httproute", "teleconsult", namespace), what="HTTPRoute")
    manifest = tmp_path / "hospital.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    out = subprocess.run([sys.executable, "-m", "deskfleet", "render", "-f", str(manifest)],
                         check=True, capture_output=True, text=True,
                         env={**bed.env, **operator.settings_env}).stdout
    rendered = [d for d in yaml.safe_load_all(out) if d]
    assert len(rendered) == 3 * 8 + 12 + 11 + 1  # pools' children, routes, Middlewares, catalog
    for want in rendered:
        live = bed.get(want["kind"].lower(), want["metadata"]["name"], namespace)
        assert live is not None, f"{want['kind']}/{want['metadata']['name']} not created"
        for ref in want["metadata"].get("ownerReferences", []):
            ref.pop("uid")  # the only server-filled value the render cannot know
        if want["metadata"]["name"] == "deskfleet-catalog":
            continue  # its readiness flags reflect the live cluster
        assert is_subset(want, live), f"{want['kind']}/{want['metadata']['name']} differs"


def test_every_rendered_manifest_passes_the_api_servers_schema(bed: Bed, namespace: str,
                                                               tmp_path) -> None:
    """The render core's output, offline, validated by the real API server against the
    schema of each kind, with strict field validation (an unknown field fails)."""
    manifest = tmp_path / "hospital.yaml"
    manifest.write_text(yaml.safe_dump_all(example_docs(namespace)))
    rendered = subprocess.run([sys.executable, "-m", "deskfleet", "render", "-f",
                               str(manifest)], check=True, capture_output=True, text=True,
                              env={**bed.env, "DESKFLEET_PORTAL_URL": PORTAL_URL}).stdout
    proc = bed.kubectl("apply", "--server-side", "--dry-run=server", "--validate=strict",
                       "-f", "-", stdin=rendered)
    kinds = {line.split("/")[0].split(".")[0] for line in proc.stdout.splitlines()}
    assert kinds == {"configmap", "deployment", "service", "poddisruptionbudget",
                     "networkpolicy", "ingress", "httproute", "middleware", "serviceaccount",
                     "role", "rolebinding"}, proc.stdout
