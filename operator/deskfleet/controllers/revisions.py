"""A pool's Deployments, one per revision, and what a pass does with them. Pure.

The render produces one Deployment: the spec's revision (render/revision.py). The live
pool may have more — the revisions whose hosts still hold sessions — and they are not
the render's to delete: the scaling core decides how many hosts each keeps, and which
may go once empty (`Decision.retired`). So the generic child sync (children.py) sees
only the current revision's Deployment; the others are left to the scaling shell.

Held (`update.paused`, or autoscaling paused), the current revision stays what it was
and the spec's Deployment is not created until the hold ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..clock import parse_time
from ..labels import POOL_LABEL
from ..render.pool import Pool
from ..render.revision import deployment_name, revision_label
from ..scaling.rollout import current_revision


@dataclass(frozen=True)
class Fleet:
    """The pool's revisions as this pass sees them."""

    current: str  # the revision new hosts run
    wanted: str  # the spec's revision (differs from `current` only while held)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # live, by revision

    @property
    def current_deployment(self) -> dict[str, Any] | None:
        return self.deployments.get(self.current)

    @property
    def pending(self) -> str | None:
        """A revision the hold keeps back."""
        return self.wanted if self.wanted != self.current else None


def is_host_deployment(child: dict[str, Any], pool: str) -> bool:
    labels = child["metadata"].get("labels") or {}
    return child["kind"] == "Deployment" and labels.get(POOL_LABEL) == pool


def plan_fleet(pool: Pool, rendered: list[dict[str, Any]], live: list[dict[str, Any]],
               recorded: str | None) -> tuple[Fleet, list[dict[str, Any]],
                                              list[dict[str, Any]]]:
    """The fleet, and the desired and live children the generic sync should compare."""
    wanted_deployment = next(c for c in rendered if is_host_deployment(c, pool.name))
    wanted = revision_label(wanted_deployment)
    deployments = {revision_label(c): c for c in live if is_host_deployment(c, pool.name)
                   and not c["metadata"].get("deletionTimestamp")}
    created = {r: parse_time(d["metadata"].get("creationTimestamp"))
               or datetime.min.replace(tzinfo=UTC) for r, d in deployments.items()}
    held = pool.spec.update.paused or pool.spec.scaling.paused
    current = current_revision(wanted, created, held, recorded)
    fleet = Fleet(current, wanted, deployments)
    # Held, the spec's Deployment is neither created nor compared; the current one is
    # kept as it is (its template must not change).
    name = deployment_name(pool.name, wanted) if current == wanted else None
    desired = [c for c in rendered if not is_host_deployment(c, pool.name)
               or c["metadata"]["name"] == name]
    synced = [c for c in live if not is_host_deployment(c, pool.name)
              or c["metadata"]["name"] == name]
    return fleet, desired, synced


def host_counts(fleet: Fleet) -> tuple[int, int]:
    """Hosts the pool's Deployments ask for, and those ready, over every revision."""
    desired = ready = 0
    for deployment in fleet.deployments.values():
        desired += int((deployment.get("spec") or {}).get("replicas") or 0)
        ready += int((deployment.get("status") or {}).get("readyReplicas") or 0)
    return desired, ready
