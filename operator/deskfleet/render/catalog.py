"""The per-namespace catalog ConfigMap a landing page reads.

Shape (`catalog.json`), stable for portals to build on:

    {"apiVersion": "deskfleet.io/catalog-v1",
     "categories": ["Clinical", ...],              # sorted
     "apps": [{name, displayName, description, category, url, pool, protocol, ready,
               launch, allowedGroups, allowedUsers, requireMFA, icon?}, ...]}

Apps are sorted by category, then display name, then name, so the ConfigMap only
changes when an app does. The catalog has no owner reference: it belongs to every app
of the namespace at once, and the operator deletes it when the last app goes.

A ConfigMap holds at most 1 MiB. A catalog that does not fit as readable JSON (a few
thousand apps, or apps open to many groups) is stored gzip-compressed under the
`binaryData` key `catalog.json.gz` instead, as Helm stores large releases; exactly one
of the two keys is present, and `read_catalog` reads either.
"""

from __future__ import annotations

import base64
import gzip
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
        **_encode(namespace, document),
    }


# The API server refuses a ConfigMap whose data exceed 1 MiB; this leaves room for the
# metadata and for the apply's own overhead.
MAX_CATALOG_BYTES = 900 * 1024


class CatalogTooLarge(ValueError):
    pass


def _encode(namespace: str, document: dict[str, Any]) -> dict[str, Any]:
    compact = json.dumps(document, separators=(",", ":"), sort_keys=True)
    if len(compact) <= MAX_CATALOG_BYTES // 2:  # cheap test first: indenting is dear
        readable = json.dumps(document, indent=2, sort_keys=True)
        if len(readable.encode()) <= MAX_CATALOG_BYTES:
            return {"data": {"catalog.json": readable}}
    # mtime=0: the same catalog compresses to the same bytes, so a pass over unchanged
    # apps finds nothing to apply.
    packed = gzip.compress(compact.encode(), mtime=0)
    if len(packed) > MAX_CATALOG_BYTES:
        raise CatalogTooLarge(
            f"the catalog of namespace {namespace} ({len(document['apps'])} apps) takes "
            f"{len(packed)} bytes even compressed, over the {MAX_CATALOG_BYTES} a ConfigMap "
            f"can hold; split the apps across namespaces")
    return {"binaryData": {"catalog.json.gz": base64.b64encode(packed).decode()}}


def read_catalog(configmap: dict[str, Any]) -> dict[str, Any]:
    """The catalog document of a catalog ConfigMap, in whichever form it is stored."""
    packed = (configmap.get("binaryData") or {}).get("catalog.json.gz")
    if packed is not None:
        return dict(json.loads(gzip.decompress(base64.b64decode(packed))))
    return dict(json.loads((configmap.get("data") or {})["catalog.json"]))
