"""A session host's side of the session contract, on the test bed: the real `deskfleet
agent` as a local process against a kwok pod, with what the kubelet and the host
container would do around it played by the harness.

    stand-in session host ──sessions.json──▶ deskfleet agent ──annotations──▶ the pod
            ▲                                     │
            └── notice.json, logoff.json ◀────────┘◀── annotations file ◀── "kubelet"

- The host: keeps `sessions.json` current (rewritten every second, as the contract
  asks at least every 30 s); when `logoff.json` appears and the host cooperates, it
  reports its sessions `loggingOff` for a moment and then drops them.
- The kubelet's downward API: the pod's annotations mirrored into the file the agent
  reads, in the kubelet's format (`key="value"` lines, sorted, Go-quoted), every 0.3 s
  (a real kubelet takes up to a minute; this is the test's only shortcut).
- What the session container sees (`view()`): the files the agent delivered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deskfleet.agent.contract import HostSession, host_report_document
from deskfleet.agent.delivery import write_atomically
from deskfleet.kube.client import Kube, KubeError, load_api_client
from deskfleet.kube.resources import POD


def kubelet_annotations_file(annotations: dict[str, str]) -> str:
    """The downward-API file: JSON's string quoting is a subset Go's unquote reads."""
    return "".join(f"{key}={json.dumps(value)}\n" for key, value in sorted(annotations.items()))


class SessionHost:
    """One pod's host and agent, rooted at `root`."""

    def __init__(self, env: dict[str, str], namespace: str, pod: str, root: Path,
                 cooperative: bool = True, agent_interval: float = 0.2) -> None:
        self.env, self.namespace, self.pod, self.root = env, namespace, pod, root
        self.cooperative = cooperative  # logs its users off when asked
        self.agent_interval = agent_interval  # how often the agent reads the report
        self.sessions: list[HostSession] = []
        self.logged_off_at: float | None = None
        self.run_dir = root / "run"
        self.report = root / "host" / "sessions.json"
        self.podinfo = root / "podinfo" / "annotations"
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def set_sessions(self, *states: str) -> None:
        """The host's sessions now, by state (`active`, `disconnected`, `loggingOff`)."""
        with self.lock:
            self.sessions = [HostSession(f"s{i}", state, f"user{i}")
                             for i, state in enumerate(states)]
        self.write_report()

    def write_report(self) -> None:
        with self.lock:
            sessions = list(self.sessions)
        write_atomically(self.report, json.dumps(
            host_report_document(sessions, datetime.now(UTC))))

    def tick(self) -> None:
        """What the host does every second: act on a logoff request, rewrite its report."""
        if self.cooperative and (self.run_dir / "logoff.json").exists() and self.sessions:
            with self.lock:
                if self.logged_off_at is None:
                    self.logged_off_at = time.monotonic()
                    self.sessions = [HostSession(s.id, "loggingOff", s.user)
                                     for s in self.sessions]
                elif time.monotonic() - self.logged_off_at > 2:
                    self.sessions = []  # everyone logged off
        self.write_report()

    def mirror(self, annotations: dict[str, str]) -> None:
        """What the kubelet does: the pod's annotations into the downward-API file."""
        text = kubelet_annotations_file(annotations)
        if not self.podinfo.exists() or self.podinfo.read_text() != text:
            write_atomically(self.podinfo, text)

    def view(self) -> dict[str, Any]:
        """The files the session container reads, parsed (absent files left out)."""
        out: dict[str, Any] = {}
        for name in ("draining", "notice.json", "logoff.json"):
            path = self.run_dir / name
            with suppress(FileNotFoundError):
                text = path.read_text()
                out[name] = json.loads(text) if name.endswith(".json") else text.strip()
        return out

    def start(self) -> None:
        self.write_report()
        self.podinfo.parent.mkdir(parents=True, exist_ok=True)
        self.podinfo.touch()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deskfleet", "agent", "--pod", self.pod,
             "--namespace", self.namespace, "--port", "3389", "--session-source", "host",
             "--host-report-file", str(self.report), "--annotations-file", str(self.podinfo),
             "--drain-file", str(self.run_dir / "draining"),
             "--notice-file", str(self.run_dir / "notice.json"),
             "--logoff-file", str(self.run_dir / "logoff.json"),
             "--metrics-port", "0", "--interval", str(self.agent_interval),
             "--heartbeat", "5"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class SessionHosts:
    """The hosts of a test, one thread playing their containers and their kubelet."""

    def __init__(self, env: dict[str, str], kubeconfig: str, namespace: str,
                 root: Path) -> None:
        self.env, self.namespace, self.root = env, namespace, root
        self.kube = Kube(load_api_client(kubeconfig))
        self.hosts: dict[str, SessionHost] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def add(self, pod: str, *states: str, cooperative: bool = True) -> SessionHost:
        host = SessionHost(self.env, self.namespace, pod, self.root / pod, cooperative)
        host.set_sessions(*states)
        self._mirror(host)
        host.start()
        self.hosts[pod] = host
        return host

    def _mirror(self, host: SessionHost) -> None:
        try:
            pod = self.kube.get(POD, self.namespace, host.pod)
        except KubeError:
            return
        if pod is None:
            return
        host.mirror(pod["metadata"].get("annotations") or {})

    def _run(self) -> None:
        last_tick = 0.0
        while not self.stopped.wait(0.3):
            for host in list(self.hosts.values()):
                self._mirror(host)
                if time.monotonic() - last_tick >= 1:
                    host.tick()
            if time.monotonic() - last_tick >= 1:
                last_tick = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()
        for host in self.hosts.values():
            host.stop()


@contextmanager
def session_hosts(env: dict[str, str], kubeconfig: str, namespace: str,
                  root: Path) -> Iterator[SessionHosts]:
    hosts = SessionHosts(env, kubeconfig, namespace, root)
    hosts.thread.start()
    try:
        yield hosts
    finally:
        hosts.stop()
        hosts.thread.join(timeout=5)
