#!/usr/bin/env python3
"""Hospital-scale benchmark on the real test bed.

Applies POOLS pools, APPS apps and POLICIES policies to a fresh namespace with a fresh
`deskfleet run` process, and reports: time until every app is Ready and until the
operator's work queue is empty (converged), each app's latency from creation to
Ready=True (p50/p95/p99, timed by a watch), the operator's API requests by verb per
object (from the API server's own apiserver_request_total, see `by_operator`), its
writes during a quiet period after convergence, and its peak RSS and CPU time.

    .venv/bin/python benchmarks/scale.py --pools 50 --apps 1000 --policies 200 --runs 3

Each run is a whole new operator process; the figures printed at the end are medians.
Needs the test bed (`hack/testbed.py up`, reused if running) or KUBECONFIG.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hack"))
import testbed  # noqa: E402

SETTLE_S = 6.0  # longer than the longest debounce of a fan-out (fanout.POLICIES_DELAY)
WRITES = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}
DESKFLEET_KINDS = {"sessionhostpools", "publishedapps", "accesspolicies"}
# The kinds the operator renders (and labels, for pods).
CHILD_KINDS = {"configmaps", "deployments", "services", "poddisruptionbudgets",
               "networkpolicies", "ingresses", "httproutes", "serviceaccounts", "roles",
               "rolebindings", "pods"}


def by_operator(verb: str, resource: str, subresource: str) -> bool:
    """Whether a request counted by the API server is (most likely) the operator's.

    apiserver_request_total does not name the client, so this goes by what each client
    does: the operator applies, patches, deletes, lists and watches; it POSTs only Events
    and never PUTs. Kubernetes' controllers write the children's status subresources (and
    PUT Deployments), kwok patches pods/status, and the benchmark itself applies the
    deskfleet objects. Events the controller manager posts for the hosts are counted in
    (a few per pool).
    """
    if verb == "PUT" or (verb == "POST" and resource != "events"):
        return False
    if resource in DESKFLEET_KINDS:
        return subresource == "status" or verb in ("GET", "LIST", "WATCH")
    if resource in CHILD_KINDS:
        return subresource == ""
    return resource == "events"


def manifests(ns: str, pools: int, apps: int, policies: int) -> list[dict[str, Any]]:
    """Apps fall into up to ten tiers, each covered by at least one allow policy.

    Pools and policies come first, as an app can only be Ready once its pool and a policy
    that opens it exist: an app's latency is then the operator's alone."""
    tiers = max(1, min(10, policies))
    docs: list[dict[str, Any]] = []
    for p in range(pools):
        docs.append({"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
                     "metadata": {"name": f"pool-{p}", "namespace": ns},
                     "spec": {"image": "registry.example/desktop:1", "sessionsPerHost": 8,
                              "agent": {"enabled": False},  # kwok runs no agents
                              "scaling": {"minHosts": 1, "maxHosts": 4}}})
    for i in range(policies):
        docs.append({"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
                     "metadata": {"name": f"policy-{i}", "namespace": ns},
                     "spec": {"subjects": {"groups": [f"group-{i}"]},
                              "apps": {"selector": {"matchLabels": {"tier": f"tier-{i % tiers}"}}},
                              "priority": i % 1000}})
    for a in range(apps):
        docs.append({"apiVersion": "deskfleet.io/v1alpha1", "kind": "PublishedApp",
                     "metadata": {"name": f"app-{a}", "namespace": ns,
                                  "labels": {"tier": f"tier-{a % tiers}"}},
                     "spec": {"displayName": f"App {a}", "poolRef": {"name": f"pool-{a % pools}"},
                              "gateway": {"host": "workspace.example.org",
                                          "path": f"/app-{a}"}}})
    return docs


def request_counts(kubectl: list[str]) -> dict[str, float]:
    """The operator's requests so far: by verb, and its writes by verb and resource."""
    text = subprocess.run([*kubectl, "get", "--raw", "/metrics"], capture_output=True,
                          text=True, check=True).stdout
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != "apiserver_request_total":
                continue
            verb, resource = sample.labels.get("verb", ""), sample.labels.get("resource", "")
            sub = sample.labels.get("subresource", "")
            if by_operator(verb, resource, sub):
                _count(counts, verb, resource, sub, sample.value)
    return counts


