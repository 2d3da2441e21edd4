"""Fault injection against the real control plane: the operator is killed mid-rollout,
the API server and etcd are restarted under it, a second writer fights it over its
children, objects vanish while they are being created, a whole namespace is deleted
under it, and hosts carrying sessions are never removed whatever happens to it.

Every test prints what it injected and how many objects it checked (`[faults] ...`),
also without `-s`. Random delays come from a seeded RNG (DESKFLEET_FAULT_SEED) so a
failing run can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import Bed, Operator, _load_testbed_module, example_docs, wait_until
from ..support.faults import (
    API,
    CHILD_KINDS,
    MANAGED,
    assert_clean,
    catalog_apps,
    failures,
    fleet,
    log_size,
    new_namespace,
    parents,
    records,
    starts,
    wait_converged,
)
from ..support.metrics import total
from ..support.revisions import current_deployment, current_replicas
from .test_autoscaling import Agents, hosts, pool_manifest, ready_hosts

SEED = int(os.environ.get("DESKFLEET_FAULT_SEED", "20261124"))


def say(capsys: pytest.CaptureFixture[str], message: str) -> None:
    """Straight to the terminal: the counts belong in CI logs, with or without -s."""
    with capsys.disabled():
        print(f"\n[faults] {message}", flush=True)


def operator_metrics(op: Operator) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics",
                                timeout=5) as r:
        return str(r.read().decode())


# --- 1. SIGKILL at random points of a large rollout --------------------------------------

KILLS = 7


def test_operator_killed_at_random_points_of_a_rollout_converges_cleanly(
        bed: Bed, namespace: str, operator: Operator,
        capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    extra = fleet(namespace, "bulk", pools=6, apps_per_pool=3, policies=2)
    # More work arrives at every restart (sometimes while the operator is down), so every
    # kill lands in the middle of something.
    step = -(-len(extra) // (KILLS - 1))
    batches = [example_docs(namespace)] + [extra[i:i + step]
                                           for i in range(0, len(extra), step)]
    bed.apply(batches[0])
    delays = []
    for i in range(KILLS):
        delay = rng.uniform(0.1, 1.5)
        delays.append(round(delay, 2))
        time.sleep(delay)  # the fault's timing, not an assertion
        operator.stop(signal.SIGKILL)
        if i + 1 < len(batches) and rng.random() < 0.5:
            bed.apply(batches[i + 1])  # changed while no operator runs
            batches[i + 1] = []
        operator.start()
        if i + 1 < len(batches) and batches[i + 1]:
            bed.apply(batches[i + 1])
    assert operator.proc is not None
    pid = operator.proc.pid
    restarted = time.monotonic()
    items = wait_converged(bed, namespace)
    converged = time.monotonic() - restarted
    checked = assert_clean(bed, namespace)

    kinds = Counter(o["kind"] for o in items)
    assert kinds == Counter(d["kind"] for d in example_docs(namespace) + extra), kinds
    # One process all along since the last start: no crash loop.
    assert operator.proc.poll() is None and operator.proc.pid == pid and operator.live()
    # The log tells the story: every start, and what each process wrote before it was
    # killed (a process killed between its writes and its log line leaves no line).
    recs = records(operator)
    assert starts(operator) == KILLS + 1
    writes = [0]
    for r in recs:
        if r["message"] == "Activity 'start' succeeded.":
            writes.append(0)
        elif r["message"] == "children synced":
            writes[-1] += len(r["applied"]) + len(r["deleted"])
    assert not failures(recs), failures(recs)[:5]
    say(capsys, f"operator kills: {KILLS} (SIGKILL after {delays}s), objects checked: "
        f"{checked}, converged {converged:.1f}s after the last restart; children written "
        f"per process (log): {writes[1:]}")


# --- 2. the API server and etcd restarted under a running operator ------------------------

def _changes_reach_the_cluster(bed: Bed, ns: str, round_: int) -> int:
    """Changes after an outage, each needing another watch stream to have recovered: a
    pool's spec, a deleted child, a new app. Returns how many were checked."""
    cidr = f"10.50.{round_}.0/24"  # a new backend: reaches the NetworkPolicy, no rollout
    backends = [{"name": "ehr-api", "cidr": "10.40.1.0/24", "ports": [{"port": 443}]},
                {"name": f"after-outage-{round_}", "cidr": cidr, "ports": [{"port": 443}]}]
    bed.kubectl("patch", "shp", "ehr-web", "-n", ns, "--type=merge",
                "-p", json.dumps({"spec": {"backends": backends}}))
    bed.kubectl("delete", "networkpolicy", "clinical-desktop", "-n", ns)
    new = f"after-outage-{round_}"
    bed.apply([{"apiVersion": API, "kind": "PublishedApp",
                "metadata": {"name": new, "namespace": ns, "labels": {"tier": "clinical"}},
                "spec": {"displayName": new, "poolRef": {"name": "ehr-web"},
                         "gateway": {"host": "workspace.northgate.example", "path": f"/{new}",
                                     "ingressClassName": "nginx"}}}])
    wait_until(lambda: cidr in json.dumps((bed.get("networkpolicy", "ehr-web", ns) or {}).get(
        "spec", {}).get("egress")), what="the pool's new backend in its NetworkPolicy")
    wait_until(lambda: bed.get("networkpolicy", "clinical-desktop", ns), what="child restored")
    wait_until(lambda: bed.get("ingress", new, ns), what="the new app's route")
    wait_until(lambda: new in catalog_apps(bed, ns), what=f"{new} in the catalog")
    return 4


