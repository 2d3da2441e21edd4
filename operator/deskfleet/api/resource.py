"""A deskfleet object reduced to what the pure core needs: its kind, name, namespace,
uid, validated spec, generation and labels. It lives with the API types so that every
layer above (policy, render, scaling, controllers) can use it without importing another
sibling layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..labels import MANAGED_BY, OWNER_KIND_LABEL, OWNER_NAME_LABEL
from .common import API_VERSION, Model

SpecT = TypeVar("SpecT", bound=Model)


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
