"""The operator's view of the cluster: Kopf indexes filled from its watch streams.

Kopf fills every index before it runs any other handler, so the first reconcile already
sees all children and pods: a pass never mistakes "not loaded yet" for "missing".

Indexes are mutated on the event loop; reconciles run in threads. So a worker takes a
`Snapshot` (shallow copies of the entries it needs) on the loop, and the thread only
ever reads the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..render.meta import OWNER_KIND_LABEL, OWNER_NAME_LABEL, POOL_LABEL
from ..render.route_claims import Claim

# Index names: Kopf injects each index into handlers as a kwarg of this name.
POOLS = "pools_index"
APPS = "apps_index"
APPS_BY_POOL = "apps_by_pool_index"
POLICIES = "policies_index"
CHILDREN_PREFIX = "children_"  # one index per child kind: children_deployments, ...
PODS = "pods_index"
CATALOGS = "catalogs_index"
ROUTES = "app_routes_index"  # (host, path) -> the apps claiming it (render/route_claims)

# creationTimestamp: which of a held pool's revisions is the newest (revisions.py).
CHILD_META = ("name", "namespace", "uid", "resourceVersion", "labels", "annotations",
               "ownerReferences", "deletionTimestamp", "generation", "creationTimestamp")


def slim(body: Mapping[str, Any], meta_keys: Iterable[str] = CHILD_META) -> dict[str, Any]:
    """A plain-dict copy without managedFields (often the largest part of an object)."""
    meta = body.get("metadata", {})
    out = {k: v for k, v in body.items() if k != "metadata"}
    out["metadata"] = {k: meta[k] for k in meta_keys if k in meta}
    return out


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

    @property
    def bound(self) -> bool:
        return bool(self.indexes)

    def bind(self, kwargs: Mapping[str, Any]) -> None:
        if not self.indexes:
            names = (POOLS, APPS, APPS_BY_POOL, POLICIES, PODS, CATALOGS, ROUTES)
            self.indexes = {n: kwargs[n] for n in names if n in kwargs}
            self.child_indexes = [v for k, v in kwargs.items() if k.startswith(CHILDREN_PREFIX)]

    def _one(self, index: str, key: Any) -> dict[str, Any] | None:
        store = self.indexes[index].get(key)
        if not store:
            return None
        return next(iter(store), None)

    def _all(self, index: str, key: Any) -> list[Any]:
        return list(self.indexes[index].get(key, ()))

    # -- reads, on the event loop only ------------------------------------------------

    def pool(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._one(POOLS, (namespace, name))

    def app(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._one(APPS, (namespace, name))

    def apps_of_pool(self, namespace: str, pool: str) -> list[str]:
        return sorted(set(self._all(APPS_BY_POOL, (namespace, pool))))

    def apps_in(self, namespace: str) -> list[dict[str, Any]]:
        return [next(iter(store)) for (ns, _), store in list(self.indexes[APPS].items())
                if ns == namespace and store]

    def pools_in(self, namespace: str) -> list[dict[str, Any]]:
        return [next(iter(store)) for (ns, _), store in list(self.indexes[POOLS].items())
                if ns == namespace and store]

    def pool_namespaces(self, name: str) -> tuple[str, ...]:
        """Every namespace with a pool of this name (for an app whose reference does
        not resolve in its own)."""
        return tuple(sorted(ns for (ns, n), store in list(self.indexes[POOLS].items())
                            if n == name and store))

    def claims(self, route: tuple[str, str]) -> tuple[Claim, ...]:
        return tuple(sorted(set(self._all(ROUTES, route))))

    def policies_in(self, namespace: str) -> list[dict[str, Any]]:
        return self._all(POLICIES, namespace)

    def children(self, namespace: str, owner_kind: str, owner: str) -> list[dict[str, Any]]:
        key = (namespace, owner_kind.lower(), owner)
        return [child for index in self.child_indexes for child in index.get(key, ())]

    def pods(self, namespace: str, pool: str) -> list[dict[str, Any]]:
        return self._all(PODS, (namespace, pool))

    def catalog(self, namespace: str) -> dict[str, Any] | None:
        return self._one(CATALOGS, namespace)

    def all_keys(self, namespace: str | None = None) -> list[tuple[str, str, str]]:
        """Every object a resync should look at (in one namespace, if given)."""
        out: list[tuple[str, str, str]] = []
        for kind, index in (("SessionHostPool", POOLS), ("PublishedApp", APPS)):
            out += [(kind, ns, name) for (ns, name), store in
                    list(self.indexes[index].items()) if store]
        out += [("AccessPolicy", ns, p["metadata"]["name"]) for ns, store in
                list(self.indexes[POLICIES].items()) for p in store]
        namespaces = {ns for (_, ns, _) in out}
        out += [("catalog", ns, "") for ns in sorted(namespaces)]
        return out if namespace is None else [k for k in out if k[1] == namespace]