def _testbed_dir(bed: Bed) -> Path:
    if bed.state.external:
        pytest.skip("restarting the control plane needs the test bed's own processes")
    return Path(bed.state.dir)


def test_operator_rides_out_api_server_and_etcd_restarts(
        bed: Bed, namespace: str, operator: Operator,
        capsys: pytest.CaptureFixture[str]) -> None:
    directory = _testbed_dir(bed)
    testbed = _load_testbed_module()
    bed.apply(example_docs(namespace))
    wait_converged(bed, namespace)
    assert operator.proc is not None
    pid = operator.proc.pid
    checked = 0
    outages = []
    for round_, component in enumerate(("kube-apiserver", "etcd")):
        before = log_size(operator)
        down = time.monotonic()
        # A crash, not a clean shutdown; nothing changes while it is down. Same port,
        # same flags, same data: the kubeconfig stays valid.
        testbed.restart(directory, component, downtime=2, sig=signal.SIGKILL)
        outages.append(f"{component} {time.monotonic() - down:.1f}s")
        checked += _changes_reach_the_cluster(bed, namespace, round_)
        assert operator.proc.poll() is None and operator.proc.pid == pid, (
            f"the operator exited during the {component} outage")
        assert operator.live()
        recs = records(operator, before)
        retried = [r for r in recs if "Request attempt" in r["message"]]
        if component == "kube-apiserver":  # with etcd away, the API server keeps the
            # watches open from its cache: the operator sees nothing fail
            assert retried, "no failed API request logged while the API server was down"
        assert not [r for r in recs if r["message"] == "reconcile failed"]
        say(capsys, f"{component} killed and restarted: the operator (pid {pid}) kept "
            f"running, logged {len(retried)} failed API requests and retried them")
    items = wait_converged(bed, namespace)
    checked += assert_clean(bed, namespace) + len(items)
    say(capsys, f"control-plane restarts: {len(outages)} ({', '.join(outages)} until "
        f"healthy again), objects checked: {checked}")


def test_an_app_deleted_while_the_watches_reconnect_is_forgotten(
        bed: Bed, namespace: str, operator: Operator,
        capsys: pytest.CaptureFixture[str]) -> None:
    directory = _testbed_dir(bed)
    testbed = _load_testbed_module()
    bed.apply([d for d in example_docs(namespace) if d["metadata"]["name"] in
               ("ehr-web", "epr", "rota", "clinicians-home-mfa")])
    wait_converged(bed, namespace)
    wait_until(lambda: catalog_apps(bed, namespace) == {"epr", "rota"}, what="the catalog")
    assert operator.proc is not None
    # The operator is frozen (a long pause, a partition) while the API server restarts
    # and an app is deleted: its watches must resume from an old resourceVersion.
    os.killpg(operator.proc.pid, signal.SIGSTOP)
    try:
        testbed.restart(directory, "kube-apiserver", sig=signal.SIGKILL)
        bed.kubectl("delete", "papp", "rota", "-n", namespace)
    finally:
        os.killpg(operator.proc.pid, signal.SIGCONT)
    resumed = log_size(operator)
    try:
        # A chain of reconnections: Kopf's watches retry the restarted API server with
        # growing delays (1, 1, 2, 3, 5 s...), the garbage collector deletes the app's
        # route, and that event makes the app's pass find it gone. 7-11 s alone here;
        # over 15 s once in a full CI run.
        wait_until(lambda: catalog_apps(bed, namespace) == {"epr"}, timeout=45,
                   what="the deleted app to leave the catalog")
        quiet = log_size(operator)
        time.sleep(3)  # a window in which the deleted app's route must not come back
        recreated = [r for r in records(operator, quiet) if "Ingress/rota" in r.get(
            "applied", [])]
        assert not recreated, f"the deleted app's route re-created {len(recreated)} times"
    finally:
        loop = [r for r in records(operator, resumed) if "Ingress/rota" in r.get("applied",
                                                                                  [])]
        say(capsys, f"API server restarted and an app deleted while the operator was "
            f"frozen; the operator then re-created the deleted app's route {len(loop)} "
            f"times")


