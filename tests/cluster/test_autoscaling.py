"""Session-aware autoscaling end to end: real `deskfleet agent` processes report sessions
(read from TCP tables we write) onto real pods; the operator scales the real Deployment.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deskfleet.agent.sessions import tcp_table

from ..conftest import Bed, Operator, wait_until
from ..support.revisions import current_replicas

PORT = 3389


def pool_manifest(namespace: str, **scaling: Any) -> dict[str, Any]:
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
            "metadata": {"name": "desk", "namespace": namespace},
            "spec": {"image": "registry.example/desktop:1", "protocol": "rdp",
                     "sessionsPerHost": 2,
                     "scaling": {"minHosts": 2, "maxHosts": 6, "bufferSessions": 1,
                                 "scaleInDelay": "3s", **scaling}}}


class Agents:
    """One real agent process per host, each reading its own synthetic TCP table."""

    def __init__(self, bed: Bed, namespace: str, root: Path) -> None:
        self.bed, self.namespace, self.root = bed, namespace, root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def set_sessions(self, pod: str, sessions: int) -> None:
        table = self.root / pod
        table.mkdir(parents=True, exist_ok=True)
        (table / "tcp.tmp").write_text(tcp_table(sessions, PORT))
        (table / "tcp.tmp").rename(table / "tcp")
        if pod not in self.procs:
            self.procs[pod] = subprocess.Popen(
                [sys.executable, "-m", "deskfleet", "agent", "--pod", pod,
                 "--namespace", self.namespace, "--port", str(PORT), "--proc-net", str(table),
                 "--annotations-file", "", "--drain-file", "", "--metrics-port", "0",
                 "--interval", "0.2", "--heartbeat", "5"],
                env=self.bed.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            proc.wait(timeout=10)


@pytest.fixture
def agents(bed: Bed, namespace: str, tmp_path: Path) -> Iterator[Agents]:
    a = Agents(bed, namespace, tmp_path / "proc")
    yield a
    a.stop()


def hosts(bed: Bed, ns: str) -> list[dict[str, Any]]:
    return [p for p in bed.list("pods", ns, "deskfleet.io/pool=desk")
            if not p["metadata"].get("deletionTimestamp")]


def ready_hosts(bed: Bed, ns: str, count: int) -> list[str]:
    def ready() -> list[str] | None:
        pods = hosts(bed, ns)
        names = [p["metadata"]["name"] for p in pods if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", []))]
        return sorted(names) if len(names) == count == len(pods) else None
    result: list[str] = wait_until(ready, timeout=60, what=f"{count} ready hosts")
    return result


def replicas(bed: Bed, ns: str) -> int:
    return current_replicas(bed, ns, "desk")


def labels(bed: Bed, ns: str, pod: str) -> dict[str, str]:
    return (bed.get("pod", pod, ns) or {}).get("metadata", {}).get("labels", {})


def endpoints(bed: Bed, ns: str) -> set[str]:
    names = set()
    for eps in bed.list("endpointslices", ns, "kubernetes.io/service-name=desk"):
        for ep in eps.get("endpoints") or []:
            names.add(ep.get("targetRef", {}).get("name"))
    return names


def test_full_hosts_stop_receiving_sessions_and_the_pool_scales_out_then_in(
        bed: Bed, namespace: str, operator: Operator, agents: Agents) -> None:
    bed.apply([pool_manifest(namespace)])
    first = ready_hosts(bed, namespace, 2)
    for pod in first:
        agents.set_sessions(pod, 0)
    wait_until(lambda: (bed.get("shp", "desk", namespace) or {}).get("status", {}).get(
        "capacity") == 4, what="capacity 4 reported")

    # A full host leaves the Service's endpoints; it returns when a slot frees.
    agents.set_sessions(first[0], 2)
    wait_until(lambda: labels(bed, namespace, first[0]).get("deskfleet.io/accepting")
               == "false", what="full host not accepting")
    wait_until(lambda: first[0] not in endpoints(bed, namespace) and
               first[1] in endpoints(bed, namespace), what="full host out of the Service")
    assert labels(bed, namespace, first[0])["deskfleet.io/busy"] == "true"

    # A surge: 2 + 2 sessions + a buffer of 1 need 3 hosts. Time from report to replicas.
    reported = time.monotonic()
    agents.set_sessions(first[1], 2)
    wait_until(lambda: replicas(bed, namespace) == 3, timeout=30, interval=0.05,
               what="scale-out to 3")
    reaction = time.monotonic() - reported
    print(f"\nsession report -> new replica count: {reaction:.2f}s")
    # The pass writes the pool's status just after the Deployment: wait for it.
    status = wait_until(lambda: (bed.get("shp", "desk", namespace) or {}).get(
        "status", {}).get("lastScaling") and bed.get("shp", "desk", namespace)["status"],  # type: ignore[index]
        what="lastScaling in status")
    assert status["lastScaling"]["direction"] == "up"
    everyone = ready_hosts(bed, namespace, 3)
    newcomer = next(p for p in everyone if p not in first)
    agents.set_sessions(newcomer, 1)

    # A slot frees on the first host: it takes sessions again.
    agents.set_sessions(first[0], 1)
    wait_until(lambda: first[0] in endpoints(bed, namespace), what="host back in the Service")

    # Sessions drain away except on the newcomer: the hosts that still have sessions
    # survive scale-in, the empty ones go.
    agents.set_sessions(first[0], 0)
    agents.set_sessions(first[1], 0)
    try:
        wait_until(lambda: replicas(bed, namespace) == 2, timeout=60, what="scale-in to 2")
    except AssertionError:
        status = (bed.get("shp", "desk", namespace) or {}).get("status", {})
        pods = {p["metadata"]["name"]: p["metadata"].get("annotations") for p in
                hosts(bed, namespace)}
        raise AssertionError(f"no scale-in: {status.get('scalingReason')}\n{pods}") from None
    survivors = ready_hosts(bed, namespace, 2)
    assert newcomer in survivors
    events = bed.kubectl("get", "events", "-n", namespace, "--field-selector",
                         "involvedObject.name=desk", "-o", "jsonpath={.items[*].reason}").stdout
    assert "ScaledUp" in events and "ScaledDown" in events


def test_hosts_with_sessions_are_never_removed(bed: Bed, namespace: str, operator: Operator,
                                               agents: Agents) -> None:
    bed.apply([pool_manifest(namespace, minHosts=0, bufferSessions=0)])
    pods = ready_hosts(bed, namespace, 1)
    agents.set_sessions(pods[0], 1)
    bed.kubectl("patch", "shp", "desk", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"scaling":{"maxHosts":1}}}')
    # The pool wants 1 host for 1 session: nothing to remove, even after the delay.
    time.sleep(5)
    assert [p["metadata"]["name"] for p in hosts(bed, namespace)] == pods
    # Silence the agent: a stale signal must never lead to removal either.
    agents.stop()
    time.sleep(5)
    assert [p["metadata"]["name"] for p in hosts(bed, namespace)] == pods


def test_schedule_phase_raises_the_floor_at_its_start(bed: Bed, namespace: str,
                                                      operator: Operator,
                                                      agents: Agents) -> None:
    operator.clock_file.write_text("2026-11-24T06:59:00+00:00")  # Tuesday, 06:59 London
    bed.apply([pool_manifest(namespace, schedule={
        "timeZone": "Europe/London",
        "phases": [{"name": "logon-storm", "type": "rampUp", "start": "07:00",
                    "end": "09:30", "minHosts": 5}]})])
    for pod in ready_hosts(bed, namespace, 2):
        agents.set_sessions(pod, 0)
    time.sleep(3)
    assert replicas(bed, namespace) == 2
    status = bed.get("shp", "desk", namespace)["status"]  # type: ignore[index]
    assert status["phase"] == "base"
    operator.clock_file.write_text("2026-11-24T07:00:00+00:00")
    wait_until(lambda: replicas(bed, namespace) == 5, timeout=20, what="floor raised to 5")
    wait_until(lambda: (bed.get("shp", "desk", namespace) or {}).get("status", {}).get(
        "phase") == "logon-storm", what="phase reported")
