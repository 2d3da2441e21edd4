"""The operator's view of the cluster: Kopf indexes filled from its watch streams.

Kopf fills every index before it runs any other handler, so the first reconcile already
sees all children and pods: a pass never mistakes "not loaded yet" for "missing".

Indexes are mutated on the event loop; reconciles run in threads. So a worker takes a
`Snapshot` (shallow copies of the entries it needs) on the loop, and the thread only
ever reads the snapshot.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from ..kube.compare import Digest, ValueDigest
from ..render.meta import OWNER_KIND_LABEL, OWNER_NAME_LABEL, POOL_LABEL

# Index names: Kopf injects each index into handlers as a kwarg named after its handler id.
OBJECTS_PREFIX = "objects_"  # one per watched deskfleet kind: objects_publishedapps, ...
CHILDREN_PREFIX = "children_"  # one per child kind: children_deployments, ...
PODS = "pods_index"
CATALOGS = "catalogs_index"
# The app controller's further indexes (apps.py), which a pool's and an app's passes read.
APPS_BY_POOL = "apps_by_pool_index"  # (namespace, pool) -> the names of its apps
ROUTES = "app_routes_index"  # (host, path) -> the apps claiming it (render/route_claims)

# creationTimestamp: which of a held pool's revisions is the newest (revisions.py).
CHILD_META = ("name", "namespace", "uid", "resourceVersion", "labels", "annotations",
               "ownerReferences", "deletionTimestamp", "generation", "creationTimestamp")


def objects_index(plural: str) -> str:
    return f"{OBJECTS_PREFIX}{plural}"


INTERNED_MAX = 64  # longer strings (messages, documents) rarely repeat across objects


def interned(value: Any) -> Any:
    """A deep copy whose keys and short strings are the interpreter's shared copies.
    JSON decoding makes each body's keys ("apiVersion", "matchLabels", ...) and values
    ("True", "Ready", label values) anew; shared, they halve what a cached body holds
    (6.8 to 3.5 KB per rendered child, measured) for some 35 us per body."""
    if isinstance(value, dict):
        return {sys.intern(k) if isinstance(k, str) else k: interned(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [interned(v) for v in value]
    if isinstance(value, str) and len(value) <= INTERNED_MAX:
        return sys.intern(value)
    return value


def slim(body: Mapping[str, Any], meta_keys: Iterable[str] = CHILD_META,
         compared_status: Iterable[str] = ()) -> dict[str, Any]:
    """A plain-dict copy without managedFields (often the largest part of an object),
    of a ConfigMap's documents only their digests (kube/compare.Digest): a pool's host
    config and a namespace's catalog run to a megabyte each, and a pass only ever asks
    whether the live documents are the ones it rendered; and of the status fields in
    `compared_status`, which a pass only compares with what it would write, their
    digests (kube/compare.ValueDigest). Strings are `interned`: tens of thousands of
    bodies are held."""
    meta = body.get("metadata", {})
    out = digested({k: v for k, v in body.items() if k != "metadata"})
    out["metadata"] = {k: meta[k] for k in meta_keys if k in meta}
    compared = set(compared_status)
    if compared and isinstance(out.get("status"), dict):
        out["status"] = {k: ValueDigest.of(v) if k in compared else v
                         for k, v in out["status"].items()}
    result: dict[str, Any] = interned(out)
    return result


def digested(body: dict[str, Any]) -> dict[str, Any]:
    """`body`, and if it is a ConfigMap, with each document replaced by its Digest."""
    if body.get("kind") != "ConfigMap":
        return body
    out = dict(body)
    for part in ("data", "binaryData"):
        if isinstance(out.get(part), dict):
            out[part] = {k: Digest.of(v) if isinstance(v, str) else v
                         for k, v in out[part].items()}
    return out


@dataclass(frozen=True)
class Further:
    """A key of a further index, held in its kind's one Kopf index beside the objects:
    Kopf runs each index handler on each event through its whole invocation machinery
    (a third of the interpreter at 10,000 apps, py-spy), so a kind has one."""

    index: str  # e.g. APPS_BY_POOL
    key: Any


def object_entries(namespace: str, name: str, value: dict[str, Any],
                   further: Mapping[str, Mapping[Any, Any]] | None = None
                   ) -> dict[Any, Any]:
    """An object's entries in its kind's index: by (namespace, name) for a pass on it,
    by namespace for a pass over all of them (the same value, held once), and under
    each further index's keys (`further`: index name -> {key: value})."""
    entries: dict[Any, Any] = {(namespace, name): value, namespace: value}
    for index, values in (further or {}).items():
        entries.update({Further(index, key): v for key, v in values.items()})
    return entries


