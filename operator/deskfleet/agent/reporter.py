"""The agent's loop: count, report to the pod's own annotations, deliver the operator's
drain instructions to the host, serve /metrics.

What the agent's identity may do (see docs/autoscaling.md): patch pods in its namespace,
nothing else; the chart's ValidatingAdmissionPolicy narrows that to its own pod's
`deskfleet.io/sessions*` annotations. It learns the operator's instructions from a
downward-API file of the pod's annotations, so it needs no read permission at all.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from ..clock import format_time
from ..kube.client import Kube, KubeError
from ..kube.resources import POD
from .annotations import (
    DISCONNECTED_ANNOTATION,
    DRAINING_ANNOTATION,
    REPORTED_AT_ANNOTATION,
    SESSIONS_ANNOTATION,
    SOURCE_ANNOTATION,
)
from .contract import DrainInstruction, ReportError, instruction_from_annotations
from .delivery import DeliveryPaths, deliver
from .podinfo import parse_annotations
from .sources import SessionCount, Source, from_host_file, from_host_url, from_tcp

__all__ = ["DRAINING_ANNOTATION", "REPORTED_AT_ANNOTATION", "SESSIONS_ANNOTATION", "Agent",
           "AgentConfig"]

log = logging.getLogger("deskfleet.agent")


@dataclass
class AgentConfig:
    pod: str
    namespace: str
    port: int
    source: Source = "tcp"
    proc_net: Path = Path("/proc/self/net")
    host_report_file: Path = Path("/run/deskfleet-host/sessions.json")
    host_report_url: str | None = None
    host_report_max_age: float = 90.0
    annotations_file: Path | None = Path("/etc/deskfleet/podinfo/annotations")
    drain_file: Path | None = Path("/run/deskfleet/draining")
    notice_file: Path | None = Path("/run/deskfleet/notice.json")
    logoff_file: Path | None = Path("/run/deskfleet/logoff.json")
    interval: float = 2.0
    heartbeat: float = 30.0
    metrics_port: int = 15090


def read_instruction(annotations_file: Path | None) -> DrainInstruction:
    """The downward API mirrors the pod's annotations into a file, kept current."""
    if not annotations_file or not annotations_file.exists():
        return DrainInstruction()
    return instruction_from_annotations(parse_annotations(annotations_file.read_text()))


class Agent:
    def __init__(self, config: AgentConfig, kube: Kube) -> None:
        self.config = config
        self.kube = kube
        self.registry = CollectorRegistry()
        self.sessions_gauge = Gauge("deskfleet_host_sessions",
                                    "Sessions on this host that count as load",
                                    registry=self.registry)
        self.disconnected_gauge = Gauge("deskfleet_host_sessions_disconnected",
                                        "Sessions on this host whose user is disconnected",
                                        registry=self.registry)
        self.report_ok_gauge = Gauge("deskfleet_host_report_ok",
                                     "1 while the session source gives a usable count",
                                     registry=self.registry)
        self.draining_gauge = Gauge("deskfleet_host_draining",
                                    "1 while the host is being retired", registry=self.registry)
        self.logoff_gauge = Gauge("deskfleet_host_logoff_requested",
                                  "1 once the host has been asked to log its users off",
                                  registry=self.registry)
        self.last_reported: SessionCount | None = None
        self.last_report_time = 0.0
        self.last_problem: str | None = None
        self.stopped = threading.Event()

    def count(self) -> SessionCount | None:
        """The host's sessions, or None when the source has nothing usable: then nothing
        is reported, the report ages, and the operator treats the host as unknown."""
        c = self.config
        now = datetime.now(UTC)
        try:
            if c.source == "tcp":
                count = from_tcp(c.proc_net, c.port)
            elif c.host_report_url:
                count = from_host_url(c.host_report_url, now, c.host_report_max_age)
            else:
                count = from_host_file(c.host_report_file, now, c.host_report_max_age)
        except ReportError as err:
            if str(err) != self.last_problem:  # once per problem, not every 2 s
                log.warning("no usable session report: %s", err)
                self.last_problem = str(err)
            self.report_ok_gauge.set(0)
            return None
        self.last_problem = None
        self.report_ok_gauge.set(1)
        return count

    def report(self, count: SessionCount) -> None:
        disconnected = None if count.disconnected is None else str(count.disconnected)
        annotations = {SESSIONS_ANNOTATION: str(count.load),
                       DISCONNECTED_ANNOTATION: disconnected,  # None: removed
                       SOURCE_ANNOTATION: count.source,
                       REPORTED_AT_ANNOTATION: format_time(datetime.now(UTC))}
        self.kube.merge_patch(POD, self.config.namespace, self.config.pod,
                              {"metadata": {"annotations": annotations}})
        self.last_reported = count
        self.last_report_time = time.monotonic()

    def tick(self) -> None:
        instruction = read_instruction(self.config.annotations_file)
        self.draining_gauge.set(1 if instruction.draining else 0)
        self.logoff_gauge.set(1 if instruction.logoff_requested_at else 0)
        paths = DeliveryPaths(self.config.drain_file, self.config.notice_file,
                              self.config.logoff_file)
        if deliver(instruction, paths):
            log.info("drain instruction delivered to the host: draining %s, deadline %s, "
                     "logoff %s", instruction.draining, instruction.deadline,
                     instruction.logoff_requested_at)
        count = self.count()
        if count is None:
            return
        self.sessions_gauge.set(count.load)
        self.disconnected_gauge.set(count.disconnected or 0)
        due = time.monotonic() - self.last_report_time >= self.config.heartbeat
        if count != self.last_reported or due:
            try:
                self.report(count)
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
