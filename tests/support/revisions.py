"""A pool's hosts run as one Deployment per revision (`<pool>-<revision>`, labelled
`deskfleet.io/pool` and `deskfleet.io/revision`): how tests find them on the bed."""

from __future__ import annotations

from typing import Any

POOL_LABEL = "deskfleet.io/pool"
REVISION_LABEL = "deskfleet.io/revision"


def host_deployments(bed: Any, namespace: str, pool: str) -> list[dict[str, Any]]:
    """The pool's Deployments not being deleted, oldest first."""
    found = [d for d in bed.list("deployments", namespace, f"{POOL_LABEL}={pool}")
             if not d["metadata"].get("deletionTimestamp")]
    return sorted(found, key=lambda d: d["metadata"]["creationTimestamp"])


def current_deployment(bed: Any, namespace: str, pool: str) -> dict[str, Any] | None:
    """The Deployment of the revision the pool's status names current, else the newest."""
    deployments = host_deployments(bed, namespace, pool)
    status = (bed.get("shp", pool, namespace) or {}).get("status") or {}
    named = [d for d in deployments
             if d["metadata"]["labels"].get(REVISION_LABEL) == status.get("revision")]
    return (named or deployments or [None])[-1]


def current_replicas(bed: Any, namespace: str, pool: str) -> int:
    deployment = current_deployment(bed, namespace, pool) or {}
    return int((deployment.get("spec") or {}).get("replicas") or 0)
