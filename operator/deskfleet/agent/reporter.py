"""The agent's loop: count, report to the pod's own annotations, serve /metrics.

What the agent's identity may do (see docs/agent.md): patch pods in its namespace,
nothing else; the chart's ValidatingAdmissionPolicy narrows that to its own pod's
`deskfleet.io/sessions*` annotations. It learns that its host is draining from a
downward-API file, so it needs no read permission at all.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from ..kube.client import Kube, KubeError
from ..kube.resources import POD
from .sessions import count_sessions

log = logging.getLogger("deskfleet.agent")

SESSIONS_ANNOTATION = "deskfleet.io/sessions"
REPORTED_AT_ANNOTATION = "deskfleet.io/sessions-reported-at"
DRAINING_ANNOTATION = "deskfleet.io/draining-since"


@dataclass
class AgentConfig:
    pod: str
    namespace: str
    port: int
    proc_net: Path = Path("/proc/self/net")
    annotations_file: Path | None = Path("/etc/deskfleet/podinfo/annotations")
    drain_file: Path | None = Path("/run/deskfleet/draining")
    interval: float = 2.0
    heartbeat: float = 30.0
    metrics_port: int = 15090


def read_sessions(proc_net: Path, port: int) -> int:
    tables = [(proc_net / name).read_text() for name in ("tcp", "tcp6")
              if (proc_net / name).exists()]
    return count_sessions(tables, port)


def draining(annotations_file: Path | None) -> bool:
    """The downward API mirrors the pod's annotations into a file, kept current."""
    if not annotations_file or not annotations_file.exists():
        return False
    return any(line.startswith(f"{DRAINING_ANNOTATION}=")
               for line in annotations_file.read_text().splitlines())


class Agent:
    def __init__(self, config: AgentConfig, kube: Kube) -> None:
        self.config = config
        self.kube = kube
        self.registry = CollectorRegistry()
        self.sessions_gauge = Gauge("deskfleet_host_sessions", "Live sessions on this host",
                                    registry=self.registry)
        self.draining_gauge = Gauge("deskfleet_host_draining",
                                    "1 while the host is being retired", registry=self.registry)
        self.last_reported: int | None = None
        self.last_report_time = 0.0
        self.stopped = threading.Event()

    def report(self, sessions: int) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"metadata": {"annotations": {SESSIONS_ANNOTATION: str(sessions),
                                              REPORTED_AT_ANNOTATION: now}}}
        self.kube.merge_patch(POD, self.config.namespace, self.config.pod, patch)
        self.last_reported = sessions
        self.last_report_time = time.monotonic()

    def tick(self) -> None:
        sessions = read_sessions(self.config.proc_net, self.config.port)
        self.sessions_gauge.set(sessions)
        is_draining = draining(self.config.annotations_file)
        self.draining_gauge.set(1 if is_draining else 0)
        if self.config.drain_file:
            # The host image shows the notice and refuses new logons while this exists.
            if is_draining and not self.config.drain_file.exists():
                self.config.drain_file.parent.mkdir(parents=True, exist_ok=True)
                self.config.drain_file.write_text("draining\n")
            elif not is_draining and self.config.drain_file.exists():
                self.config.drain_file.unlink()
        due = time.monotonic() - self.last_report_time >= self.config.heartbeat
        if sessions != self.last_reported or due:
            try:
                self.report(sessions)
            except KubeError as err:
                log.warning("could not report sessions: %s", err)

    def run(self) -> None:
        if self.config.metrics_port:
            start_http_server(self.config.metrics_port, registry=self.registry)
        while not self.stopped.is_set():
            try:
                self.tick()
            except OSError as err:
                log.warning("could not count sessions: %s", err)
            self.stopped.wait(self.config.interval)
