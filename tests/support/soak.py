"""The soak: what months of a hospital's cluster do to the operator, compressed into a
configured time on the real test bed, then checked.

    namespace <prefix>-ward                    the chaos (one thread)
      6 pools without agents, 18 apps,           image changes of pools (rollouts), scale-ins
      2 policies; 2 pools whose hosts carry      (users logging off), scale-outs, policy
      sessions: a real `deskfleet agent` per     changes, deletions and re-creations; the
      host reads the host's report, a harness    operator SIGKILLed at random points of them
      plays the users and the hosts              and restarted; the API server and etcd
    namespace <prefix>-fuzz                      killed and restarted
      the example hospital, under hypothesis-generated specs (tests/support/fuzzing.py)
    one `deskfleet run` for both, its RSS sampled, its crashes counted

The chaos runs in two phases: operator kills during the first `kill_share` of the time,
then one operator process lives to the end (API server and etcd restarts and everything
else go on), so memory is sampled both across restarts and within a long-lived run.

At the end everything is put back as it should be (deleted objects re-created, specs
valid again, every user logged off), and it checks: no orphans, no duplicates (the audit
of tests/support/faults.py, rollouts allowed), no cut session (a host removed while it
had sessions, before its logoff deadline), no running child torn down by an invalid
spec, no unbounded growth of the operator's RSS, no error loop in its log.

`benchmarks/soak.py` runs it from the command line; `tests/cluster/test_soak.py` runs a
short one in CI. Random choices come from one seeded RNG (timing still varies).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import re
import signal
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed

from deskfleet.agent.annotations import DRAINING_ANNOTATION, LOGOFF_DEADLINE_ANNOTATION
from deskfleet.api.kinds import SESSION_HOST_POOL
from deskfleet.clock import parse_time
from deskfleet.kube.client import Kube, KubeError, load_api_client
from deskfleet.kube.resources import POD
from deskfleet.render.meta import ACCEPTING_LABEL

from ..conftest import Bed, Operator, _load_testbed_module, example_docs
from .faults import (
    API,
    POOL_LABEL,
    START,
    Problem,
    audit_problems,
    fleet,
    is_ready,
    new_namespace,
    parents,
    parse_log,
)
from .fuzzing import Fuzzer, TornDown, Transient, cases, fuzz_one, without_agents
from .session_host import SessionHost

POOL_TYPE = SESSION_HOST_POOL.resource
IMAGE = "registry.example/desktop:{}"
PER_HOST = 4
MAX_HOSTS = 5
# Session pools: name -> forced logoff. With it, a draining host's users get a deadline
# and are logged off after it; without it, a host with sessions is never removed.
SESSION_POOLS = {"s-desk": True, "s-ward": False}
MESSAGE = "This desktop is being retired. Please save your work."
LOOP_PER_MINUTE = 20  # one warning or error line repeated this often in a minute: a loop
OUTAGE_GRACE_S = 30  # after a control-plane restart, retries are expected, not a loop
def say_stdout(message: str) -> None:
    print(f"[soak] {message}", flush=True)


# --- configuration -----------------------------------------------------------------------

@dataclass
class SoakConfig:
    minutes: float = 30.0  # the chaos's time (set-up and the final checks come on top)
    kills: int | None = None  # operator SIGKILLs; default 3.5 a minute
    apiserver_restarts: int | None = None  # default one per 6 minutes, at least 1
    etcd_restarts: int | None = None
    fuzz: int | None = None  # fuzzed specs; default 35 a minute
    seed: int = 20261202
    kill_share: float = 0.6  # of the time with kills; then one operator to the end
    fleet_pools: int = 6
    apps_per_pool: int = 3
    session_rollouts: bool = True  # image changes also on pools whose hosts have sessions
    keep: bool = False  # keep the namespaces afterwards

    @property
    def kill_target(self) -> int:
        return self.kills if self.kills is not None else math.ceil(3.5 * self.minutes)

    @property
    def fuzz_target(self) -> int:
        return self.fuzz if self.fuzz is not None else math.ceil(35 * self.minutes)

    def restarts(self, component: str) -> int:
        given = {"kube-apiserver": self.apiserver_restarts, "etcd": self.etcd_restarts}
        value = given[component]
        return value if value is not None else max(1, round(self.minutes / 6))


# --- the world the chaos works on --------------------------------------------------------

def session_pool(ns: str, name: str, force: bool) -> dict[str, Any]:
    drain: dict[str, Any] = ({"forceLogoff": True, "maxWait": "20s", "logoffTimeout": "10s",
                              "message": MESSAGE} if force else {"notifyUsers": True})
    # With forced logoff, a rollout gives the outdated hosts' users a deadline too;
    # without, they keep their sessions until they log off.
    update = {"drainDeadline": "30s"} if force else {}
    return {"apiVersion": API, "kind": "SessionHostPool",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"image": IMAGE.format(1), "protocol": "rdp", "sessionsPerHost": PER_HOST,
                     "agent": {"sessionSource": "host"}, "update": update,
                     "scaling": {"minHosts": 1, "maxHosts": MAX_HOSTS, "bufferSessions": 2,
                                 "scaleInDelay": "3s", "drain": drain}}}


def session_app(ns: str, pool: str) -> dict[str, Any]:
    name = f"{pool}-app"
    return {"apiVersion": API, "kind": "PublishedApp",
            "metadata": {"name": name, "namespace": ns, "labels": {"tier": "fault-test"}},
            "spec": {"displayName": name, "poolRef": {"name": pool},
                     "gateway": {"host": "soak.example", "path": f"/{name}",
                                 "ingressClassName": "nginx"}}}


def quick_rollouts(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pools without agents know nothing of their sessions: their outdated hosts leave
    only after the update's drain deadline and the logoff timeout (scaling/decide.py,
    `_without_signal`), so without a deadline their rollouts never end. Short ones here:
    every rollout of such a pool ends within seconds."""
    for doc in docs:
        spec = doc["spec"]
        if doc["kind"] == "SessionHostPool" and not (spec.get("agent") or {}).get(
                "enabled", True):
            spec["update"] = {**(spec.get("update") or {}), "drainDeadline": "5s"}
            drain = {**(spec["scaling"].get("drain") or {}), "logoffTimeout": "5s"}
            spec["scaling"] = {**spec["scaling"], "drain": drain}
    return docs


