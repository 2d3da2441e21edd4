"""Metadata every child carries: names, labels, owner references."""

from __future__ import annotations

from typing import Any

from ..api.resource import Resource
from ..labels import (
    ACCEPTING_LABEL,
    APP_LABEL,
    BUSY_LABEL,
    MANAGED_BY,
    OWNER_KIND_LABEL,
    OWNER_NAME_LABEL,
    POOL_LABEL,
)

# Kept importable from here too: the render modules' imports read naturally.
__all__ = ["ACCEPTING_LABEL", "APP_LABEL", "BUSY_LABEL", "MANAGED_BY", "OWNER_KIND_LABEL",
           "OWNER_NAME_LABEL", "POOL_LABEL", "Resource", "without_none"]


def without_none(obj: Any) -> Any:
    """Drop None values and empty containers that would only say 'unset'."""
    if isinstance(obj, dict):
        cleaned = {k: without_none(v) for k, v in obj.items() if v is not None}
        return {k: v for k, v in cleaned.items() if v != {} and v != []}
    if isinstance(obj, list):
        return [without_none(v) for v in obj]
    return obj