# --- 3. a second writer fighting the operator over its children ---------------------------

WRITE_VERBS = ("APPLY", "PATCH", "PUT", "POST")


def writes_to(metrics: str, resources: set[str]) -> int:
    """API server writes to the main resource (not status) of these kinds, all writers."""
    return int(total(metrics, "apiserver_request_total", lambda labels: (
        labels.get("verb") in WRITE_VERBS and labels.get("resource") in resources
        and not labels.get("subresource"))))


def test_second_writer_is_overruled_without_a_fight(
        bed: Bed, namespace: str, operator: Operator,
        capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED + 3)
    bed.apply([d for d in example_docs(namespace)
               if d["metadata"]["name"] in ("ehr-web", "epr", "clinicians-home-mfa")])
    wait_converged(bed, namespace)
    want = {kind: bed.get(kind, "ehr-web", namespace)
            for kind in ("service", "networkpolicy", "poddisruptionbudget")}

    def owned(kind: str, obj: dict[str, Any] | None) -> Any:
        spec = (obj or {}).get("spec", {})
        return {"service": lambda: (spec.get("ports"), spec.get("selector")),
                "networkpolicy": lambda: (spec.get("ingress"), spec.get("egress")),
                "poddisruptionbudget": lambda: (spec.get("maxUnavailable"),
                                                spec.get("selector"))}[kind]()

    def intruder_apply(kind: str, api_version: str, spec: dict[str, Any]) -> None:
        doc = {"apiVersion": api_version, "kind": kind,
               "metadata": {"name": "ehr-web", "namespace": namespace}, "spec": spec}
        bed.kubectl("apply", "--server-side", "--field-manager=intruder", "--force-conflicts",
                    "-f", "-", stdin=yaml.safe_dump(doc))

    # What a person or another controller might do to the operator's children.
    tamperings = [
        # `kubectl edit` of the session port (a plain patch: the edited item is kubectl's).
        lambda i: bed.kubectl("patch", "service", "ehr-web", "-n", namespace, "--type=json",
                              "-p", json.dumps([{"op": "replace", "path": "/spec/ports/0/port",
                                                 "value": 9000 + i}])),
        # Another controller's apply: takes the selector, adds a port of its own.
        lambda i: intruder_apply("Service", "v1", {
            "selector": {"deskfleet.io/accepting": "false"},
            "ports": [{"name": f"intruder-{i}", "port": 7000 + i, "targetPort": 7000 + i}]}),
        # Opening the default-deny NetworkPolicy.
        lambda i: bed.kubectl("patch", "networkpolicy", "ehr-web", "-n", namespace,
                              "--type=merge", "-p", '{"spec":{"egress":[{}],"ingress":[{}]}}'),
        # Letting node drains evict hosts that carry sessions.
        lambda i: intruder_apply("PodDisruptionBudget", "policy/v1", {"maxUnavailable": 5}),
    ]
    rounds = 6
    watched = {"services", "networkpolicies", "poddisruptionbudgets"}
    writes_before = writes_to(bed.metrics(), watched)
    log_before = log_size(operator)
    intruder_writes = 0
    for i in range(rounds):
        for index in rng.sample(range(len(tamperings)), k=rng.randint(1, len(tamperings))):
            tamperings[index](i)
            intruder_writes += 1
        for kind, obj in want.items():
            wait_until(lambda k=kind, o=obj: owned(k, bed.get(k, "ehr-web", namespace))
                       == owned(k, o), timeout=20, what=f"{kind} restored (round {i})")
    writes = writes_to(bed.metrics(), watched)
    recs = records(operator, log_before)
    applied = [a for r in recs if r["message"] == "children synced" for a in r["applied"]]
    operator_writes = writes - writes_before - intruder_writes
    # Each tampering costs the operator a write or two to undo it (a forced apply; a
    # merge patch when the apply cannot; a no-op apply from a pass that ran before its
    # own write came back on the watch). Bounded, and it stops: see the quiet window.
    assert len(applied) <= 2 * intruder_writes, applied
    assert 0 < operator_writes <= 3 * intruder_writes, (operator_writes, intruder_writes)
    assert not failures(recs), failures(recs)[:5]
    # A quiet window: once the second writer stops, nobody writes any more.
    quiet_log = log_size(operator)
    time.sleep(3)  # the window's length, not an assertion
    assert writes_to(bed.metrics(), watched) == writes
    assert not [r for r in records(operator, quiet_log) if r["message"] == "children synced"]
    for kind, obj in want.items():
        assert owned(kind, bed.get(kind, "ehr-web", namespace)) == owned(kind, obj)
    say(capsys, f"conflicting writes: {intruder_writes} over {rounds} rounds, all undone; "
        f"operator writes: {operator_writes} (API server metrics), {len(applied)} children "
        f"re-applied (its log), none in a 3s quiet window; objects checked: {len(want)}")