Key = tuple[str, str]  # (kind, name)

# Policy changes: a spec patch each (deep-merged over the policy's own spec).
POLICY_CHANGES: list[Callable[[random.Random], dict[str, Any]]] = [
    lambda r: {"sessionControls": {"clipboardToHost": r.random() < 0.5,
                                   "fileDownload": r.random() < 0.5,
                                   "printing": r.random() < 0.5}},
    lambda r: {"conditions": {"sourceRanges": [r.choice(["10.0.0.0/8", "192.168.0.0/16"])]}},
    lambda r: {"mode": "dryRun"},
    lambda r: {"priority": r.randint(0, 1000)},
    lambda r: {"subjects": {"groups": [f"staff-{r.randint(0, 9)}"]}},
    lambda r: {"action": "deny"},
    lambda r: {},  # back as it was
]


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


class World:
    """What the ward namespace should hold (pool images as the rollouts left them), and
    what the chaos deleted."""

    def __init__(self, ns: str, config: SoakConfig) -> None:
        docs = fleet(ns, "f", config.fleet_pools, config.apps_per_pool, policies=2)
        quick_rollouts(without_agents(docs))  # kwok hosts run no agents
        for name, force in SESSION_POOLS.items():
            docs += [session_pool(ns, name, force), session_app(ns, name)]
        self.ns = ns
        self.desired: dict[Key, dict[str, Any]] = {
            (d["kind"], d["metadata"]["name"]): d for d in docs}
        self.deleted: set[Key] = set()
        self.images: Counter[str] = Counter({name: 1 for kind, name in self.desired
                                             if kind == "SessionHostPool"})

    def names(self, kind: str, *, present: bool = True, sessions: bool | None = None
              ) -> list[str]:
        return sorted(n for k, n in self.desired if k == kind
                      and (not present or (k, n) not in self.deleted)
                      and (sessions is None or (n in SESSION_POOLS) == sessions))

    def docs(self) -> list[dict[str, Any]]:
        return list(self.desired.values())


# --- the users of the session pools ------------------------------------------------------

@dataclass
class Cut:
    """A host removed while it had sessions, before any logoff deadline."""

    at: float
    pod: str
    pool: str
    sessions: list[str]
    draining_since: str | None
    deadline: str | None
    pod_image: str
    pool_image: str | None

    @property
    def by_rollout(self) -> bool:
        """The host ran an image the pool no longer asks for: an image rollout took it."""
        return self.pool_image is not None and self.pod_image != self.pool_image

    def __str__(self) -> str:
        return (f"{self.pod} (pool {self.pool}, {len(self.sessions)} sessions "
                f"{sorted(Counter(self.sessions).items())}, draining since "
                f"{self.draining_since}, deadline {self.deadline}, image {self.pod_image}, "
                f"pool's image {self.pool_image})")


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _image(pod: dict[str, Any]) -> str:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == "session-host":
            return str(container.get("image"))
    return ""


