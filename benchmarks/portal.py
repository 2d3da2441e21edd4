#!/usr/bin/env python3
"""The portal's authorization at hospital scale: decision latency in process and through
HTTP on loopback, decisions per second on one core, and the portal's memory.

    .venv/bin/python benchmarks/portal.py --apps 1000 --policies 200

1. In process: the portal's `authorize` (the policy core's `evaluate` with the portal's
   fail-closed checks) over random users, apps, addresses and times: p50/p99.
2. Through HTTP: a real `deskfleet portal` process pinned to one core (taskset -c 0),
   watching the objects on the test bed's API server (started by hack/testbed.py, or
   KUBECONFIG), verifying each user's signed token (cached after its first use, as
   in production), answering `wrk` (Debian's package, pinned to the other core) on
   /authz/<namespace>/<app> with a rotating mix of users, apps and client addresses.
   Reports requests per second, wrk's latency percentiles, the share of allowed
   answers, and the portal's peak RSS (VmHWM).

Goals (issue 14): p99 <= 2 ms in process, >= 2,000 decisions/s over HTTP on one core,
<= 120 MB RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hack"))
sys.path.insert(0, str(REPO))

GROUPS = [f"ward-{i}" for i in range(40)] + ["clinicians", "nurses", "contractors",
                                              "radiologists", "admin-staff"]
COUNTRIES = {"127.0.10.0/24": "GB", "127.0.20.0/24": "FR", "127.0.30.0/24": "KP"}


def manifests(namespace: str, apps: int, policies: int, pools: int = 50
              ) -> list[dict[str, Any]]:
    """A trust's objects: apps in 20 tiers by label; allows with countries, MFA and
    office hours, some by name; denies by country; a tenth in dry run."""
    rng = random.Random(14)
    docs: list[dict[str, Any]] = []
    for p in range(pools):
        docs.append({"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
                     "metadata": {"name": f"pool-{p}", "namespace": namespace},
                     "spec": {"image": "registry.example/desktop:1", "sessionsPerHost": 8,
                              "agent": {"enabled": False}}})
    for a in range(apps):
        docs.append({"apiVersion": "deskfleet.io/v1alpha1", "kind": "PublishedApp",
                     "metadata": {"name": f"app-{a}", "namespace": namespace,
                                  "labels": {"tier": f"tier-{a % 20}",
                                             "data": "patient" if a % 3 else "office"}},
                     "spec": {"displayName": f"Application {a}",
                              "description": "A clinical application.",
                              "category": f"Category {a % 8}",
                              "poolRef": {"name": f"pool-{a % pools}"},
                              "gateway": {"host": "workspace.example.org",
                                          "path": f"/app-{a}",
                                          "parentRef": {"name": "public"}}}})
    for i in range(policies):
        kind = i % 10
        spec: dict[str, Any] = {
            "subjects": {"groups": rng.sample(GROUPS, 3)},
            "apps": {"selector": {"matchLabels": {"tier": f"tier-{i % 20}"}}},
            "priority": rng.randrange(0, 1000),
            "conditions": {"countries": ["GB"], "requireMFA": kind < 6},
            "sessionControls": {"clipboardToClient": kind == 3, "watermark": kind < 5,
                                "idleTimeout": "30m"},
        }
        if kind == 7:
            spec["conditions"] = {"timeZone": "Europe/London", "timeWindows": [
                {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start": "08:00",
                 "end": "18:00"}]}
        if kind == 8:
            spec.update(action="deny", conditions={"countries": ["KP", "RU", "BY"]},
                        apps={"selector": {}})
        if kind == 9:
            spec["mode"] = "dryRun"
        if kind == 2:
            spec["apps"] = {"names": [f"app-{rng.randrange(apps)}" for _ in range(20)]}
        docs.append({"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
                     "metadata": {"name": f"policy-{i}", "namespace": namespace},
                     "spec": spec})
    return docs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def in_process(docs: list[dict[str, Any]], namespace: str, rounds: int) -> dict[str, float]:
    from deskfleet.policy import Request
    from deskfleet.portal.authorize import authorize
    from deskfleet.portal.directory import Directory

    bodies = []
    for d in docs:
        meta = d["metadata"]
        bodies.append({**d, "metadata": {**meta, "uid": f"u-{d['kind']}-{meta['name']}",
                                         "generation": 1}})
    directory = Directory()
    for kind in ("SessionHostPool", "PublishedApp", "AccessPolicy"):
        directory.replace(kind, None, [b for b in bodies if b["kind"] == kind], 0.0)
    view = directory.view(namespace)
    apps = list(view.apps.values())
    rng = random.Random(1)
    start = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    requests = [Request(user=f"user-{rng.randrange(3000)}@example.org",
                        groups=frozenset(rng.sample(GROUPS, 2)),
                        source_ip=f"81.2.{rng.randrange(256)}.{rng.randrange(256)}",
                        country=rng.choice(["GB", "GB", "GB", "FR", None]),
                        mfa=rng.random() < 0.8,
                        time=start + timedelta(minutes=rng.randrange(24 * 60)))
                for _ in range(2000)]
    for app in apps:  # warm the label-set memos, as a running portal has them
        authorize(view, app, requests[0])
    samples, allowed = [], 0
    for i in range(rounds):
        app, request = apps[rng.randrange(len(apps))], requests[i % len(requests)]
        began = time.perf_counter_ns()
        verdict = authorize(view, app, request)
        samples.append((time.perf_counter_ns() - began) / 1e6)
        allowed += verdict.allowed
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99),
            "mean_ms": statistics.fmean(samples), "allowed_share": allowed / rounds}


def write_identity(directory: Path, users: int) -> tuple[Path, list[str]]:
    from joserfc import jwt
    from joserfc.jwk import KeySet, RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "bench"})
    jwks = directory / "jwks.json"
    jwks.write_text(json.dumps(KeySet([key]).as_dict(private=False)))
    rng = random.Random(2)
    now = int(time.time())
    tokens = [jwt.encode({"alg": "RS256", "kid": "bench"}, {
        "iss": "https://idp.example", "aud": "workspace", "email": f"user-{u}@example.org",
        "groups": rng.sample(GROUPS, 2), "amr": ["pwd", "mfa"] if u % 5 else ["pwd"],
        "iat": now, "exp": now + 7200}, key) for u in range(users)]
    return jwks, tokens


def write_geoip(path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    for cidr, code in COUNTRIES.items():
        writer.insert_network(IPSet([cidr]), {"country": {"iso_code": code}})
    writer.to_db_file(str(path))
    return path


def wrk_script(path: Path, namespace: str, apps: int, tokens: list[str]) -> Path:
    rng = random.Random(3)
    nets = ["127.0.10", "127.0.10", "127.0.10", "127.0.20", "127.0.30"]
    lines = ["local requests = {}"]
    for i in range(2000):
        app = rng.randrange(apps)
        ip = f"{rng.choice(nets)}.{rng.randrange(1, 255)}"
        token = tokens[rng.randrange(len(tokens))]
        lines.append(f'requests[{i + 1}] = wrk.format("GET", "/authz/{namespace}/app-{app}",'
                     f' {{["Host"] = "portal", ["Authorization"] = "Bearer {token}", '
                     f'["X-Forwarded-For"] = "{ip}"}})')
    lines += ["local i = 0",
              "request = function() i = i % #requests + 1; return requests[i] end",
              "local allowed, refused = 0, 0",
              "response = function(status) if status == 200 then allowed = allowed + 1 "
              "else refused = refused + 1 end end",
              "done = function(summary, latency, requests)",
              '  io.write(string.format("LATENCY p50=%.3f p99=%.3f ms\\n", '
              "latency:percentile(50) / 1000, latency:percentile(99) / 1000))",
              "end"]
    path.write_text("\n".join(lines) + "\n")
    return path


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def through_http(docs: list[dict[str, Any]], namespace: str, apps: int, seconds: int,
                 connections: int) -> dict[str, float]:
    import testbed

    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    state = testbed.up(Path(os.environ.get("DESKFLEET_TESTBED_DIR", ".testbed")), nodes=1)
    kubectl = [str(Path(state.bin) / "kubectl"), "--kubeconfig", state.kubeconfig]
    subprocess.run([*kubectl, "apply", "--server-side", "-f", str(REPO / "crds")], check=True,
                   capture_output=True)
    subprocess.run([*kubectl, "create", "namespace", namespace], capture_output=True)
    import yaml

    started = time.monotonic()
    subprocess.run([*kubectl, "apply", "--server-side", "-f", "-"], check=True,
                   input=yaml.safe_dump_all(docs), text=True, capture_output=True)
    print(f"applied {len(docs)} objects in {time.monotonic() - started:.1f}s")
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    jwks, tokens = write_identity(work, 500)
    port, internal = testbed.free_port(), testbed.free_port()
    env = {**os.environ, "KUBECONFIG": state.kubeconfig,
           "DESKFLEET_PORTAL_OIDC_ISSUER": "https://idp.example",
           "DESKFLEET_PORTAL_OIDC_AUDIENCES": "workspace",
           "DESKFLEET_PORTAL_OIDC_JWKS_FILE": str(jwks),
           "DESKFLEET_PORTAL_TRUSTED_PROXIES": "127.0.0.1/32",
           "DESKFLEET_PORTAL_GEOIP_DATABASE": str(write_geoip(work / "geo.mmdb")),
           "DESKFLEET_PORTAL_AUDIT_LOG": str(work / "audit.jsonl")}
    portal = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "deskfleet", "portal", "-n", namespace,
         "--port", str(port), "--internal-port", str(internal)],
        env=env, stdout=subprocess.DEVNULL, stderr=open(work / "portal.log", "wb"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{internal}/readyz") as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or portal.poll() is not None:
                raise SystemExit((work / "portal.log").read_text()[-2000:])
            time.sleep(0.2)
        idle_rss = vm_hwm_mib(portal.pid)
        script = wrk_script(work / "bench.lua", namespace, apps, tokens)
        url = f"http://127.0.0.1:{port}"
        # Warm-up: every token verified once (the verified-token cache of a running portal).
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c8", "-d5s", "-s", str(script),
                        url], check=True, capture_output=True)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}",
                              f"-d{seconds}s", "-s", str(script), "--latency", url],
                             check=True, capture_output=True, text=True).stdout
        rps = float(next(line.split()[1] for line in out.splitlines()
                         if line.startswith("Requests/sec")))
        p50, p99 = (float(x.split("=")[1]) for x in next(
            line for line in out.splitlines() if line.startswith("LATENCY")).split()[1:3:1])
        audit = (work / "audit.jsonl").read_text().splitlines()
        decisions = [json.loads(line)["decision"] for line in audit[-5000:]]
        return {"requests_per_s": rps, "http_p50_ms": p50, "http_p99_ms": p99,
                "allowed_share": decisions.count("allow") / max(1, len(decisions)),
                "rss_idle_mib": idle_rss, "rss_peak_mib": vm_hwm_mib(portal.pid)}
    finally:
        portal.terminate()
        portal.wait(timeout=15)
        subprocess.run([*kubectl, "delete", "namespace", namespace, "--wait=false"],
                       capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20000, help="in-process decisions")
    parser.add_argument("--seconds", type=int, default=20, help="HTTP load duration")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    namespace = f"portal-bench-{int(time.time()) % 100000}"
    docs = manifests(namespace, args.apps, args.policies)
    figures = in_process(docs, namespace, args.rounds)
    print(f"in process ({args.apps} apps, {args.policies} policies, {args.rounds} decisions):"
          f" p50 {figures['p50_ms']:.3f} ms, p99 {figures['p99_ms']:.3f} ms, mean "
          f"{figures['mean_ms']:.3f} ms, {figures['allowed_share']:.0%} allowed")
    if not args.skip_http:
        http = through_http(docs, namespace, args.apps, args.seconds, args.connections)
        print(f"through HTTP (one core, {args.connections} connections, {args.seconds}s): "
              f"{http['requests_per_s']:.0f} decisions/s, p50 {http['http_p50_ms']:.2f} ms, "
              f"p99 {http['http_p99_ms']:.2f} ms, {http['allowed_share']:.0%} allowed; "
              f"portal RSS {http['rss_idle_mib']:.0f} MiB idle, "
              f"{http['rss_peak_mib']:.0f} MiB peak")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
