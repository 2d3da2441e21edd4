"""Write an object's status only when it changed, and tell people about transitions."""

from __future__ import annotations

from typing import Any

from ..api.kinds import BY_KIND as API_KINDS
from ..api.parse import InvalidSpec
from ..conditions import Cond, merge_conditions, now_rfc3339, status_differs
from ..kube.client import Kube, KubeError
from .events import EventRecorder, post_event
from .process import ProcessState


def status_document(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` checked against the kind's status model (api/*Status, which generates the
    CRD) and serialised by it, camelCase: a misspelt or mistyped field fails the pass
    loudly instead of being pruned by the API server. A field set to None stays None: in
    a merge patch it removes what was written before."""
    model = API_KINDS[kind].status.model_validate(fields)
    document: dict[str, Any] = model.model_dump(by_alias=True, exclude_unset=True,
                                                mode="json")
    return document


def write_status(kube: Kube, body: dict[str, Any], fields: dict[str, Any],
                 conditions: list[Cond], process: ProcessState | None = None) -> bool:
    """Merge-patch `.status` when it differs from what is stored; True if written.
    `process`: an object found deleted joins its `gone` (ProcessState.gone), and Events
    go through its recorder; without one, Events are posted at once."""
    meta = body["metadata"]
    current = body.get("status") or {}
    generation = meta.get("generation", 1)
    desired = status_document(body["kind"], {
        **fields,
        "observedGeneration": generation,
        "conditions": merge_conditions(current.get("conditions"), conditions, generation,
                                       now_rfc3339()),
    })
    if not status_differs(current, desired):
        return False
    rtype = API_KINDS[body["kind"]].resource
    try:
        # fieldValidation=Strict: the API server refuses an unknown field too.
        kube.merge_patch(rtype, meta["namespace"], meta["name"], {"status": desired},
                         subresource="status", strict=True)
    except KubeError as err:
        if err.not_found:  # deleted meanwhile: nothing left to report on
            if process is not None:
                process.gone.add(meta.get("uid", ""))
            return False
        raise
    _announce(kube, body, current.get("conditions") or [], conditions,
              process.events if process is not None else None)
    return True


def write_invalid(kube: Kube, body: dict[str, Any], err: InvalidSpec,
                  fields: dict[str, Any] | None = None,
                  process: ProcessState | None = None) -> bool:
    """The status of an object whose spec cannot be used: not Ready and Degraded, both
    with reason InvalidSpec, naming every field at fault; `fields` add kind-specific
    status (a pool keeps what it last observed of its hosts)."""
    return write_status(kube, body, fields or {}, [
        Cond("Ready", False, "InvalidSpec", str(err)),
        Cond("Degraded", True, "InvalidSpec", "; ".join(err.problems))], process)


def _announce(kube: Kube, body: dict[str, Any], before: list[dict[str, Any]],
              after: list[Cond], events: EventRecorder | None) -> None:
    old = {c.get("type"): c for c in before}
    for cond in after:
        if cond.type != "Ready":
            continue
        prev = old.get("Ready")
        if prev and prev.get("reason") == cond.reason and prev.get("status") == cond.status_text:
            continue
        kind = "Normal" if cond.status else "Warning"
        post_event(kube, body, kind, cond.reason, cond.message, events)
