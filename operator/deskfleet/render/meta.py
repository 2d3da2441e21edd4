"""Metadata every child carries: names, labels, owner references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..api.common import API_VERSION, Model

SpecT = TypeVar("SpecT", bound=Model)

MANAGED_BY = {"app.kubernetes.io/managed-by": "deskfleet"}
POOL_LABEL = "deskfleet.io/pool"
APP_LABEL = "deskfleet.io/app"
ACCEPTING_LABEL = "deskfleet.io/accepting"  # hosts with free slots that are not draining
BUSY_LABEL = "deskfleet.io/busy"  # hosts with sessions: the PDB protects exactly these
OWNER_KIND_LABEL = "deskfleet.io/owner-kind"
OWNER_NAME_LABEL = "deskfleet.io/owner-name"


@dataclass(frozen=True)
class Resource(Generic[SpecT]):
    """A deskfleet object reduced to what rendering needs."""

    kind: str
    name: str
    namespace: str
    uid: str
    spec: SpecT
    generation: int = 1
    labels: dict[str, str] = field(default_factory=dict)

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def child_labels(self, **extra: str) -> dict[str, str]:
        return {
            **MANAGED_BY,
            OWNER_KIND_LABEL: self.kind.lower(),
            OWNER_NAME_LABEL: self.name,
            **extra,
        }

    def child_metadata(self, name: str, **labels: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": self.child_labels(**labels),
            "ownerReferences": [self.owner_reference()],
        }


def without_none(obj: Any) -> Any:
    """Drop None values and empty containers that would only say 'unset'."""
    if isinstance(obj, dict):
        cleaned = {k: without_none(v) for k, v in obj.items() if v is not None}
        return {k: v for k, v in cleaned.items() if v != {} and v != []}
    if isinstance(obj, list):
        return [without_none(v) for v in obj]
    return obj