class Sessions:
    """Users logging on to the hosts the pools' Services would route them to (labelled
    accepting, fewest sessions first) and off again, towards a target per pool the chaos
    moves; each host a SessionHost (its report, a real agent, the kubelet's mirror of its
    annotations; 3 in 4 log their users off when asked). Every host that goes is judged:
    empty, removed after its logoff deadline, or cut."""

    def __init__(self, bed: Bed, ns: str, root: Path, rng: random.Random,
                 say: Callable[[str], None]) -> None:
        self.bed, self.ns, self.root, self.rng, self.say = bed, ns, root, rng, say
        self.kube = Kube(load_api_client(bed.kubeconfig))
        self.targets = dict.fromkeys(SESSION_POOLS, 0)
        self.closing = False
        self.hosts: dict[str, SessionHost] = {}
        self.pool_of: dict[str, str] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.cuts: list[Cut] = []
        self.stats: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sessions", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.stop()

    def set_target(self, pool: str, target: int) -> None:
        with self.lock:
            self.targets[pool] = target

    def end_of_day(self) -> None:
        """Everyone logs off, those on draining hosts too."""
        self.closing = True
        for pool in SESSION_POOLS:
            self.set_target(pool, 0)

    def target(self, pool: str) -> int:
        with self.lock:
            return self.targets[pool]

    def sessions(self) -> int:
        return sum(len(h.sessions) for h in list(self.hosts.values()))

    def _run(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                self.tick()
            except KubeError:
                self.stats["ticks_without_api"] += 1  # the API server is away
            except Exception as err:  # the harness must outlive anything
                self.errors.append(repr(err))

    def tick(self) -> None:
        selector = f"{POOL_LABEL} in ({','.join(SESSION_POOLS)})"
        pods = self.kube.list(POD, self.ns, selector)
        now = time.time()
        by_name = {p["metadata"]["name"]: p for p in pods}
        live = {n: p for n, p in by_name.items() if not p["metadata"].get("deletionTimestamp")}
        for name in [n for n in self.hosts if n not in live]:
            self._gone(name, by_name.get(name) or self.last[name], now)
        for name, pod in live.items():
            self.last[name] = pod
            host = self.hosts.get(name)
            if host is None:
                host = SessionHost(self.bed.env, self.ns, name, self.root / name,
                                   cooperative=self.rng.random() < 0.75, agent_interval=0.5)
                host.start()
                self.hosts[name] = host
                self.pool_of[name] = pod["metadata"]["labels"][POOL_LABEL]
                self.stats["hosts"] += 1
            host.mirror(pod["metadata"].get("annotations") or {})
            before = len(host.sessions)
            host.tick()
            self.stats["logged_off"] += before - len(host.sessions)
        with self.lock:
            targets = dict(self.targets)
        for pool, target in targets.items():
            self._balance(pool, target, live)

    def _gone(self, name: str, pod: dict[str, Any], now: float) -> None:
        host = self.hosts.pop(name)
        states = [s.state for s in host.sessions]
        ann = pod["metadata"].get("annotations") or {}
        deadline = parse_time(ann.get(LOGOFF_DEADLINE_ANNOTATION))
        if not states:
            self.stats["removed_empty"] += 1
        elif deadline is not None and deadline.timestamp() <= now:
            self.stats["removed_after_deadline"] += 1
        else:
            pool = self.pool_of[name]
            try:
                shp = self.kube.get(POOL_TYPE, self.ns, pool)
            except KubeError:
                shp = None
            cut = Cut(now, name, pool, states, ann.get(DRAINING_ANNOTATION),
                      ann.get(LOGOFF_DEADLINE_ANNOTATION), _image(pod),
                      (shp or {}).get("spec", {}).get("image"))
            self.cuts.append(cut)
            self.say(f"session cut{' by a rollout' if cut.by_rollout else ''}: {cut}")
        self.last.pop(name, None)
        with contextlib.suppress(Exception):
            host.stop()

    def _balance(self, pool: str, target: int, live: dict[str, dict[str, Any]]) -> None:
        mine = [(self.hosts[n], p) for n, p in live.items()
                if self.pool_of.get(n) == pool and n in self.hosts]
        total = sum(len(h.sessions) for h, _ in mine)
        if total < target:
            # Logons, as the Service routes them: hosts labelled accepting, with a slot.
            open_hosts = [h for h, p in mine if _ready(p) and len(h.sessions) < PER_HOST
                          and (p["metadata"].get("labels") or {}).get(ACCEPTING_LABEL)
                          == "true"]
            for _ in range(min(target - total, 3)):
                open_hosts = [h for h in open_hosts if len(h.sessions) < PER_HOST]
                if not open_hosts:
                    self.stats["logons_waiting"] += 1
                    break
                host = min(open_hosts, key=lambda h: len(h.sessions))
                host.set_sessions(*[s.state for s in host.sessions], "active")
                self.stats["logons"] += 1
        elif total > target:
            # Users told their host is being retired mostly stay until they must go: the
            # drains' deadlines and forced logoffs get their turn.
            staying = {h.pod for h, p in mine
                       if DRAINING_ANNOTATION in (p["metadata"].get("annotations") or {})
                       and self.rng.random() < 0.8 and not self.closing}
            for _ in range(min(total - target, 3)):
                busy = [h for h, _ in mine if h.pod not in staying
                        and any(s.state != "loggingOff" for s in h.sessions)]
                if not busy:
                    break
                host = self.rng.choice(busy)
                states = [s.state for s in host.sessions]
                ending = self.rng.choice([i for i, s in enumerate(states) if s != "loggingOff"])
                host.set_sessions(*(s for i, s in enumerate(states) if i != ending))
                self.stats["logoffs"] += 1
        # Some users lose their connection, some come back.
        if self.rng.random() < 0.2:
            busy = [h for h, _ in mine if any(s.state != "loggingOff" for s in h.sessions)]
            if busy:
                host = self.rng.choice(busy)
                states = [s.state for s in host.sessions]
                i = self.rng.choice([i for i, s in enumerate(states) if s != "loggingOff"])
                states[i] = "disconnected" if states[i] == "active" else "active"
                host.set_sessions(*states)


# --- the fuzz ---------------------------------------------------------------------------

def fuzz_docs(ns: str) -> list[dict[str, Any]]:
    """The example hospital, fuzzed: without agents (kwok), with rollouts that end."""
    return quick_rollouts(without_agents(example_docs(ns)))


class FuzzLoop:
    """Hypothesis batches over the fuzz namespace's pool, app and policy in turn, paced to
    stay ahead of the target. Each input runs under `gate`, which a control-plane restart
    takes, so no input is judged on an API server that is not there."""

    BATCH = 12

    def __init__(self, bed: Bed, ns: str, config: SoakConfig, started: float, seconds: float,
                 say: Callable[[str], None]) -> None:
        self.bed, self.ns, self.config, self.say = bed, ns, config, say
        self.fuzzer = Fuzzer(bed, ns, fuzz_docs(ns), status_timeout=120)
        self.started, self.seconds = started, seconds
        self.gate = threading.Lock()
        self.stopped = threading.Event()
        self.torn: list[str] = []
        self.findings: list[str] = []
        self.transient = 0
        self.batches = 0
        self.thread = threading.Thread(target=self._run, name="fuzz", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=300)

    @property
    def tried(self) -> int:
        return self.fuzzer.tally.tried

    def _allowed(self) -> float:
        elapsed = time.monotonic() - self.started
        return 10 + 1.3 * self.config.fuzz_target * elapsed / max(1.0, self.seconds)

    def _profile(self, batch: int) -> Callable[[Any], Any]:
        profile = settings(max_examples=self.BATCH, deadline=None, database=None,
                           derandomize=False, phases=[Phase.generate],
                           suppress_health_check=list(HealthCheck))

        def apply(test: Any) -> Any:
            return hypothesis_seed(self.config.seed + batch)(profile(test))

        return apply

    def _run(self) -> None:
        targets = cases(self.bed, self.ns)
        while not self.stopped.is_set():
            kind, name, guarded = targets[self.batches % len(targets)]
            try:
                fuzz_one(self.fuzzer, kind, name, guarded, self._profile(self.batches),
                         attempt=self._attempt)()
            except Exception as err:  # hypothesis itself; never expected
                self.findings.append(f"hypothesis: {err!r}"[:500])
            self.batches += 1
            self.restore()  # each batch starts from the valid spec

    def restore(self) -> None:
        """The fuzzed objects' valid specs back (retried through outages)."""
        for _ in range(30):
            with self.gate:
                try:
                    self.fuzzer.restore()
                    return
                except KubeError:
                    self.transient += 1
            time.sleep(2)

    def _attempt(self, one: Callable[[], None]) -> None:
        while not self.stopped.is_set() and self.tried >= self._allowed():
            time.sleep(0.25)
        for _ in range(10):
            if self.stopped.is_set():
                return
            with self.gate:
                try:
                    one()
                    return
                except Transient:
                    self.transient += 1
                except KubeError as err:
                    if err.status not in (0, 503, 504):
                        self.findings.append(f"{err.status}: {err}"[:500])
                        return
                    self.transient += 1
                except TornDown as err:
                    self.torn.append(str(err)[:1000])
                    self.say(f"fuzz: {err}")
                    return
                except Exception as err:  # a spec neither refused by field nor reported
                    self.findings.append(str(err)[:1000])
                    self.say(f"fuzz finding: {str(err)[:300]}")
                    return
            time.sleep(2)


# --- the operator's memory and life ------------------------------------------------------

@dataclass
class Process:
    pid: int
    started: float
    ended: float | None = None
    killed: bool = False
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time, MiB)

    @property
    def peak(self) -> float:
        return max((m for _, m in self.samples), default=0.0)

    @property
    def lived(self) -> float:
        return (self.ended or time.time()) - self.started


