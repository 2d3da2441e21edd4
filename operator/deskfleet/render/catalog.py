"""The per-namespace catalog ConfigMap a landing page reads.

Shape (`catalog.json`), stable for portals to build on:

    {"apiVersion": "deskfleet.io/catalog-v1",
     "categories": ["Clinical", ...],              # sorted
     "apps": [{name, displayName, description, category, url, pool, protocol, ready,
               launch, allowedGroups, allowedUsers, requireMFA, icon?}, ...]}

Apps are sorted by category, then display name, then name, so the ConfigMap only
changes when an app does. The catalog has no owner reference: it belongs to every app
of the namespace at once, and the operator deletes it when the last app goes.

A catalog that does not fit a ConfigMap as readable JSON (a few thousand apps, or apps
open to many groups) is stored gzip-compressed under `binaryData` `catalog.json.gz`
instead (see `configdata`); `read_catalog` reads either.
"""

from __future__ import annotations

from typing import Any

from .configdata import encode_document, read_document
from .meta import MANAGED_BY

CATALOG_API_VERSION = "deskfleet.io/catalog-v1"
CATALOG_COMPONENT = {"app.kubernetes.io/component": "catalog"}
CATALOG_KEY = "catalog.json"


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
        **encode_document(
            CATALOG_KEY, document, f"the catalog of namespace {namespace} ({len(apps)} apps)",
            "split the apps across namespaces"),
    }


def read_catalog(configmap: dict[str, Any]) -> dict[str, Any]:
    """The catalog document of a catalog ConfigMap, in whichever form it is stored."""
    return dict(read_document(configmap, CATALOG_KEY))