def test_second_writer_on_the_pod_template_neither_fights_nor_inflates_the_pool(
        bed: Bed, namespace: str, operator: Operator,
        capsys: pytest.CaptureFixture[str]) -> None:
    bed.apply([pool_manifest(namespace, minHosts=2, maxHosts=4)])
    ready_hosts(bed, namespace, 2)
    rounds = 2
    for i in range(rounds):
        # Another writer edits the hosts' template: a rollout, which the operator's
        # restore undoes with another.
        name = (current_deployment(bed, namespace, "desk") or {})["metadata"]["name"]
        bed.kubectl("patch", "deployment", name, "-n", namespace, "--type=merge", "-p",
                    '{"spec":{"template":{"metadata":{"labels":'
                    '{"deskfleet.io/accepting":"false"}}}}}')

        def restored(name: str = name) -> bool:
            deploy = bed.get("deployment", name, namespace) or {}
            replicas, status = deploy["spec"]["replicas"], deploy.get("status", {})
            # Fail at once rather than let a runaway fill the bed with pods.
            assert replicas <= 4, (f"replicas {replicas} > maxHosts 4 with no sessions: the "
                                   "rollout's surge pods were counted as hosts")
            labels = deploy["spec"]["template"]["metadata"]["labels"]
            return bool(labels.get("deskfleet.io/accepting") == "true" and
                        status.get("updatedReplicas") == status.get("replicas") == replicas)

        wait_until(restored, timeout=40, what=f"the template restored (round {i})")
    assert current_replicas(bed, namespace, "desk") == 2
    say(capsys, f"pod-template edits by a second writer: {rounds}, undone without "
        "inflating the pool")


# --- 4. objects deleted while they are being created -------------------------------------

