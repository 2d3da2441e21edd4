"""Status conditions in the Kubernetes API conventions' shape. Pure functions.

`lastTransitionTime` changes only when a condition's status does, so recomputing the
same conditions from the same facts yields the same status, and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .clock import format_time, real_now


@dataclass(frozen=True)
class Cond:
    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str = ""

    @property
    def status_text(self) -> str:
        return {True: "True", False: "False", None: "Unknown"}[self.status]


def now_rfc3339() -> str:
    return format_time(real_now())


def true_condition(conditions: list[dict[str, Any]] | None, type_: str = "Ready"
                   ) -> dict[str, Any] | None:
    """The condition `type_` of a written status (or a pod's), if it is True."""
    return next((c for c in conditions or []
                 if c.get("type") == type_ and c.get("status") == "True"), None)


def is_true(conditions: list[dict[str, Any]] | None, type_: str = "Ready") -> bool:
    return true_condition(conditions, type_) is not None


def merge_conditions(previous: list[dict[str, Any]] | None, new: list[Cond],
                     generation: int, now: str) -> list[dict[str, Any]]:
    old = {c.get("type"): c for c in previous or []}
    out = []
    for cond in new:
        before = old.get(cond.type) or {}
        changed = before.get("status") != cond.status_text
        out.append({
            "type": cond.type,
            "status": cond.status_text,
            "reason": cond.reason,
            "message": cond.message,
            "observedGeneration": generation,
            "lastTransitionTime": now if changed else before.get("lastTransitionTime") or now,
        })
    return out


def status_differs(current: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    """Whether writing `desired` would change anything in `current`."""
    current = current or {}
    return any(current.get(k) != v for k, v in desired.items())
