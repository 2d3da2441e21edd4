"""The per-namespace catalog ConfigMap a landing page reads.

Shape (`catalog.json`), stable for portals to build on:

    {"apiVersion": "deskfleet.io/catalog-v1",
     "categories": ["Clinical", ...],              # sorted
     "apps": [{name, displayName, description, category, url, pool, protocol, ready,
               launch, allowedGroups, allowedUsers, requireMFA, icon?}, ...]}

Apps are sorted by category, then display name, then name, so the ConfigMap only
changes when an app does. The catalog has no owner reference: it belongs to every app
of the namespace at once, and the operator deletes it when the last app goes.
"""

from __future__ import annotations

import json
from typing import Any

from .meta import MANAGED_BY

CATALOG_API_VERSION = "deskfleet.io/catalog-v1"
CATALOG_COMPONENT = {"app.kubernetes.io/component": "catalog"}


def build_catalog(namespace: str, name: str, entries: list[dict[str, Any]]
                  ) -> dict[str, Any] | None:
    if not entries:
        return None
    apps = sorted(entries, key=lambda e: (e["category"], e["displayName"], e["name"]))
    document = {
        "apiVersion": CATALOG_API_VERSION,
        "categories": sorted({e["category"] for e in apps}),
        "apps": apps,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**MANAGED_BY, **CATALOG_COMPONENT}},
        "data": {"catalog.json": json.dumps(document, indent=2, sort_keys=True)},
    }
