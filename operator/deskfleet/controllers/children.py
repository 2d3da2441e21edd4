"""Make an owner's children exactly the desired list: apply what differs, delete what is
no longer wanted. Unchanged children cost no request at all.

Server-side apply only ever sets the fields deskfleet sets: what another writer added
to a list deskfleet renders whole stays. A `kubectl edit` of a Service's port, say,
leaves the edited item owned by kubectl; the apply then adds deskfleet's item next to
it, which the API server refuses (two ports named `session`); an extra port added
with another field manager is kept however often deskfleet applies. Either way the
apply cannot converge, so the child is replaced field by field with a JSON merge patch
(lists replaced whole; `replicas`, which the render never sets, untouched).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..api.kinds import BY_KIND as API_KINDS
from ..kube.client import Kube, KubeError
from ..kube.compare import needs_apply
from ..kube.resources import type_of
from .process import Gone

log = logging.getLogger(__name__)


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return (obj["kind"], obj["metadata"]["name"])


@dataclass
class SyncResult:
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    owner_gone: bool = False  # the owner no longer exists: nothing was written


def describe_error(manifest: dict[str, Any], err: KubeError) -> str:
    kind = manifest["kind"]
    if err.status == 404 and kind == "HTTPRoute":
        return ("HTTPRoute is not served by this cluster: install the Gateway API CRDs, "
                "or remove spec.gateway.parentRef to use an Ingress")
    return f"{kind} {manifest['metadata']['name']}: {err}"


def _apply(kube: Kube, manifest: dict[str, Any]) -> None:
    refused: KubeError | None = None
    try:
        applied = kube.apply(manifest)
        if applied["metadata"].get("deletionTimestamp") or not needs_apply(manifest, applied):
            return
    except KubeError as err:
        if err.status != 422:
            raise
        refused = err  # invalid once merged with another writer's fields
    meta = manifest["metadata"]
    log.info("apply cannot undo another writer's change; replacing the fields",
             extra={"child": "/".join(_key(manifest))})
    patch = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    patch["metadata"] = {k: meta[k] for k in ("labels", "annotations") if k in meta}
    try:
        kube.merge_patch(type_of(manifest), meta["namespace"], meta["name"], patch)
    except KubeError:
        if refused:  # the render itself is refused: report that, not the fallback
            raise refused from None
        raise


def _owner_gone(kube: Kube, owner: dict[str, Any]) -> bool:
    meta = owner["metadata"]
    found = kube.get(API_KINDS[owner["kind"]].resource, meta["namespace"],
                     meta["name"])
    return found is None or found["metadata"].get("uid") != meta.get("uid")


def sync_children(kube: Kube, desired: list[dict[str, Any]], live: list[dict[str, Any]],
                  owner: dict[str, Any] | None = None, gone: Gone | None = None
                  ) -> SyncResult:
    """`owner`: before re-creating a missing child of an owner reconciled before, check
    the owner still exists. A watch can miss a deletion (Kopf re-lists after a 410 Gone
    without reporting what went meanwhile): re-creating the child of a deleted owner
    feeds the garbage collector, which deletes it again, in a loop. An owner found gone
    is added to `gone` (ProcessState.gone), so the workers skip its cached body."""
    result = SyncResult()
    live_by_key = {_key(c): c for c in live}
    if (owner is not None and (owner.get("status") or {}).get("observedGeneration")
            and any(_key(m) not in live_by_key for m in desired)
            and _owner_gone(kube, owner)):
        if gone is not None:
            gone.add(owner["metadata"].get("uid", ""))
        result.owner_gone = True
        return result
    for manifest in desired:
        if not needs_apply(manifest, live_by_key.get(_key(manifest))):
            continue
        try:
            _apply(kube, manifest)
            result.applied.append("/".join(_key(manifest)))
        except KubeError as err:
            result.errors.append(describe_error(manifest, err))
    wanted = {_key(m) for m in desired}
    for key, child in live_by_key.items():
        if key in wanted or child["metadata"].get("deletionTimestamp"):
            continue
        meta = child["metadata"]
        try:
            if kube.delete(type_of(child), meta["namespace"], meta["name"], meta.get("uid")):
                result.deleted.append("/".join(key))
        except KubeError as err:
            result.errors.append(f"deleting {'/'.join(key)}: {err}")
    if result.applied or result.deleted:
        log.info("children synced", extra={"applied": result.applied,
                                           "deleted": result.deleted})
    return result