def rss_mib(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per hour."""
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if not var else 3600 * sum((x - mx) * (y - my) for x, y in points) / var


# --- the log ----------------------------------------------------------------------------

def _normalise(text: str) -> str:
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uid>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?", "<time>", text)
    return re.sub(r"\d{4,}", "<n>", text)[:240]


@dataclass
class LogSummary:
    lines: int = 0
    starts: int = 0
    warnings: int = 0
    errors: int = 0
    tracebacks: int = 0
    top: list[tuple[str, int]] = field(default_factory=list)  # (line, times) over the run
    worst_minute: tuple[str, int] = ("", 0)  # outside outages: the most repeated line
    loops: list[tuple[str, str, int]] = field(default_factory=list)  # (minute, line, times)


def summarise_log(text: str, outages: list[tuple[str, float, float]]) -> LogSummary:
    """Warning and error lines per process and minute. An error loop: one (normalised)
    line repeated LOOP_PER_MINUTE times within a minute by one process, outside the
    control-plane outages and the OUTAGE_GRACE_S after them (when retries are expected)."""
    out = LogSummary()
    per_minute: Counter[tuple[int, int, str]] = Counter()
    overall: Counter[str] = Counter()
    process, last_time = 0, 0.0
    for rec in parse_log(text):
        out.lines += 1
        message = str(rec.get("message", ""))
        if message == START:
            process += 1
            out.starts += 1
        when = parse_time(rec.get("timestamp"))
        last_time = when.timestamp() if when else last_time
        severity = rec.get("severity")
        if "Traceback" in json.dumps(rec):
            out.tracebacks += 1
        if severity not in ("warn", "warning", "error", "critical", "raw"):
            continue
        if severity in ("error", "critical", "raw"):
            out.errors += 1
        else:
            out.warnings += 1
        detail = json.dumps(rec.get("errors"))[:200] if rec.get("errors") else ""
        key = _normalise(f"{message} {detail}".strip())
        overall[key] += 1
        if any(start - 2 <= last_time <= end + OUTAGE_GRACE_S for _, start, end in outages):
            continue
        per_minute[(process, int(last_time // 60), key)] += 1
    out.top = overall.most_common(3)
    if per_minute:
        (_, _, key), times = per_minute.most_common(1)[0]
        out.worst_minute = (key, times)
    out.loops = [(datetime.fromtimestamp(minute * 60).strftime("%H:%M"), key, times)
                 for (_, minute, key), times in per_minute.items() if times >= LOOP_PER_MINUTE]
    return out


# --- the report --------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    expected_failure: str = ""  # why a failure is known (and not fixed here)

    @property
    def verdict(self) -> str:
        if self.ok:
            return "ok"
        return "EXPECTED FAILURE" if self.expected_failure else "FAILED"


@dataclass
class SoakReport:
    config: SoakConfig
    seconds: float = 0.0
    chaos_seconds: float = 0.0
    kills: int = 0
    kill_points: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    outage_seconds: list[float] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    fuzz: dict[str, Any] = field(default_factory=dict)
    torn: list[str] = field(default_factory=list)
    fuzz_findings: list[str] = field(default_factory=list)
    sessions: Counter[str] = field(default_factory=Counter)
    cuts: list[Cut] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    audited: int = 0
    audits: int = 0
    crashes: list[str] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)
    log: LogSummary = field(default_factory=LogSummary)
    loads: list[tuple[float, float, float]] = field(default_factory=list)
    harness_errors: list[str] = field(default_factory=list)

    # -- memory --
    def restart_rss(self) -> list[float]:
        """The peak RSS of each killed process that lived 5 s or more (it has listed
        everything and made its first pass by then)."""
        return [p.peak for p in self.processes if p.killed and p.samples and p.lived >= 5]

    def long_lived(self) -> Process | None:
        return max(self.processes, key=lambda p: p.lived, default=None)

    def memory(self) -> tuple[bool, list[str]]:
        lines = []
        ok = True
        across = self.restart_rss()
        if len(across) >= 4:
            k = max(2, min(10, len(across) // 4))
            first, last = statistics.median(across[:k]), statistics.median(across[-k:])
            per_100 = 100 * slope_per_hour([(i, m) for i, m in enumerate(across)]) / 3600
            bounded = last <= first * 1.10 + 5
            ok &= bounded
            trend = f", trend {per_100:+.2f} MiB per 100 restarts" if len(across) >= 20 else ""
            lines.append(f"across {len(across)} restarts (peak RSS of each killed process): first "
                         f"{k} median {first:.1f} MiB, last {k} median {last:.1f} MiB{trend}; "
                         f"min {min(across):.1f}, max {max(across):.1f}")
        long = self.long_lived()
        if long is not None and len(long.samples) >= 10:
            warm = [(t - long.started, m) for t, m in long.samples if t - long.started >= 60]
            if len(warm) >= 10:
                k = max(3, len(warm) // 5)
                early = statistics.median(m for _, m in warm[:k])
                late = statistics.median(m for _, m in warm[-k:])
                bounded = late <= early * 1.10 + 5
                ok &= bounded
                step = max(1, len(warm) // 12)
                series = ", ".join(f"{t / 60:.0f}m {m:.0f}" for t, m in warm[::step])
                lines.append(f"long-lived process (pid {long.pid}, {long.lived / 60:.1f} "
                             f"min): after the first minute median {early:.1f} MiB in its "
                             f"first fifth, {late:.1f} MiB in its last, peak {long.peak:.1f}"
                             f", trend {slope_per_hour(warm):+.1f} MiB/h; samples (age MiB): "
                             f"{series}")
        return ok, lines

    def checks(self) -> list[Check]:
        orphans = [p for p in self.problems if p.kind == "orphan"]
        duplicates = [p for p in self.problems if p.kind == "duplicate"]
        other = [p for p in self.problems if p.kind not in ("orphan", "duplicate")]
        rollout_cuts = [c for c in self.cuts if c.by_rollout]
        other_cuts = [c for c in self.cuts if not c.by_rollout]
        memory_ok, memory_lines = self.memory()
        c = self.config
        return [
            Check("operator SIGKILLs", self.kills >= c.kill_target,
                  f"{self.kills} (target {c.kill_target})"),
            Check("fuzzed specs", self.fuzz.get("tried", 0) >= c.fuzz_target,
                  f"{self.fuzz.get('tried', 0)} (target {c.fuzz_target})"),
            Check("orphans", not orphans, f"{len(orphans)} {[str(p) for p in orphans[:5]]}"),
            Check("duplicates", not duplicates,
                  f"{len(duplicates)} {[str(p) for p in duplicates[:5]]}"),
            Check("other audit problems", not other,
                  f"{len(other)} {[str(p) for p in other[:5]]}"),
            Check("cut sessions (scale-in, drains, restarts)", not other_cuts,
                  f"{len(other_cuts)} {[str(x) for x in other_cuts[:5]]}"),
            Check("cut sessions by image rollouts", not rollout_cuts,
                  f"{len(rollout_cuts)} {[str(x) for x in rollout_cuts[:5]]}"),
            Check("running children torn down by an invalid spec", not self.torn,
                  f"{len(self.torn)} {self.torn[:3]}"),
            Check("fuzzed specs neither refused by field nor reported", not self.fuzz_findings,
                  f"{len(self.fuzz_findings)} {self.fuzz_findings[:3]}"),
            Check("operator crashes and tracebacks", not self.crashes and
                  not self.log.tracebacks,
                  f"crashes {len(self.crashes)} {self.crashes[:3]}, tracebacks "
                  f"{self.log.tracebacks}"),
            Check("memory bounded", memory_ok, "; ".join(memory_lines)),
            Check("no error loop", not self.log.loops,
                  f"{len(self.log.loops)} {self.log.loops[:3]}"),
        ]

    def failed(self) -> list[Check]:
        return [c for c in self.checks() if not c.ok and not c.expected_failure]

    def lines(self) -> list[str]:
        c = self.config
        loads = [a for a, _, _ in self.loads]
        fz = self.fuzz
        s = self.sessions
        _, memory_lines = self.memory()
        out = [
            f"{self.seconds / 60:.1f} min in all, {self.chaos_seconds / 60:.1f} min of "
            f"chaos (seed {c.seed}); load average (1 min) mean "
            f"{statistics.fmean(loads) if loads else 0:.2f}, max {max(loads, default=0):.2f} "
            f"on {os.cpu_count()} cores",
            f"operator SIGKILLs: {self.kills}, each restarted, at random points of "
            f"{dict(self.kill_points.most_common())}",
            f"control-plane restarts: {dict(self.restarts)} (SIGKILL, back and healthy in "
            f"{', '.join(f'{x:.1f}' for x in self.outage_seconds)} s)",
            f"chaos actions: {dict(self.actions.most_common())}",
            f"fuzzed specs: {fz.get('tried', 0)} through the API server over running objects"
            f" (rejected at admission {fz.get('rejected', 0)}, accepted and Ready "
            f"{fz.get('accepted_ready', 0)}, accepted and reported not Ready "
            f"{fz.get('accepted_not_ready', 0)}, of which judged invalid "
            f"{fz.get('judged_invalid', 0)}; running children checked intact "
            f"{fz.get('checked', 0)}; retried after an outage {fz.get('transient', 0)})",
            f"sessions: {s['logons']} logons ({s['logons_waiting']} times a logon found no "
            f"free slot on an accepting host), {s['logoffs']} logoffs by users, "
            f"{s['logged_off']} logged off after a deadline; hosts {s['hosts']}: "
            f"{s['removed_empty']} removed empty, {s['removed_after_deadline']} removed "
            f"with sessions after their deadline, {len(self.cuts)} cut "
            f"({sum(x.by_rollout for x in self.cuts)} by image rollouts)",
            f"audits: {self.audits}, objects checked: {self.audited}; orphans "
            f"{sum(p.kind == 'orphan' for p in self.problems)}, duplicates "
            f"{sum(p.kind == 'duplicate' for p in self.problems)}",
            f"operator processes: {len(self.processes)}; " + "; ".join(memory_lines),
            f"operator log: {self.log.lines} lines, {self.log.starts} starts, "
            f"{self.log.warnings} warnings, {self.log.errors} errors, {self.log.tracebacks}"
            f" tracebacks; most repeated in one minute by one process (outside outages): "
            f"{self.log.worst_minute[1]}x {self.log.worst_minute[0]!r}; most repeated "
            f"over the run: {self.log.top}",
        ]
        if self.harness_errors:
            out.append(f"harness errors: {self.harness_errors[:5]}")
        for check in self.checks():
            why = f" — {check.expected_failure}" if check.verdict == "EXPECTED FAILURE" else ""
            out.append(f"check {check.name}: {check.verdict}: {check.detail}{why}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "chaos_seconds": self.chaos_seconds,
                "kills": self.kills, "kill_points": dict(self.kill_points),
                "restarts": dict(self.restarts), "outage_seconds": self.outage_seconds,
                "actions": dict(self.actions), "fuzz": self.fuzz, "torn": self.torn,
                "fuzz_findings": self.fuzz_findings, "sessions": dict(self.sessions),
                "cuts": [vars(x) for x in self.cuts],
                "problems": [vars(p) for p in self.problems], "audited": self.audited,
                "crashes": self.crashes, "loads": self.loads,
                "processes": [vars(p) for p in self.processes],
                "log": vars(self.log),
                "checks": [vars(c) for c in self.checks()]}


# --- the soak ----------------------------------------------------------------------------

class Soak:
    def __init__(self, bed: Bed, config: SoakConfig, workdir: Path,
                 say: Callable[[str], None] = say_stdout) -> None:
        if bed.state.external:
            raise SystemExit("the soak restarts the API server and etcd: it needs a test "
                             "bed of its own (hack/testbed.py up), not KUBECONFIG's cluster")
        self.bed, self.config, self.workdir, self.say = bed, config, workdir, say
        self.rng = random.Random(config.seed)
        self.testbed = _load_testbed_module()
        self.report = SoakReport(config)
        self.op_lock = threading.Lock()
        self.process: Process | None = None
        self.outages: list[tuple[str, float, float]] = []
        self.restart_plan: list[tuple[float, str]] = []
        self.stopped = threading.Event()
        self.down = False  # the operator is down on purpose (between a kill and its start)
        prefix = f"soak-{uuid.uuid4().hex[:6]}"
        self.ward, self.fuzz_ns = f"{prefix}-ward", f"{prefix}-fuzz"
        workdir.mkdir(parents=True, exist_ok=True)
        self.op = Operator(bed, f"{prefix}-*", workdir / "operator.log")
        self.world = World(self.ward, config)
        self.sessions = Sessions(bed, self.ward, workdir / "hosts", self.rng, say)
        self.fuzz: FuzzLoop | None = None
        self.monitor = threading.Thread(target=self._monitor, name="monitor", daemon=True)

    # -- the whole run --
    def run(self) -> SoakReport:
        started = time.monotonic()
        try:
            self.setup()
            self.chaos()
            self.finish()
        finally:  # interrupted or not, the report of what ran
            self.teardown()
            self.report.seconds = time.monotonic() - started
            self.collect()
            for line in self.report.lines():
                self.say(line)
            (self.workdir / "report.json").write_text(
                json.dumps(self.report.as_json(), indent=1, default=str))
        return self.report

    def setup(self) -> None:
        c = self.config
        self.say(f"namespaces {self.ward} (chaos) and {self.fuzz_ns} (fuzz); "
                 f"{c.minutes:g} min of chaos, targets: {c.kill_target} kills, "
                 f"{c.fuzz_target} fuzzed specs, {c.restarts('kube-apiserver')} API server "
                 f"and {c.restarts('etcd')} etcd restarts; work dir {self.workdir}")
        new_namespace(self.bed, self.ward)
        new_namespace(self.bed, self.fuzz_ns)
        self.bed.apply(self.world.docs())
        self.bed.apply(fuzz_docs(self.fuzz_ns))
        self.start_operator()
        self.sessions.start()
        self.monitor.start()
        for ns in (self.ward, self.fuzz_ns):
            self.wait_ready(ns, 180)
        for pool in SESSION_POOLS:
            self.sessions.set_target(pool, self.rng.randint(3, 10))

    def wait_ready(self, ns: str, timeout: float) -> list[str]:
        """Every parent Ready for its generation; what was not, if the time ran out."""
        deadline = time.monotonic() + timeout
        waiting = ["(nothing listed yet)"]
        while time.monotonic() < deadline:
            try:
                waiting = [f"{o['kind']}/{o['metadata']['name']}" for o in
                           parents(self.bed, ns) if not is_ready(o)]
            except AssertionError:
                waiting = ["(the API server did not answer)"]
            if not waiting:
                return []
            time.sleep(1)
        return waiting

    # -- the operator --
    def start_operator(self) -> None:
        with self.op_lock:
            for attempt in range(3):
                try:
                    self.op.start()
                    break
                except AssertionError as err:
                    self.report.harness_errors.append(f"operator start {attempt}: {err}"[:300])
                    self.op.stop(signal.SIGKILL)
            else:
                raise AssertionError(f"the operator did not start:\n{self.op.logs()[-3000:]}")
            assert self.op.proc is not None
            self.process = Process(self.op.proc.pid, time.time())
            self.report.processes.append(self.process)

    def kill_operator(self, point: str) -> None:
        with self.op_lock:
            self.op.stop(signal.SIGKILL)
            if self.process is not None:
                self.process.ended, self.process.killed = time.time(), True
            self.process = None
        self.report.kills += 1
        self.report.kill_points[point] += 1

    def _monitor(self) -> None:
        last_load = 0.0
        while not self.stopped.wait(2.0):
            with self.op_lock:
                proc, process = self.op.proc, self.process
                if proc is not None and process is not None:
                    if proc.poll() is not None:  # exited, and not by our hand
                        self.report.crashes.append(f"pid {proc.pid} exited with "
                                                   f"{proc.returncode}")
                        process.ended = time.time()
                        self.op.proc, self.process = None, None
                    else:
                        rss = rss_mib(proc.pid)
                        if rss is not None:
                            process.samples.append((time.time(), rss))
            if time.monotonic() - last_load >= 30:
                last_load = time.monotonic()
                self.report.loads.append(os.getloadavg())

    # -- the chaos --
    def chaos(self) -> None:
        c = self.config
        seconds = c.minutes * 60
        begin = time.monotonic()
        end, kill_end = begin + seconds, begin + seconds * c.kill_share
        for component, offset in (("kube-apiserver", 0.0), ("etcd", 0.5)):
            n = c.restarts(component)
            for i in range(n):
                share = (i + (offset + self.rng.uniform(0.2, 0.8)) % 1) / n
                self.restart_plan.append((begin + seconds * min(share, 0.97), component))
        self.restart_plan.sort()
        self.fuzz = FuzzLoop(self.bed, self.fuzz_ns, c, begin, seconds, self.say)
        self.fuzz.start()
        progress = [begin]
        # Phase 1: kills at random points of whatever is going on.
        while time.monotonic() < end and (time.monotonic() < kill_end
                                          or self.report.kills < c.kill_target):
            left = max(1, c.kill_target - self.report.kills)
            interval = max(3.0, (kill_end - time.monotonic()) / left)
            cycle = time.monotonic()
            point = self.act()
            delay = self.rng.uniform(0.05, max(0.5, min(8.0, interval * 0.6)))
            time.sleep(delay)  # the kill's point in what was just started
            self.kill_operator(point)
            self.down = True
            if self.rng.random() < 0.3:
                self.act()  # changed while no operator runs
            time.sleep(self.rng.uniform(0.0, 1.5))
            self.down = False
            self.start_operator()
            while time.monotonic() < cycle + interval - 1:
                self.due_restarts()
                time.sleep(min(self.rng.uniform(1.0, 3.0),
                               max(0.0, cycle + interval - time.monotonic())))
                if time.monotonic() < cycle + interval - 0.5:
                    self.act()
            self.due_restarts()
            self.progress(begin, progress)
        if c.minutes >= 10 and time.monotonic() < end - 120:
            self.checkpoint(final=False)
        # Phase 2: one operator process to the end, everything else goes on.
        while time.monotonic() < end:
            self.act()
            self.due_restarts()
            time.sleep(min(self.rng.uniform(2.0, 6.0), max(0.0, end - time.monotonic())))
            self.progress(begin, progress)
        while self.restart_plan:  # any left over (a slow phase 1) happen now
            self.due_restarts(force=True)
        self.report.chaos_seconds = time.monotonic() - begin

    def progress(self, begin: float, last: list[float]) -> None:
        if time.monotonic() - last[0] < 60:
            return
        last[0] = time.monotonic()
        r, fz = self.report, self.fuzz
        rss = self.process.samples[-1][1] if self.process and self.process.samples else 0
        self.say(f"{(time.monotonic() - begin) / 60:4.1f} min: kills {r.kills}, restarts "
                 f"{dict(r.restarts)}, fuzzed {fz.tried if fz else 0} (torn down "
                 f"{len(fz.torn) if fz else 0}, findings {len(fz.findings) if fz else 0}), "
                 f"sessions {self.sessions.sessions()} on {len(self.sessions.hosts)} hosts "
                 f"({self.sessions.stats['logged_off']} logged off after a deadline), cuts "
                 f"{len(self.sessions.cuts)}, operator RSS {rss:.0f} MiB, load "
                 f"{os.getloadavg()[0]:.2f}")

    def due_restarts(self, force: bool = False) -> None:
        while self.restart_plan and (force or self.restart_plan[0][0] <= time.monotonic()):
            _, component = self.restart_plan.pop(0)
            gate = self.fuzz.gate if self.fuzz else threading.Lock()
            with gate:  # the fuzzed input in flight is judged first
                began = time.time()
                self.testbed.restart(Path(self.bed.state.dir), component,
                                     downtime=self.rng.uniform(0.5, 3.0), sig=signal.SIGKILL)
                self.outages.append((component, began, time.time()))
            self.report.restarts[component] += 1
            self.report.outage_seconds.append(time.time() - began)

    def act(self) -> str:
        if self.op.proc is None and not self.down:  # it crashed (counted): back it comes
            self.start_operator()
        w = self.world
        weights = {"rollout": 3.0, "scale-in": 2.0, "scale-out": 1.5, "policy change": 2.0,
                   "deletion": 1.5, "re-creation": 1.5 if w.deleted else 0.0}
        what = self.rng.choices(list(weights), weights=list(weights.values()))[0]
        try:
            {"rollout": self.rollout, "scale-in": self.scale_in, "scale-out": self.scale_out,
             "policy change": self.policy_change, "deletion": self.deletion,
             "re-creation": self.recreation}[what]()
            self.report.actions[what] += 1
        except Exception as err:  # kubectl refused, or the API server was away
            self.report.actions[f"{what} failed"] += 1
            self.report.harness_errors.append(f"{what}: {err}"[:300])
        return what

    def apply(self, doc: dict[str, Any]) -> None:
        self.bed.apply([doc])

    def rollout(self) -> None:
        w = self.world
        pools = w.names("SessionHostPool", sessions=False)
        if self.config.session_rollouts and (self.rng.random() < 0.25 or not pools):
            pools = w.names("SessionHostPool", sessions=True)
        pool = self.rng.choice(pools)
        version = w.images[pool]
        # Now and then a rollback: the previous image again.
        w.images[pool] = version - 1 if version > 1 and self.rng.random() < 0.2 else version + 1
        doc = w.desired[("SessionHostPool", pool)]
        doc["spec"]["image"] = IMAGE.format(w.images[pool])
        self.apply(doc)

    def scale_in(self) -> None:
        pool = self.rng.choice(list(SESSION_POOLS))
        self.sessions.set_target(pool, self.rng.randint(0, self.sessions.target(pool) // 2))

    def scale_out(self) -> None:
        pool = self.rng.choice(list(SESSION_POOLS))
        most = MAX_HOSTS * PER_HOST - 4
        now = self.sessions.target(pool)
        self.sessions.set_target(pool, self.rng.randint(min(now + 2, most), most))

    def policy_change(self) -> None:
        name = self.rng.choice(self.world.names("AccessPolicy"))
        doc = self.world.desired[("AccessPolicy", name)]
        change = self.rng.choice(POLICY_CHANGES)(self.rng)
        self.apply({**doc, "spec": merged(doc["spec"], change)})

    def deletion(self) -> None:
        w, rng = self.world, self.rng
        kinds = {"child": 3.0, "PublishedApp": 2.0,
                 "SessionHostPool": 1.0 if sum(k == "SessionHostPool" for k, _ in w.deleted)
                 < 2 else 0.0,
                 "AccessPolicy": 1.0 if len(w.names("AccessPolicy")) > 1 else 0.0}
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        if kind == "child":  # the operator puts it back
            pool = rng.choice(w.names("SessionHostPool"))
            apps = w.names("PublishedApp")
            target = rng.choice([f"service/{pool}", f"networkpolicy/{pool}",
                                 f"poddisruptionbudget/{pool}", f"configmap/{pool}-host-config",
                                 "configmap/deskfleet-catalog",
                                 f"ingress/{rng.choice(apps)}" if apps else f"service/{pool}"])
            self.bed.kubectl("delete", target, "-n", self.ward, "--wait=false",
                             "--ignore-not-found")
            return
        if kind == "SessionHostPool":  # never a pool with users on it
            name = rng.choice(w.names(kind, sessions=False))
        else:
            name = rng.choice(w.names(kind))
        self.bed.kubectl("delete", kind.lower(), name, "-n", self.ward, "--wait=false")
        w.deleted.add((kind, name))

    def recreation(self) -> None:
        key = self.rng.choice(sorted(self.world.deleted))
        self.apply(self.world.desired[key])
        self.world.deleted.discard(key)

    # -- putting everything back, and the audit --
    def restore_world(self) -> None:
        self.bed.apply(self.world.docs())
        self.world.deleted.clear()

    def checkpoint(self, final: bool) -> None:
        """Everything as it should be, then wait for the ward (and, at the end, the fuzz)
        namespace to settle and audit it."""
        began = time.monotonic()
        self.restore_world()
        namespaces = [self.ward]
        if final:
            namespaces.append(self.fuzz_ns)
            self.sessions.end_of_day()
            deadline = time.monotonic() + 120
            while self.sessions.sessions() and time.monotonic() < deadline:
                time.sleep(1)
        problems: list[Problem] = []
        checked = 0
        for ns in namespaces:
            waiting = self.wait_ready(ns, 180)
            if waiting:
                problems.append(Problem("other", f"{ns}: not Ready after 180 s: "
                                        f"{waiting[:8]}"))
            found, count = self.settled_audit(ns, hosts=final)
            problems += found
            checked += count
        self.report.problems += problems
        self.report.audited += checked
        self.report.audits += 1
        self.say(f"{'final' if final else 'mid-run'} audit of {', '.join(namespaces)}: "
                 f"{checked} objects, {len(problems)} problems "
                 f"{[str(p) for p in problems[:5]]} ({time.monotonic() - began:.0f}s)")

    def settled_audit(self, ns: str, hosts: bool, timeout: float = 120
                      ) -> tuple[list[Problem], int]:
        """The audit, once it finds nothing (the garbage collector, rollouts and drains
        may still be at work), or its last findings when the time runs out."""
        deadline = time.monotonic() + timeout
        last: tuple[list[Problem], int] = ([], 0)
        while True:
            try:
                # Mid-run, rollouts may be under way with hosts draining.
                last = audit_problems(self.bed, ns, rollouts=True, settled=hosts)
            except AssertionError as err:
                last = ([Problem("other", f"audit failed: {err}"[:300])], last[1])
            if not last[0] or time.monotonic() > deadline:
                return last
            time.sleep(2)

    def finish(self) -> None:
        if self.fuzz is not None:
            self.fuzz.stop()
            self.fuzz.restore()
        self.checkpoint(final=True)

    def teardown(self) -> None:
        self.stopped.set()
        if self.fuzz is not None:
            self.fuzz.stop()
        with contextlib.suppress(RuntimeError):
            self.monitor.join(timeout=10)
        self.sessions.stop()
        with self.op_lock:
            self.op.stop()
            if self.process is not None:
                self.process.ended = time.time()
        if not self.config.keep:
            for ns in (self.ward, self.fuzz_ns):
                self.bed.kubectl("delete", "namespace", ns, "--wait=false", check=False)

    def collect(self) -> None:
        r = self.report
        if self.fuzz is not None:
            t = self.fuzz.fuzzer.tally
            r.fuzz = {"tried": t.tried, "rejected": t.rejected,
                      "accepted_ready": t.accepted_ready,
                      "accepted_not_ready": t.accepted_not_ready,
                      "judged_invalid": t.judged_invalid, "checked": t.checked,
                      "reasons": dict(t.reasons), "transient": self.fuzz.transient,
                      "batches": self.fuzz.batches}
            r.torn, r.fuzz_findings = list(self.fuzz.torn), list(self.fuzz.findings)
        r.sessions = Counter(self.sessions.stats)
        r.cuts = list(self.sessions.cuts)
        r.harness_errors += self.sessions.errors
        with contextlib.suppress(OSError):
            r.log = summarise_log(self.op.logs(), self.outages)