def test_objects_deleted_mid_creation_leave_no_orphans(
        bed: Bed, namespace: str, operator: Operator,
        capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED + 4)
    deleted: list[str] = []
    delays = []
    created = 0
    for wave in range(3):
        docs = fleet(namespace, f"w{wave}", pools=4, apps_per_pool=3)
        created += len(docs)
        apps = [d for d in docs if d["kind"] == "PublishedApp"]
        pools = sorted({a["spec"]["poolRef"]["name"] for a in apps})
        doomed_pools = rng.sample(pools, 2)
        doomed = [f"sessionhostpool/{p}" for p in doomed_pools]
        doomed += [f"publishedapp/{a['metadata']['name']}" for a in apps
                   if a["spec"]["poolRef"]["name"] in doomed_pools]
        survivors = [a for a in apps if a["spec"]["poolRef"]["name"] not in doomed_pools]
        doomed += [f"publishedapp/{a['metadata']['name']}" for a in rng.sample(survivors, 2)]
        bed.apply(docs)
        delays.append(round(rng.uniform(0.05, 0.6), 2))
        time.sleep(delays[-1])  # the fault's timing: a fraction of a second after creation
        bed.kubectl("delete", *doomed, "-n", namespace, "--wait=false")
        deleted += doomed

    items = wait_converged(bed, namespace)
    names = {f"{o['kind'].lower()}/{o['metadata']['name']}" for o in items}
    assert not names & set(deleted)
    assert len(items) == created - len(deleted)
    # No orphans: the garbage collector took every child of a deleted owner, including
    # those the operator created after its owner was gone.
    checked = assert_clean(bed, namespace, timeout=90)
    gone_pools = {d.split("/")[1] for d in deleted if d.startswith("sessionhostpool/")}
    wait_until(lambda: not [p for p in bed.list("pods", namespace, "deskfleet.io/pool")
                            if p["metadata"]["labels"]["deskfleet.io/pool"] in gone_pools],
               timeout=60, what="the deleted pools' hosts to be gone")
    apps = {o["metadata"]["name"] for o in items if o["kind"] == "PublishedApp"}
    wait_until(lambda: catalog_apps(bed, namespace) == apps, what="the catalog")
    # The operator forgot them, and nothing is left retrying.
    metrics = operator_metrics(operator)
    assert not [p for p in gone_pools if f'pool="{p}"' in metrics]
    quiet = log_size(operator)
    time.sleep(3)  # a window in which nothing may fail any more
    assert not failures(records(operator, quiet)), failures(records(operator, quiet))[:3]
    say(capsys, f"objects deleted mid-creation: {len(deleted)} of {created} "
        f"({delays}s after creation), objects checked: {checked}, "
        f"reconciles that failed on the way: {len(failures(records(operator)))}")


# --- 5. a full namespace deleted under the operator --------------------------------------

