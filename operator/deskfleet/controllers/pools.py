"""Reconcile a SessionHostPool: render its children, apply what differs, report status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api.parse import InvalidSpec, parse
from ..conditions import Cond
from ..kube.client import Kube
from ..render.pool import build_pool_children, host_selector
from ..settings import Settings
from .children import sync_children
from .status import write_status


@dataclass(frozen=True)
class PoolSnapshot:
    body: dict[str, Any]
    children: list[dict[str, Any]]
    pods: list[dict[str, Any]] = field(default_factory=list)


def _deployment(children: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((c for c in children if c["kind"] == "Deployment"), None)


def pool_is_ready(children: list[dict[str, Any]]) -> bool:
    """A pool can take sessions when its Deployment has at least one ready host."""
    deployment = _deployment(children)
    return bool(deployment and (deployment.get("status") or {}).get("readyReplicas", 0) > 0)


def host_counts(children: list[dict[str, Any]]) -> tuple[int, int]:
    deployment = _deployment(children) or {}
    desired = (deployment.get("spec") or {}).get("replicas", 0)
    ready = (deployment.get("status") or {}).get("readyReplicas", 0)
    return int(desired or 0), int(ready or 0)


def reconcile_pool(kube: Kube, settings: Settings, snap: PoolSnapshot) -> list[str]:
    """Returns the errors that should make the pass retry (empty when converged)."""
    body = snap.body
    try:
        pool = parse(body)
    except InvalidSpec as err:
        # Keep what runs: an invalid edit must not take clinicians' hosts away.
        write_status(kube, body, {}, [
            Cond("Ready", False, "InvalidSpec", str(err)),
            Cond("Degraded", True, "InvalidSpec", "; ".join(err.problems)),
        ])
        return []

    result = sync_children(kube, build_pool_children(pool, settings), snap.children)
    desired, ready = host_counts(snap.children)
    fields: dict[str, Any] = {
        "desiredHosts": desired,
        "readyHosts": ready,
        "hosts": f"{ready}/{desired}",
        "selector": ",".join(f"{k}={v}" for k, v in host_selector(pool.name).items()),
    }
    if result.errors:
        conds = [Cond("Ready", False, "ApplyFailed", "; ".join(result.errors)),
                 Cond("Progressing", False, "ApplyFailed", ""),
                 Cond("Degraded", True, "ApplyFailed", "; ".join(result.errors))]
    elif result.applied:
        conds = [Cond("Ready", ready > 0, "HostsReady" if ready else "Reconciling",
                      f"{ready} of {desired} hosts ready"),
                 Cond("Progressing", True, "ChildrenUpdated", ", ".join(result.applied)),
                 Cond("Degraded", False, "AsExpected", "")]
    else:
        conds = [Cond("Ready", ready > 0, "HostsReady" if ready else "NoHostsReady",
                      f"{ready} of {desired} hosts ready"),
                 Cond("Progressing", ready < desired,
                      "HostsStarting" if ready < desired else "Stable",
                      f"{desired - ready} hosts starting" if ready < desired else ""),
                 Cond("Degraded", False, "AsExpected", "")]
    write_status(kube, body, fields, conds)
    return result.errors
