"""The reference VNC session host (hosts/vnc-desktop) as local processes standing for
one pod of a pool on the test bed, with the pod's other parts:

- the host itself (`python3 -m deskfleet_vnc_host`, Debian's python3 for its websockify
  and Tk), listening on the pool Service's ClusterIP:port, a loopback address on the bed,
  so the gateway's route to the Service reaches it;
- the real `deskfleet agent` sidecar for that pod (`--session-source host`), reading the
  host's `sessions.json` and writing the drain files the host reads;
- a stand-in for the kubelet's share: the downward-API file of the pod's annotations (how
  the agent learns a drain) and the pool's host config ConfigMap as a file, both kept
  current from the API server, and a flag once the pod is gone.

    with running_vnc_host(bed, ns, pod, "desktops", workdir, path_prefix="/desktop",
                          session_command=[...]) as host:
        host.sessions()   # what the host reports
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .process import REPO, free_port, log_tail, running, wait_until

HOST_PACKAGE = REPO / "hosts" / "vnc-desktop"
DEBIAN_PYTHON = "/usr/bin/python3"  # with python3-websockify and python3-tk


def free_display(count: int = 8) -> int:
    """The first of `count` X display numbers no X server on this machine holds (a host
    uses one per desktop), from a random start so that runs side by side do not meet."""
    def free(n: int) -> bool:
        return not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists()

    for _ in range(200):
        start = random.randrange(100, 1000, count)
        if all(free(n) for n in range(start, start + count)):
            return start
    raise AssertionError("no free X display numbers")


def downward_api_annotations(annotations: dict[str, str]) -> str:
    """The kubelet's downward-API file: `key="value"` per line, sorted, Go-quoted."""
    return "".join(f"{k}={json.dumps(v, ensure_ascii=False)}\n"
                   for k, v in sorted(annotations.items()))


class PodMirror(threading.Thread):
    """Keeps the pod's annotations file and the host config file current, as the kubelet
    keeps a pod's downward-API and ConfigMap volumes; notes when the pod is gone."""

    def __init__(self, bed: Any, namespace: str, pod: str, configmap: str,
                 annotations_file: Path, host_config_file: Path) -> None:
        super().__init__(name=f"pod-mirror-{pod}", daemon=True)
        self.bed, self.namespace, self.pod, self.configmap = bed, namespace, pod, configmap
        self.annotations_file, self.host_config_file = annotations_file, host_config_file
        self.stopped, self.gone = threading.Event(), threading.Event()
        self.annotations: dict[str, str] = {}
        self.sync()

    def sync(self) -> None:
        proc = self.bed.kubectl("get", f"pod/{self.pod}", f"configmap/{self.configmap}",
                                "-n", self.namespace, "-o", "json", check=False)
        try:
            items = json.loads(proc.stdout or "{}").get("items") or []
        except ValueError:
            return
        kinds = {i["kind"]: i for i in items}
        pod = kinds.get("Pod")
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            if "NotFound" in proc.stderr or pod is not None:
                self.gone.set()
        else:
            self.annotations = pod["metadata"].get("annotations") or {}
            write_if_changed(self.annotations_file, downward_api_annotations(self.annotations))
        cm = kinds.get("ConfigMap")
        if cm is not None and "host.json" in (cm.get("data") or {}):
            write_if_changed(self.host_config_file, cm["data"]["host.json"])

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self.sync()


def write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class VncHost:
    pod: str
    address: str
    port: int
    display: int
    workdir: Path
    mirror: PodMirror

    @property
    def report_file(self) -> Path:
        return self.workdir / "host-report" / "sessions.json"

    @property
    def drain_dir(self) -> Path:
        return self.workdir / "drain"

    @property
    def log_path(self) -> Path:
        return self.workdir / "host.log"

    @property
    def agent_log_path(self) -> Path:
        return self.workdir / "agent.log"

    def sessions(self) -> list[dict[str, Any]]:
        """The host's own report (what the agent reads)."""
        sessions: list[dict[str, Any]] = json.loads(self.report_file.read_text())["sessions"]
        return sessions

    def logs(self) -> str:
        return (f"--- host\n{log_tail(self.log_path, 6000)}\n"
                f"--- agent\n{log_tail(self.agent_log_path, 3000)}")


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running_vnc_host(bed: Any, namespace: str, pod: str, pool: str, workdir: Path, *,
                     path_prefix: str, session_command: Sequence[str],
                     agent_interval: float = 0.5) -> Iterator[VncHost]:
    """The host, its agent and the kubelet stand-in for pod `pod` of pool `pool`, until
    the block ends. The host listens on the pool Service's ClusterIP and port."""
    svc = bed.get("service", pool, namespace)
    assert svc, f"no Service {namespace}/{pool}"
    address, port = svc["spec"]["clusterIP"], int(svc["spec"]["ports"][0]["port"])
    for d in ("podinfo", "config", "drain", "host-report", "homes"):
        (workdir / d).mkdir(parents=True, exist_ok=True)
    mirror = PodMirror(bed, namespace, pod, f"{pool}-host-config",
                       workdir / "podinfo" / "annotations", workdir / "config" / "host.json")
    def config_written() -> bool:
        mirror.sync()
        return (workdir / "config" / "host.json").exists()

    wait_until(config_written, timeout=30, what="the pool's host config")
    mirror.start()
    display = free_display()
    host = VncHost(pod, address, port, display, workdir, mirror)
    host_argv = [
        DEBIAN_PYTHON, "-m", "deskfleet_vnc_host", "--listen", f"{address}:{port}",
        "--path-prefix", path_prefix, "--display", str(display),
        "--rfb-port", str(free_port()), "--session-command",
        shlex.join(session_command),
        "--report", str(host.report_file), "--drain-dir", str(host.drain_dir),
        "--host-config", str(workdir / "config" / "host.json"),
        "--home-base", str(workdir / "homes"),
        "--control-socket", str(workdir / "control.sock"), "--geometry", "1100x760"]
    agent_argv = [
        sys.executable, "-m", "deskfleet", "agent", "--pod", pod, "--namespace", namespace,
        "--port", str(port), "--session-source", "host",
        "--host-report-file", str(host.report_file),
        "--annotations-file", str(workdir / "podinfo" / "annotations"),
        "--drain-file", str(host.drain_dir / "draining"),
        "--notice-file", str(host.drain_dir / "notice.json"),
        "--logoff-file", str(host.drain_dir / "logoff.json"),
        "--metrics-port", "0", "--interval", str(agent_interval), "--heartbeat", "5"]
    env = {**os.environ, "PYTHONPATH": str(HOST_PACKAGE)}
    try:
        with running(host_argv, host.log_path, ready=lambda: _listening(address, port),
                     what="the reference VNC host", env=env, timeout=30), \
                running(agent_argv, host.agent_log_path, ready=lambda: True,
                        what="deskfleet agent", env=bed.env):
            yield host
    finally:
        mirror.stopped.set()
        mirror.join(timeout=5)