def _count(counts: dict[str, float], verb: str, resource: str, sub: str, value: float
           ) -> None:
    counts[verb] = counts.get(verb, 0) + value
    if verb in WRITES:
        counts["operator-writes"] = counts.get("operator-writes", 0) + value
        what = f"write {verb} {resource}" + (f"/{sub}" if sub else "")
        counts[what] = counts.get(what, 0) + value


QUEUES = ("deskfleet_workqueue_depth", "deskfleet_workqueue_rechecks_waiting",
          "deskfleet_event_queue_depth")


def queue_depth(metrics_port: int) -> float:
    """What the operator still has to do: keys in its work queue, re-checks waiting on
    their debounce, and Events not posted yet."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        depths = {f.name: float(f.samples[0].value)
                  for f in text_string_to_metric_families(r.read().decode())
                  if f.name in QUEUES}
    if set(depths) != set(QUEUES):
        raise RuntimeError(f"the operator exports no {set(QUEUES) - set(depths)}")
    return sum(depths.values())


def pools_settled(kubectl: list[str], ns: str) -> bool:
    """Every pool reports all its desired hosts ready (the cluster has caught up too)."""
    pools = json.loads(subprocess.run([*kubectl, "get", "shp", "-n", ns, "-o", "json"],
                                      capture_output=True, text=True, check=True).stdout)
    return all((p.get("status") or {}).get("readyHosts") ==
               (p.get("status") or {}).get("desiredHosts") for p in pools["items"])


def proc_stats(pid: int) -> tuple[float, float]:
    """(peak RSS in MiB, CPU seconds) of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm, (int(fields[11]) + int(fields[12])) / ticks


