#!/usr/bin/env python3
"""A compressed hospital day on the real test bed, watched through a real Prometheus.

The operator runs against the local control plane on a driven scheduling clock (one
simulated minute every --step-seconds of real time). The simulated workload (the one
`deskfleet simulate` uses, scaled to --staff) logs users on and off real session-host
pods: each pod has a real `deskfleet agent` reporting the sessions written into its TCP
table, and each new logon lands on a host the pool's Service would route to (labelled
accepting, fewest sessions first). Prometheus scrapes the operator every second; at the
end the dashboard's main queries are read back over the whole run and plotted.

    .venv/bin/python hack/observed_day.py --out docs/observed-day.png

Needs the test bed (`hack/testbed.py up`, or KUBECONFIG) and Debian's prometheus.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from bisect import bisect_right
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hack"))
import testbed  # noqa: E402

from deskfleet.agent.sessions import tcp_table  # noqa: E402
from deskfleet.kube.client import Kube, load_api_client  # noqa: E402
from deskfleet.kube.resources import POD  # noqa: E402
from deskfleet.simulation.workload import generate  # noqa: E402

NAMESPACE = "observed-day"
PORT = 3389
QUERIES = {  # the dashboard's "Capacity" row
    "sessions": f'sum(deskfleet_pool_sessions{{namespace="{NAMESPACE}"}})',
    "capacity": f'sum(deskfleet_pool_capacity_sessions{{namespace="{NAMESPACE}"}})',
    "desired": f'sum(deskfleet_pool_hosts{{namespace="{NAMESPACE}",state="desired"}})',
    "ready": f'sum(deskfleet_pool_hosts{{namespace="{NAMESPACE}",state="ready"}})',
    "draining": f'sum(deskfleet_pool_hosts{{namespace="{NAMESPACE}",state="draining"}})',
}


def pool(per_host: int) -> dict[str, Any]:
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
            "metadata": {"name": "clinical-desktop", "namespace": NAMESPACE},
            "spec": {"image": "registry.example/desktop:1", "protocol": "rdp",
                     "sessionsPerHost": per_host,
                     "scaling": {"minHosts": 1, "maxHosts": 20, "bufferSessions": per_host,
                                 "scaleInDelay": "10m", "maxScaleInStep": 2,
                                 "schedule": {"timeZone": "Europe/London", "phases": [
                                     {"name": "logon-storm", "type": "rampUp",
                                      "start": "06:45", "end": "09:30", "minHosts": 6}]}}}}


def free_port() -> int:
    return testbed.free_port()


def wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


class Day:
    def __init__(self, args: argparse.Namespace, kube: Kube, env: dict[str, str],
                 work: Path) -> None:
        self.args, self.kube, self.env, self.work = args, kube, env, work
        self.assigned: dict[int, str] = {}  # session index -> pod
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.waited = 0
        self.cut = 0

    def hosts(self) -> list[dict[str, Any]]:
        pods = self.kube.list(POD, NAMESPACE, "deskfleet.io/pool=clinical-desktop")
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def write_table(self, pod: str, sessions: int) -> None:
        table = self.work / "proc" / pod
        table.mkdir(parents=True, exist_ok=True)
        (table / "tcp.tmp").write_text(tcp_table(sessions, PORT))
        (table / "tcp.tmp").rename(table / "tcp")
        if pod not in self.agents:
            self.agents[pod] = subprocess.Popen(
                [sys.executable, "-m", "deskfleet", "agent", "--pod", pod, "--namespace",
                 NAMESPACE, "--port", str(PORT), "--proc-net", str(table),
                 "--annotations-file", "", "--drain-file", "", "--metrics-port", "0",
                 "--interval", "0.3", "--heartbeat", "5"],
                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def step(self, now: datetime, active: list[int], waiting: list[int]) -> list[int]:
        pods = {p["metadata"]["name"]: p for p in self.hosts()}
        gone = {s for s, pod in self.assigned.items() if pod not in pods}
        self.cut += len(gone & set(active))
        for s in gone:
            del self.assigned[s]
        for s in [s for s in self.assigned if s not in active]:
            del self.assigned[s]
        load = {name: 0 for name in pods}
        for pod in self.assigned.values():
            load[pod] += 1
        still_waiting = []
        for s in waiting + [s for s in active if s not in self.assigned and s not in waiting]:
            open_hosts = [n for n, p in pods.items()
                          if p["metadata"]["labels"].get("deskfleet.io/accepting") == "true"
                          and _ready(p) and load[n] < self.args.per_host]
            if not open_hosts:
                still_waiting.append(s)
                continue
            target = min(open_hosts, key=lambda n: (load[n], n))
            self.assigned[s] = target
            load[target] += 1
        self.waited += len([s for s in still_waiting if s not in waiting])
        for name in pods:
            self.write_table(name, load[name])
        for name in [n for n in self.agents if n not in pods]:
            self.agents.pop(name).terminate()
        return still_waiting

    def stop(self) -> None:
        for proc in self.agents.values():
            proc.terminate()


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def prometheus_range(port: int, expr: str, start: float, end: float) -> list[tuple[float, float]]:
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": 1})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query_range?{query}",
                                timeout=30) as r:
        result = json.loads(r.read())["data"]["result"]
    return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []


def plot(series: dict[str, list[tuple[float, float]]], clock: list[tuple[float, datetime]],
         out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    reals = [r for r, _ in clock]

    def sim(t: float) -> datetime:
        i = max(0, min(len(clock) - 1, bisect_right(reals, t) - 1))
        return clock[i][1]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    for name, style in (("sessions", dict(color="0.3", lw=1.5)),
                        ("capacity", dict(color="tab:blue", lw=2))):
        xs = [sim(t) for t, _ in series[name]]
        top.step(xs, [v for _, v in series[name]], where="post", label={
            "sessions": "deskfleet_pool_sessions (agents' reports)",
            "capacity": "deskfleet_pool_capacity_sessions"}[name], **style)
    top.set_ylabel("sessions / slots")
    top.legend(loc="upper right")
    top.grid(alpha=0.3)
    for name, color in (("desired", "tab:orange"), ("ready", "tab:green"),
                        ("draining", "tab:red")):
        xs = [sim(t) for t, _ in series[name]]
        bottom.step(xs, [v for _, v in series[name]], where="post", color=color,
                    label=f'deskfleet_pool_hosts{{state="{name}"}}')
    bottom.set_ylabel("hosts")
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=clock[0][1].tzinfo))
    bottom.set_xlabel("simulated local time (Europe/London), scraped by Prometheus")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "docs" / "observed-day.png"))
    parser.add_argument("--staff", type=int, default=150)
    parser.add_argument("--per-host", type=int, default=6)
    parser.add_argument("--step-seconds", type=float, default=0.15,
                        help="real seconds per simulated minute")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="observed-day-"))
    state = testbed.up(work / "bed", nodes=3)
    env = {**os.environ, "KUBECONFIG": state.kubeconfig,
           "PATH": f"{state.bin}{os.pathsep}{os.environ['PATH']}"}
    kubectl = str(Path(state.bin) / "kubectl")
    procs: list[subprocess.Popen[bytes]] = []
    day: Day | None = None
    try:
        subprocess.run([kubectl, "apply", "--server-side", "-f", str(REPO / "crds")],
                       env=env, check=True, capture_output=True)
        subprocess.run([kubectl, "wait", "--for=condition=Established", "crd", "--all"],
                       env=env, check=True, capture_output=True)
        subprocess.run([kubectl, "create", "namespace", NAMESPACE], env=env, check=True,
                       capture_output=True)
        workload = generate(seed=args.seed, staff=args.staff)
        clock_file = work / "clock"
        clock_file.write_text(workload.day_start.isoformat())
        metrics_port, prom_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "deskfleet", "run", "-n", NAMESPACE, "--liveness-port",
             str(free_port()), "--metrics-port", str(metrics_port)],
            env={**env, "DESKFLEET_CLOCK_FILE": str(clock_file),
                 "DESKFLEET_SCALING_PERIOD_SECONDS": "0.5"},
            stdout=(work / "operator.log").open("wb"), stderr=subprocess.STDOUT))
        (work / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "deskfleet", "static_configs": [
                {"targets": [f"127.0.0.1:{metrics_port}"]}]}]}))
        binary = shutil.which("prometheus")
        assert binary, "Debian's prometheus package is required"
        procs.append(subprocess.Popen(
            [binary, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=(work / "prometheus.log").open("wb"), stderr=subprocess.STDOUT))
        subprocess.run([kubectl, "apply", "--server-side", "-f", "-"], env=env, check=True,
                       input=yaml.safe_dump(pool(args.per_host)), text=True,
                       capture_output=True)
        kube = Kube(load_api_client(state.kubeconfig), field_manager="observed-day")
        day = Day(args, kube, env, work)
        wait(lambda: any(_ready(p) for p in day.hosts()), 60, "the first host")

        sessions = workload.sessions
        clock: list[tuple[float, datetime]] = []
        waiting: list[int] = []
        started = time.time()
        moment = workload.day_start
        while moment < workload.day_end:
            clock_file.write_text(moment.isoformat())
            clock.append((time.time(), moment))
            active = [i for i, s in enumerate(sessions) if s.arrival <= moment < s.end]
            waiting = [s for s in day.step(moment, active, waiting) if s in active]
            time.sleep(args.step_seconds)
            moment += timedelta(minutes=1)
        ended = time.time()
        time.sleep(3)
        series = {name: prometheus_range(prom_port, expr, started, ended)
                  for name, expr in QUERIES.items()}
        peak = max((v for _, v in series["sessions"]), default=0)
        title = (f"A compressed hospital day on the test bed ({args.staff} staff, peak "
                 f"{peak:.0f} sessions, {args.per_host} per host): "
                 f"{day.cut} sessions cut, {day.waited} logons waited")
        plot(series, clock, Path(args.out), title)
        print(f"{title}\nwrote {args.out} ({len(series['sessions'])} scraped points, "
              f"{ended - started:.0f}s real time)")
    finally:
        if day:
            day.stop()
        for proc in procs:
            proc.terminate()
        testbed.down(work / "bed")


if __name__ == "__main__":
    main()