def child_key(body: Mapping[str, Any]) -> tuple[str, str, str] | None:
    labels = body.get("metadata", {}).get("labels") or {}
    kind, name = labels.get(OWNER_KIND_LABEL), labels.get(OWNER_NAME_LABEL)
    if not kind or not name:
        return None
    return (body["metadata"]["namespace"], kind, name)


def pod_key(body: Mapping[str, Any]) -> tuple[str, str] | None:
    pool = (body.get("metadata", {}).get("labels") or {}).get(POOL_LABEL)
    return (body["metadata"]["namespace"], pool) if pool else None


@dataclass
class Cache:
    """The live Kopf indexes, bound on the first handler call."""

    indexes: dict[str, Any] = field(default_factory=dict)
    child_indexes: list[Any] = field(default_factory=list)
    plurals: dict[str, str] = field(default_factory=dict)  # watched kind -> its plural
    further: dict[str, str] = field(default_factory=dict)  # further index -> Kopf index

    @property
    def bound(self) -> bool:
        return bool(self.indexes)

    def bind(self, kwargs: Mapping[str, Any]) -> None:
        if not self.indexes:
            self.indexes = {k: v for k, v in kwargs.items() if isinstance(v, kopf.Index)}
            self.child_indexes = [v for k, v in self.indexes.items()
                                  if k.startswith(CHILDREN_PREFIX)]

    def watch(self, kind: str, plural: str, further: Iterable[str] = ()) -> None:
        """Declare a watched kind and its further indexes (handlers.py, from the
        registry, before Kopf starts)."""
        self.plurals[kind] = plural
        self.further.update({index: objects_index(plural) for index in further})

    def _objects(self, kind: str) -> Any:
        return self.indexes[objects_index(self.plurals[kind])]

    def _one(self, index: str, key: Any) -> dict[str, Any] | None:
        store = self.indexes[index].get(key)
        if not store:
            return None
        return next(iter(store), None)

    def lookup(self, index: str, key: Any) -> list[Any]:
        """Every value under `key` in the index named `index`."""
        if index in self.further:
            return list(self.indexes[self.further[index]].get(Further(index, key), ()))
        return list(self.indexes[index].get(key, ()))

    # -- reads, on the event loop only ------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._one(objects_index(self.plurals[kind]), (namespace, name))

    def in_namespace(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        return list(self._objects(kind).get(namespace, ()))

    def namespaces_with(self, kind: str, name: str) -> tuple[str, ...]:
        """Every namespace with an object of this kind and name (for a reference that
        does not resolve in its own)."""
        return tuple(sorted(key[0] for key, store in list(self._objects(kind).items())
                            if isinstance(key, tuple) and key[1] == name and store))

    def children(self, namespace: str, owner_kind: str, owner: str) -> list[dict[str, Any]]:
        key = (namespace, owner_kind.lower(), owner)
        return [child for index in self.child_indexes for child in index.get(key, ())]

    def pods(self, namespace: str, pool: str) -> list[dict[str, Any]]:
        return self.lookup(PODS, (namespace, pool))

    def catalog(self, namespace: str) -> dict[str, Any] | None:
        return self._one(CATALOGS, namespace)

    def keys_of(self, kind: str, namespace: str | None = None) -> list[tuple[str, str, str]]:
        """The keys of every object of a watched kind (in one namespace, if given)."""
        return [(kind, key[0], key[1]) for key, store in list(self._objects(kind).items())
                if isinstance(key, tuple) and store
                and (namespace is None or key[0] == namespace)]

    def namespaces(self) -> list[str]:
        """Every namespace holding an object of a watched kind."""
        return sorted({key for kind in self.plurals for key, store
                       in list(self._objects(kind).items())
                       if isinstance(key, str) and store})