class ReadyWatch(threading.Thread):
    """Records when each PublishedApp is first seen (its creation, as a watch delivers
    it: millisecond-exact, unlike creationTimestamp) and first seen Ready=True."""

    def __init__(self, kubectl: list[str], ns: str) -> None:
        super().__init__(daemon=True)
        self.kubectl, self.ns = kubectl, ns
        self.ready_at: dict[str, float] = {}
        self.seen_at: dict[str, float] = {}
        self.proc: subprocess.Popen[str] | None = None

    def run(self) -> None:
        self.proc = subprocess.Popen(
            [*self.kubectl, "get", "papp", "-n", self.ns, "--watch", "-o", "json",
             "--output-watch-events"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        assert self.proc.stdout
        for line in self.proc.stdout:  # one compact JSON watch event per line
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            obj = event.get("object", {})
            name = obj.get("metadata", {}).get("name")
            if name:
                self.seen_at.setdefault(name, time.monotonic())
            if name and name not in self.ready_at and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in obj.get("status", {}).get("conditions", [])):
                self.ready_at[name] = time.monotonic()

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()


def run_once(state: Any, args: argparse.Namespace, index: int) -> dict[str, float]:
    ns = f"bench-{index}-{int(time.time())}"
    kubectl = [str(Path(state.bin) / "kubectl"), "--kubeconfig", state.kubeconfig]
    env = {**os.environ, "KUBECONFIG": state.kubeconfig}
    subprocess.run([*kubectl, "create", "namespace", ns], check=True, capture_output=True)
    docs = manifests(ns, args.pools, args.apps, args.policies)
    port, metrics_port = testbed.free_port(), testbed.free_port()
    log = Path(args.operator_log or os.devnull).open("ab")  # noqa: SIM115 - closed below
    operator = subprocess.Popen(
        [sys.executable, "-m", "deskfleet", "run", "-n", ns, "--liveness-port", str(port),
         "--metrics-port", str(metrics_port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        watch = ReadyWatch(kubectl, ns)
        watch.start()
        time.sleep(1)
        before = request_counts(kubectl)
        started = time.monotonic()
        for i in range(0, len(docs), 200):
            chunk = docs[i:i + 200]
            subprocess.run([*kubectl, "apply", "--server-side", "-f", "-"], check=True,
                           input=yaml.safe_dump_all(chunk), text=True, capture_output=True)
        submitted = time.monotonic() - started
        while len(watch.ready_at) < args.apps and time.monotonic() - started < args.timeout:
            time.sleep(0.2)
        apps_ready = time.monotonic() - started
        # Converged: every app Ready, every pool's hosts up, and the operator's work
        # queue, its debounced re-checks (fanout.py, paced by pacing.py) and its Event
        # queue empty, for longer than a debounce; convergence is the last moment they
        # held anything.
        poll = 0.25 if args.apps <= 1000 else 1.0
        last_busy = time.monotonic()
        settled = False
        while (time.monotonic() - last_busy < SETTLE_S
               and time.monotonic() - started < args.timeout):
            # Rendering the operator's metrics costs it CPU in proportion to the apps (a
            # series each): at 10,000 apps a poll every 0.25 s would take 8% of it. The
            # pools are listed only until they have settled: the API server would count
            # the benchmark's LISTs as the operator's (see `by_operator`).
            if queue_depth(metrics_port) != 0:
                last_busy = time.monotonic()
            elif not settled:
                settled = pools_settled(kubectl, ns)
                if not settled:
                    last_busy = time.monotonic()
            time.sleep(poll)
        converged = last_busy - started
        after = request_counts(kubectl)
        time.sleep(args.quiet)
        quiet = request_counts(kubectl)
        rss, cpu = proc_stats(operator.pid)
        watch.stop()
        latencies = sorted(watch.ready_at[n] - watch.seen_at[n] for n in watch.ready_at)
        objects = len(docs)
        if args.latencies:  # where in the run the tail sits: one line per app
            with open(args.latencies, "a") as out:
                for n in sorted(watch.ready_at, key=watch.seen_at.__getitem__):
                    out.write(json.dumps({"run": index, "app": n,
                                          "created_s": round(watch.seen_at[n] - started, 3),
                                          "latency_s": round(watch.ready_at[n]
                                                             - watch.seen_at[n], 3)}) + "\n")

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

        result = {
            "submitted_s": submitted, "converged_s": converged, "apps_ready_s": apps_ready,
            "ready_apps": len(latencies),
            "p50_s": pct(0.5), "p95_s": pct(0.95), "p99_s": pct(0.99),
            "peak_rss_mib": rss, "cpu_s": cpu,
            "quiet_writes": quiet.get("operator-writes", 0) - after.get("operator-writes", 0),
        }
        for what in sorted(k for k in quiet if k.startswith("write ")):
            if delta := quiet[what] - after.get(what, 0):
                result[f"quiet {what}"] = delta
        for verb in sorted(k for k in set(after) | set(before)
                           if k != "operator-writes" and not k.startswith("write ")):
            delta = after.get(verb, 0) - before.get(verb, 0)
            if delta:
                result[f"requests_{verb}_per_object"] = delta / objects
        return result
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        log.close()
        # Wait until the namespace is gone: its garbage collection must not fall into the
        # next run's quiet period.
        subprocess.run([*kubectl, "delete", "namespace", ns, "--timeout=600s"],
                       capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quiet", type=float, default=30.0,
                        help="seconds of quiet after convergence in which writes are counted")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--operator-log", help="append the operator's log to this file")
    parser.add_argument("--latencies", help="append each app's creation time and latency "
                        "to this file (JSON lines)")
    parser.add_argument("--dir", default=str(REPO / ".testbed"))
    args = parser.parse_args()
    state = testbed.up(Path(args.dir), nodes=3)
    kubectl = [str(Path(state.bin) / "kubectl"), "--kubeconfig", state.kubeconfig]
    subprocess.run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f",
                    str(REPO / "crds")], check=True, capture_output=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "crd", "--all"],
                   check=True, capture_output=True)
    runs = [run_once(state, args, i) for i in range(args.runs)]
    keys = sorted({k for r in runs for k in r})
    print(f"\n{args.pools} pools, {args.apps} apps, {args.policies} policies; "
          f"median of {args.runs} runs (each a new operator process)")
    for key in keys:
        values = [r[key] for r in runs if key in r]
        print(f"  {key:34s} {statistics.median(values):10.3f}   runs: "
              + ", ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main()
