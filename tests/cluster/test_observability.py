"""Metrics end to end: a real Prometheus scrapes the running operator on 127.0.0.1 and
sees pool metrics follow the sessions the agents report; the dashboard only queries
metrics a real scrape contains; the alert rules load into that Prometheus."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import REPO, Bed, Operator, free_port, wait_until
from .test_autoscaling import Agents, pool_manifest, ready_hosts

DASHBOARD = REPO / "charts" / "deskfleet" / "files" / "dashboard.json"
ALERTS = REPO / "charts" / "deskfleet" / "files" / "alerts.yaml"


class Prometheus:
    def __init__(self, workdir: Path, target_port: int) -> None:
        binary = shutil.which("prometheus")
        assert binary, "Debian's prometheus package is required (hack/setup.sh installs it)"
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)] if ALERTS.exists() else [],
            "scrape_configs": [{"job_name": "deskfleet", "static_configs": [
                {"targets": [f"127.0.0.1:{target_port}"]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        wait_until(lambda: self._get("/-/ready") is not None, timeout=30, what="prometheus")

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                        timeout=2) as response:
                body = response.read()
                return json.loads(body) if body.startswith(b"{") else body
        except OSError:
            return None

    def query(self, expr: str) -> list[dict[str, Any]]:
        result = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        return list(result["data"]["result"]) if result else []

    def value(self, expr: str) -> float | None:
        samples = self.query(expr)
        return float(samples[0]["value"][1]) if samples else None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture
def prometheus(operator: Operator, tmp_path: Path) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path, operator.metrics_port)
    yield prom
    prom.stop()


@pytest.fixture
def agents(bed: Bed, namespace: str, tmp_path: Path) -> Iterator[Agents]:
    a = Agents(bed, namespace, tmp_path / "proc")
    yield a
    a.stop()


def test_prometheus_sees_pool_metrics_follow_sessions(
        bed: Bed, namespace: str, operator: Operator, prometheus: Prometheus,
        agents: Agents) -> None:
    bed.apply([pool_manifest(namespace, bufferSessions=1)])
    hosts = ready_hosts(bed, namespace, 2)
    for host in hosts:
        agents.set_sessions(host, 0)
    selector = f'{{namespace="{namespace}",pool="desk"}}'
    wait_until(lambda: prometheus.value(f"deskfleet_pool_capacity_sessions{selector}") == 4,
               timeout=30, what="capacity 4 in Prometheus")
    assert prometheus.value(f"deskfleet_pool_sessions{selector}") == 0
    assert prometheus.value('up{job="deskfleet"}') == 1

    agents.set_sessions(hosts[0], 2)
    agents.set_sessions(hosts[1], 1)
    wait_until(lambda: prometheus.value(f"deskfleet_pool_sessions{selector}") == 3,
               timeout=30, what="3 sessions in Prometheus")
    # 4 sessions + a buffer of 1 need 3 hosts of 2 slots: the pool scales out.
    agents.set_sessions(hosts[1], 2)
    wait_until(lambda: prometheus.value(
        f'deskfleet_pool_hosts{{namespace="{namespace}",pool="desk",state="desired"}}') == 3,
        timeout=30, what="desired hosts 3 in Prometheus")
    wait_until(lambda: (prometheus.value(
        f'sum(deskfleet_pool_scaling_decisions_total{{namespace="{namespace}",'
        f'direction="up"}})') or 0) >= 1, timeout=30, what="scale-up counted")
    assert (prometheus.value(f'deskfleet_pool_utilization_ratio{selector}') or 0) > 0
    assert prometheus.value('sum(deskfleet_reconcile_total{kind="SessionHostPool"})')

    # A deleted pool's series disappear.
    bed.kubectl("delete", "shp", "desk", "-n", namespace)
    wait_until(lambda: not prometheus.query(f"deskfleet_pool_sessions{selector}"),
               timeout=30, what="series of the deleted pool gone")


def exported_names(metrics_text: str) -> set[str]:
    names = set()
    for line in metrics_text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_dashboard_queries_only_exported_metrics(bed: Bed, namespace: str,
                                                 operator: Operator, agents: Agents) -> None:
    bed.apply([pool_manifest(namespace)])
    for host in ready_hosts(bed, namespace, 2):
        agents.set_sessions(host, 1)
    # Every family present: let the pool scale once and a reconcile of each kind run.
    wait_until(lambda: "deskfleet_pool_sessions{" in _scrape(operator), what="pool series")
    scraped = exported_names(_scrape(operator)) | {"up"}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\b(deskfleet_[a-z_]+|up)\b", e)}
    assert exprs and used
    # Counters that have not moved yet have no samples; their families are declared.
    declared = {f.name for f in text_string_to_metric_families(_scrape(operator))}
    families = {n + s for n in declared for s in ("", "_total", "_bucket", "_sum", "_count")}
    # The portal's panels: its own registry's families, as a scrape of it would show them.
    from prometheus_client import generate_latest

    from deskfleet.portal.metrics import REGISTRY as PORTAL_REGISTRY

    portal = generate_latest(PORTAL_REGISTRY).decode()
    portal_families = {n + s for n in (f.name for f in text_string_to_metric_families(portal))
                       for s in ("", "_total", "_bucket", "_sum", "_count")}
    missing = used - scraped - families - portal_families
    assert not missing, f"dashboard queries metrics nothing exports: {missing}"


def _scrape(operator: Operator) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics",
                                timeout=5) as response:
        return str(response.read().decode())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out += panel.get("panels", [])
    return out