def test_deleting_a_full_namespace_under_the_operator(
        bed: Bed, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    doomed = new_namespace(bed, f"{namespace}-doomed")
    # One operator for both namespaces, by pattern. (Kopf follows namespaces the same
    # way for a list of names, as the chart's watchNamespaces gives, whenever it may
    # list namespaces; only a cluster-wide operator does not.)
    forgotten = False
    op = Operator(bed, f"{namespace}*", tmp_path / "operator.log")
    try:
        op.start()
        ward = fleet(doomed, "ward", pools=10, apps_per_pool=3, policies=5)
        bed.apply(ward)
        bed.apply(fleet(namespace, "home", pools=1, apps_per_pool=1))
        # Deleted while the rollout is in full swing: every pool has its hosts coming.
        wait_until(lambda: len(bed.list("deployments", doomed)) == 10, timeout=60,
                   what="the doomed namespace's Deployments")
        contents = parents(bed, doomed) + bed.list(CHILD_KINDS, doomed, MANAGED)
        blocking = [o["metadata"]["name"] for o in contents if o["metadata"].get("finalizers")]
        assert not blocking, f"finalizers on {blocking}"
        started = time.monotonic()
        bed.kubectl("delete", "namespace", doomed, "--wait=false")

        def gone() -> bool:
            return bed.kubectl("get", "namespace", doomed, check=False).returncode != 0

        try:
            wait_until(gone, timeout=120, interval=0.5, what=f"namespace {doomed} gone")
        except AssertionError:
            ns = bed.get("namespace", doomed, "") or {}
            raise AssertionError(f"namespace {doomed} stuck: "
                                 f"{ns.get('status', {}).get('conditions')}") from None
        took = time.monotonic() - started
        gone_at = log_size(op)

        # Still alive, still serving the other namespace, and the deleted one forgotten.
        assert op.proc is not None and op.proc.poll() is None and op.live()
        wait_converged(bed, namespace)
        bed.kubectl("patch", "shp", "home-pool-0", "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"port":3390}}')
        wait_until(lambda: (bed.get("service", "home-pool-0", namespace) or {}).get(
            "spec", {}).get("ports", [{}])[0].get("port") == 3390,
            what="a change in the other namespace reconciled")
        time.sleep(2)  # a window in which nothing may fail any more
        assert not failures(records(op, gone_at)), failures(records(op, gone_at))[:3]
        say(capsys, f"namespace deleted with {len(contents)} objects of the operator's in "
            f"it: gone in {took:.1f}s; operator stayed up, "
            f"{len(failures(records(op)))} reconciles failed on the way")
        try:
            wait_until(lambda: f'namespace="{doomed}"' not in operator_metrics(op),
                       timeout=10, what="the operator to forget the deleted namespace")
            forgotten = True
        except AssertionError:
            forgotten = False
    finally:
        op.stop()
        bed.kubectl("delete", "namespace", doomed, "--wait=false", check=False)
    crashes = [r for r in records(op) if r["severity"] == "raw" or "Traceback" in
               json.dumps(r)]
    assert not crashes, crashes[:3]
    if not forgotten:
        pytest.xfail(
            "known bug: Kopf stops watching a namespace as soon as it is marked for "
            "deletion (explicit names too, whenever it may list namespaces), so the "
            "DELETED events of its objects never arrive: the operator keeps them in its "
            "indexes and keeps exporting their metrics (deskfleet_pool_ready 0: alerts "
            "for pools that no longer exist)")


# --- 6. no session cut while the operator is killed --------------------------------------

@pytest.fixture
def agents(bed: Bed, namespace: str, tmp_path: Path) -> Iterator[Agents]:
    a = Agents(bed, namespace, tmp_path / "proc")
    yield a
    a.stop()


def annotations(bed: Bed, ns: str, pod: str) -> dict[str, str]:
    return (bed.get("pod", pod, ns) or {}).get("metadata", {}).get("annotations") or {}


def test_no_host_with_sessions_is_removed_while_the_operator_is_killed(
        bed: Bed, namespace: str, operator: Operator, agents: Agents,
        capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED + 6)
    bed.apply([pool_manifest(namespace, minHosts=5, bufferSessions=1, scaleInDelay="1s")])
    pods = ready_hosts(bed, namespace, 5)
    sessions = dict(zip(pods, (1, 1, 1, 0, 0), strict=True))
    for pod, count in sessions.items():
        agents.set_sessions(pod, count)
    wait_until(lambda: (bed.get("shp", "desk", namespace) or {}).get("status", {}).get(
        "sessions") == 3, what="3 sessions reported")
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in hosts(bed, namespace)}
    protected = {p for p, n in sessions.items() if n}
    empty, late = pods[3], pods[4]

    def check_protected() -> None:
        live = {p["metadata"]["name"]: p for p in bed.list("pods", namespace,
                                                           "deskfleet.io/pool=desk")}
        for pod in protected:
            assert pod in live and live[pod]["metadata"]["uid"] == uids[pod], (
                f"{pod} carried sessions and was removed")
            assert not live[pod]["metadata"].get("deletionTimestamp"), (
                f"{pod} carries sessions and is being deleted")

    # 3 sessions + a buffer of 1 need 2 hosts of 2: the surplus drains, and empty hosts
    # are removed. Meanwhile the operator is killed again and again, and a session lands
    # on an empty host after it started draining: from then on it must stay.
    bed.kubectl("patch", "shp", "desk", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"scaling":{"minHosts":1}}}')
    kills, delays = 0, []
    deadline = time.monotonic() + 90
    while True:
        check_protected()
        if late not in protected and "deskfleet.io/draining-since" in annotations(
                bed, namespace, late):
            agents.set_sessions(late, 1)
            protected.add(late)
        removed = bed.get("pod", empty, namespace) is None
        if kills >= KILLS and removed and late in protected:
            break
        assert time.monotonic() < deadline, (
            f"no scale-in after {kills} kills: "
            f"{(bed.get('shp', 'desk', namespace) or {}).get('status', {}).get('scalingReason')}")
        if kills < KILLS:
            delays.append(round(rng.uniform(0.5, 2.5), 2))
            time.sleep(delays[-1])  # the fault's timing
            operator.stop(signal.SIGKILL)
            operator.start()
            kills += 1
        else:
            time.sleep(0.5)
    check_protected()
    assert current_replicas(bed, namespace, "desk") <= 6  # maxHosts
    drained = [p for p in protected if "deskfleet.io/draining-since" in
               annotations(bed, namespace, p)]
    say(capsys, f"operator kills during scale-in: {kills} (after {delays}s); hosts with "
        f"sessions: {len(protected)}, all kept ({len(drained)} of them draining), empty "
        f"host removed: {empty}; objects checked: {len(protected) + 1}")
