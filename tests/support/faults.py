"""What the fault tests (tests/cluster/test_faults.py) and the soak (tests/support/soak.py)
share: the operator's JSON log read back, generated fleets, convergence, and the audit of
the children deskfleet owns (no orphans, no duplicates, nothing missing)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .process import wait_until

if TYPE_CHECKING:
    from ..conftest import Bed, Operator

API = "deskfleet.io/v1alpha1"
PARENT_KINDS = "sessionhostpools,publishedapps,accesspolicies"
CHILD_KINDS = "deployments,services,poddisruptionbudgets,networkpolicies,ingresses," \
              "httproutes,configmaps,serviceaccounts,roles,rolebindings"
MANAGED = "app.kubernetes.io/managed-by=deskfleet"
CATALOG = "deskfleet-catalog"
POOL_LABEL = "deskfleet.io/pool"
REVISION_LABEL = "deskfleet.io/revision"
POOL_CHILD_KINDS = Counter(["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment",
                            "Service", "PodDisruptionBudget", "NetworkPolicy"])
AGENT_KINDS = Counter(["ServiceAccount", "Role", "RoleBinding"])  # the agent's identity
ROUTE_KINDS = {"Ingress", "HTTPRoute"}
START = "Activity 'start' succeeded."


# --- the operator's log ------------------------------------------------------------------

def parse_log(text: str) -> list[dict[str, Any]]:
    """JSON log lines (anything else kept as raw)."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"message": line, "severity": "raw"})
    return out


def records(op: Operator, since: int = 0) -> list[dict[str, Any]]:
    """The operator's JSON log lines from line `since` on (anything else kept as raw)."""
    return parse_log("\n".join(op.logs().splitlines()[since:]))


def log_size(op: Operator) -> int:
    return len(op.logs().splitlines())


def starts(op: Operator) -> int:
    return sum(1 for r in records(op) if r["message"] == START)


