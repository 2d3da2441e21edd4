"""The test bed is a real control plane: real API server, scheduling onto simulated
nodes, the garbage collector, and the operator process starting against it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..conftest import Bed, Operator, wait_until


def test_api_server_is_the_real_kubernetes(bed: Bed) -> None:
    version = bed.kubectl("version", "-o", "json").stdout
    assert '"gitVersion": "v1.36.3"' in version
    if bed.bin:
        out = subprocess.run([str(Path(bed.bin) / "kube-apiserver"), "--version"],
                             capture_output=True, text=True, check=True).stdout
        print(f"\ncontrol plane: {out.strip()}")
        assert out.strip() == "Kubernetes v1.36.3"


def test_deployment_pods_reach_running_on_simulated_nodes(bed: Bed, namespace: str) -> None:
    bed.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", namespace)

    def running() -> bool:
        pods = bed.list("pods", namespace, "app=web")
        return len(pods) == 3 and all(p["status"].get("phase") == "Running" and
                                      p["spec"].get("nodeName", "").startswith("kwok-node")
                                      for p in pods)

    wait_until(running, timeout=60, what="3 Running pods")


def test_garbage_collector_deletes_owned_objects(bed: Bed, namespace: str) -> None:
    bed.kubectl("create", "configmap", "owner", "-n", namespace)
    owner = bed.get("configmap", "owner", namespace)
    assert owner
    bed.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "owned", "namespace": namespace, "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                    "uid": owner["metadata"]["uid"]}]}}])
    bed.kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_until(lambda: bed.get("configmap", "owned", namespace) is None, timeout=60,
               what="garbage collection of the owned ConfigMap")


def test_operator_starts_and_is_live(operator: Operator) -> None:
    assert operator.live()
    assert operator.proc is not None and operator.proc.poll() is None
