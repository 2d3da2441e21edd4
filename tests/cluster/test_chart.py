"""The Helm chart, installed for real on the test bed with real `helm`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deskfleet.kube.client import Kube, KubeError, load_api_client
from deskfleet.kube.resources import POD

from ..conftest import REPO, Bed, example_docs, free_port, wait_until
from .test_reconcile import converge

CHART = REPO / "charts" / "deskfleet"
KUBE_VERSION = ("--kube-version", "1.36.3")  # `helm template` assumes an old one offline


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


NON_DEFAULT = {"replicaCount": 3, "watchNamespaces": ["ward-a", "ward-b"],
               "auth": {"url": "https://auth.example/oauth2/auth"},
               "apiServerCidrs": ["10.0.0.1/32"], "logLevel": "debug",
               "metrics": {"serviceMonitor": {"enabled": True},
                           "prometheusRule": {"enabled": True},
                           "dashboard": {"enabled": True}}}


def test_lint_and_template_with_default_and_custom_values(bed: Bed, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(NON_DEFAULT))
    helm(bed, "lint", str(CHART))
    helm(bed, "lint", str(CHART), "-f", str(values))
    default = render(bed)
    custom = render(bed, "-f", str(values))
    kinds = [d["kind"] for d in custom]
    assert {"ServiceMonitor", "PrometheusRule"} <= set(kinds)
    assert kinds.count("RoleBinding") == 3  # two watched namespaces + the leader Lease
    deploy = next(d for d in custom if d["kind"] == "Deployment")
    assert "--namespace=ward-a" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(d["kind"] == "ServiceMonitor" for d in default)


def test_no_wildcards_in_rbac(bed: Bed) -> None:
    docs = render(bed)
    for role in (d for d in docs if d["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"replicaCount": 0}, "replicaCount"),
    ({"replicaCount": "two"}, "replicaCount"),
    ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"watchNamespaces": ["Ward_A"]}, "watchNamespaces"),
    ({"unknownSetting": True}, "unknownSetting"),
    ({"metrics": {"port": 80}}, "port"),
    ({"auth": {"url": "ftp://auth"}}, "url"),
    ({"apiServerCidrs": ["apiserver"]}, "apiServerCidrs"),
    ({"logLevel": "trace"}, "logLevel"),
    ({"metrics": {"serviceMonitor": {"interval": "soon"}}}, "interval"),
    ({"gateway": {"namespaceLabels": {"a": 1}}}, "namespaceLabels"),
    ({"agentAdmissionPolicy": {"enabled": "yes"}}, "enabled"),
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
         "--set", "replicaCount=1", "--wait", "--timeout", "120s")
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


def test_install_rbac_upgrade_uninstall(bed: Bed, release: str, namespace: str,
                                        tmp_path: Path) -> None:
    # The CRDs and the operator, whose pod runs on a simulated node.
    assert bed.kubectl("get", "crd", "sessionhostpools.deskfleet.io", check=False).returncode == 0
    wait_until(lambda: any(p["status"].get("phase") == "Running" for p in bed.list(
        "pods", release, "app.kubernetes.io/instance=deskfleet")), timeout=60,
        what="operator pod Running")

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
        assert bed.get("ingress", "epr", namespace) is not None
        assert bed.get("role", "clinical-desktop-agent", namespace) is not None
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "Forbidden" not in log.read_text(), log.read_text()[-3000:]

    # ... and not excessive: what it never needs is refused.
    def can(*args: str) -> str:
        return subprocess.run([str(Path(bed.bin) / "kubectl"), "auth", "can-i", *args],
                              env=env, capture_output=True, text=True).stdout.strip()
    assert can("list", "secrets", "-n", namespace) == "no"
    assert can("create", "pods", "-n", namespace) == "no"
    assert can("delete", "sessionhostpools", "-n", namespace) == "no"
    assert can("patch", "nodes") == "no"
    assert can("create", "clusterrolebindings") == "no"
    assert can("patch", "deployments", "-n", namespace) == "yes"
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
        wait_until(lambda: bed.get("deployment", "after-failover", namespace), timeout=60,
                   interval=0.1, what="the standby to take over and reconcile")
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
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("deskfleet_reconcile_total{"))