def failures(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reconciles that did not complete, errors other than Kopf retrying a request (what
    an API server outage looks like), tracebacks, and lines that are not JSON."""
    return [r for r in recs if r["message"] in ("reconcile incomplete, will retry",
                                                "reconcile failed")
            or (r["severity"] == "error" and not r["message"].startswith("Request attempt"))
            or r["severity"] == "raw" or "Traceback" in json.dumps(r)]


# --- generated fleets --------------------------------------------------------------------

def fleet(namespace: str, prefix: str, pools: int, apps_per_pool: int,
          policies: int = 1) -> list[dict[str, Any]]:
    """Small pools (one host each), their apps, and policies that allow them all."""
    docs: list[dict[str, Any]] = []
    for i in range(pools):
        pool = f"{prefix}-pool-{i}"
        docs.append({"apiVersion": API, "kind": "SessionHostPool",
                     "metadata": {"name": pool, "namespace": namespace},
                     "spec": {"image": "registry.example/desktop:1", "protocol": "rdp",
                              "sessionsPerHost": 4,
                              "scaling": {"minHosts": 1, "maxHosts": 3}}})
        for j in range(apps_per_pool):
            app = f"{prefix}-app-{i}-{j}"
            docs.append({"apiVersion": API, "kind": "PublishedApp",
                         "metadata": {"name": app, "namespace": namespace,
                                      "labels": {"tier": "fault-test"}},
                         "spec": {"displayName": app, "poolRef": {"name": pool},
                                  "gateway": {"host": "faults.example", "path": f"/{app}",
                                              "ingressClassName": "nginx"}}})
    for k in range(policies):
        docs.append({"apiVersion": API, "kind": "AccessPolicy",
                     "metadata": {"name": f"{prefix}-policy-{k}", "namespace": namespace},
                     "spec": {"subjects": {"groups": [f"staff-{k}"]},
                              "apps": {"selector": {"matchLabels": {"tier": "fault-test"}}}}})
    return docs


def new_namespace(bed: Bed, name: str) -> str:
    bed.kubectl("create", "namespace", name)
    wait_until(lambda: "default" in bed.kubectl("get", "sa", "-n", name, "-o", "name",
                                                check=False).stdout, what="default SA")
    return name


def catalog_apps(bed: Bed, ns: str) -> set[str]:
    cm = bed.get("configmap", CATALOG, ns) or {}
    document = json.loads((cm.get("data") or {}).get("catalog.json") or "{}")
    return {app["name"] for app in document.get("apps", [])}


# --- convergence and the children audit --------------------------------------------------

def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])


def parents(bed: Bed, ns: str) -> list[dict[str, Any]]:
    return bed.list(PARENT_KINDS, ns)


def wait_converged(bed: Bed, ns: str, timeout: float = 90) -> list[dict[str, Any]]:
    """Every pool, app and policy Ready for its current generation; returns them."""
    def converged() -> list[dict[str, Any]] | str:
        items = parents(bed, ns)
        waiting = [f"{o['kind']}/{o['metadata']['name']}" for o in items if not is_ready(o)]
        return items if items and not waiting else f"not Ready: {waiting[:8]}"

    def check() -> list[dict[str, Any]] | None:
        out = converged()
        return out if isinstance(out, list) else None

    try:
        result: list[dict[str, Any]] = wait_until(check, timeout=timeout, interval=0.5,
                                                  what=f"everything in {ns} Ready")
    except AssertionError:
        raise AssertionError(f"{ns} did not converge in {timeout}s: {converged()}") from None
    return result


@dataclass(frozen=True)
class Problem:
    """One finding of the audit. `kind`: orphan (owned by something gone), duplicate (more
    than the rendered set: a second route, a second catalog, extra hosts, two live
    ReplicaSets), missing (less), other."""

    kind: str
    text: str

    def __str__(self) -> str:
        return self.text


def _controller(meta: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in meta.get("ownerReferences") or [] if r.get("controller")]


def audit_problems(bed: Bed, ns: str, rollouts: bool = False, settled: bool = True
                   ) -> tuple[list[Problem], int]:
    """Problems with the children of the namespace's pools and apps, and how many objects
    were looked at. Exactly the rendered set per parent (no duplicates, nothing missing),
    every child owned by exactly one live parent (no orphans), every ReplicaSet owned by a
    live Deployment. Without `rollouts`, one ReplicaSet per Deployment (no rollout the
    faults caused: the tests change no pod template); with it, one ReplicaSet with replicas
    per Deployment and as many hosts as replicas, each owned by a live ReplicaSet (call it
    once the rollouts are over). Not `settled` (rollouts may be under way, their outdated
    hosts draining): a pool may run a Deployment per revision, and the ReplicaSets and
    hosts are not counted, only their owners checked."""
    owners = {o["metadata"]["uid"]: o for o in parents(bed, ns)}
    kids = bed.list(CHILD_KINDS, ns, MANAGED)
    problems: list[Problem] = []
    per_owner: dict[str, Counter[str]] = {uid: Counter() for uid, o in owners.items()
                                          if o["kind"] != "AccessPolicy"}
    catalogs = 0
    for kid in kids:
        meta = kid["metadata"]
        what = f"{kid['kind']}/{meta['name']}"
        if meta.get("deletionTimestamp"):
            problems.append(Problem("other", f"{what} is being deleted"))
            continue
        if meta["name"] == CATALOG:
            catalogs += 1
            continue
        refs = _controller(meta)
        if len(refs) != 1:
            problems.append(Problem("orphan" if not refs else "duplicate",
                                    f"{what} has {len(refs)} controller references"))
        elif refs[0]["uid"] not in owners:
            problems.append(Problem("orphan", f"{what} is an orphan: its owner "
                                    f"{refs[0]['kind']}/{refs[0]['name']} ({refs[0]['uid']}) "
                                    "is gone"))
        else:
            owner = owners[refs[0]["uid"]]
            per_owner[refs[0]["uid"]][kid["kind"]] += 1
            if meta["labels"].get("deskfleet.io/owner-name") != owner["metadata"]["name"]:
                problems.append(Problem("other", f"{what}'s labels name another owner"))
    for uid, kinds in per_owner.items():
        owner = owners[uid]
        name = f"{owner['kind']}/{owner['metadata']['name']}"
        agent = ((owner.get("spec") or {}).get("agent") or {}).get("enabled", True)
        expected = POOL_CHILD_KINDS if agent else POOL_CHILD_KINDS - AGENT_KINDS
        if not settled and kinds["Deployment"] > 1:  # outdated revisions still there
            kinds = Counter({**kinds, "Deployment": 1})
        if owner["kind"] == "SessionHostPool" and kinds != expected:
            extra = any(kinds[k] > expected[k] for k in kinds)
            problems.append(Problem("duplicate" if extra else "missing",
                                    f"{name} has children {dict(kinds)}"))
        if owner["kind"] == "PublishedApp" and (sum(kinds.values()) != 1 or
                                                not set(kinds) <= ROUTE_KINDS):
            problems.append(Problem("duplicate" if sum(kinds.values()) > 1 else "missing",
                                    f"{name} has children {dict(kinds)}"))
    if any(o["kind"] == "PublishedApp" for o in owners.values()) and catalogs != 1:
        problems.append(Problem("duplicate" if catalogs > 1 else "missing",
                                f"{catalogs} catalogs"))
    deployments = {d["metadata"]["uid"]: d for d in bed.list("deployments", ns)}
    replicasets = [rs for rs in bed.list("replicasets", ns)
                   if not rs["metadata"].get("deletionTimestamp")]
    owned: Counter[str] = Counter()
    live: Counter[str] = Counter()
    for rs in replicasets:
        refs = _controller(rs["metadata"])
        if not refs or refs[0]["uid"] not in deployments:
            problems.append(Problem("orphan", f"ReplicaSet/{rs['metadata']['name']} has no "
                                    "live Deployment"))
            continue
        owned[refs[0]["name"]] += 1
        live[refs[0]["name"]] += bool((rs.get("spec") or {}).get("replicas"))
    checked = len(kids) + len(owners) + len(replicasets)
    if not settled:
        return problems, checked
    if not rollouts:
        for name, count in owned.items():
            if count != 1:
                problems.append(Problem("duplicate", f"Deployment/{name} has {count} "
                                        "ReplicaSets (an unwanted rollout)"))
        return problems, checked
    for name, count in live.items():
        if count > 1:
            problems.append(Problem("duplicate", f"Deployment/{name} has {count} "
                                    "ReplicaSets with replicas (a rollout not over)"))
    rs_uids = {rs["metadata"]["uid"] for rs in replicasets}
    # A pool runs one Deployment per revision (`<pool>-<revision>`): hosts count towards
    # the Deployment of their pool and revision label.
    hosts: Counter[tuple[str, str]] = Counter()
    for pod in bed.list("pods", ns, POOL_LABEL):
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        refs = _controller(meta)
        if not refs or refs[0]["uid"] not in rs_uids:
            problems.append(Problem("orphan", f"Pod/{meta['name']} has no live ReplicaSet"))
        hosts[meta["labels"][POOL_LABEL], meta["labels"].get(REVISION_LABEL, "")] += 1
    checked += sum(hosts.values())
    for deploy in deployments.values():
        name = deploy["metadata"]["name"]
        labels = deploy["metadata"].get("labels") or {}
        key = (labels.get(POOL_LABEL, name), labels.get(REVISION_LABEL, ""))
        want = int((deploy.get("spec") or {}).get("replicas") or 0)
        if hosts[key] != want:
            problems.append(Problem("duplicate" if hosts[key] > want else "missing",
                                    f"Deployment/{name} wants {want} hosts, "
                                    f"{hosts[key]} run"))
    return problems, checked


def audit(bed: Bed, ns: str, rollouts: bool = False) -> tuple[list[str], int]:
    problems, checked = audit_problems(bed, ns, rollouts)
    return [p.text for p in problems], checked


def assert_clean(bed: Bed, ns: str, timeout: float = 60, rollouts: bool = False) -> int:
    """Wait until the audit finds nothing (the garbage collector may still be at work);
    returns the number of objects checked."""
    last: tuple[list[str], int] = ([], 0)

    def clean() -> bool:
        nonlocal last
        last = audit(bed, ns, rollouts)
        return not last[0]

    try:
        wait_until(clean, timeout=timeout, interval=0.5, what="a clean audit")
    except AssertionError:
        raise AssertionError("children audit:\n  " + "\n  ".join(last[0])) from None
    return last[1]
