"""Which keys a watch event concerns.

Most events are the operator's own status writes, which change nothing another object
depends on. Re-checking the whole namespace on each of them is correct (unchanged objects
cost no request) but at hospital scale it buries a new app's first pass under thousands
of no-op passes. So each kind has a small set of *facts* that others read, and an event
fans out only when those facts changed (or the object appeared or went away):

| event on | others read                                | fans out to                       |
|----------|--------------------------------------------|-----------------------------------|
| app      | labels, pool, spec (generation), Ready,    | catalog; old and new pool;        |
|          | host and path                              | the namespace's policies; apps    |
|          |                                            | claiming its old or new host+path |
| pool     | spec (generation), Ready                   | its apps; catalog                 |
| policy   | spec (generation), which apps it selects   | the apps it covered or covers,    |
|          |                                            | their pools; the policies; catalog|

An event that changed only the object's status (nearly always the operator's own write)
does not even re-queue the object itself. Wide fan-outs are debounced (`Delayed`) and
queued at low priority: a burst of policy edits, or a GitOps sync of a thousand apps,
collapses into one pass per namespace, behind the changes themselves; the re-checks over
a whole namespace (the catalog, a round of policy recounts) also wait ten times what
their last one cost (pacing.py), and at most two re-checks run at once (queue.py).
Level-based still: the periodic resync re-checks everything whatever the events said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..api.kinds import ACCESS_POLICY, PUBLISHED_APP, SESSION_HOST_POOL
from ..conditions import is_true
from ..policy.selection import GroupedLabels, LabelGroups
from ..render.route_claims import route_key

Key = tuple[str, str, str]
POOL, APP, POLICY = SESSION_HOST_POOL.kind, PUBLISHED_APP.kind, ACCESS_POLICY.kind
Facts = dict[str, Any]

# Fan-out keys handled by the workers: ("namespace", ns, "") re-queues every object of
# the namespace; ("policies", ns, "") every AccessPolicy of it.
NAMESPACE, POLICIES, CATALOG = "namespace", "policies", "catalog"
FANOUT_DELAY = 0.2  # seconds a wide fan-out waits for the rest of a burst
# A policy's status says what it covers; during a sync of a thousand apps it is
# recounted every few seconds rather than every second (each recount reads every app).
POLICIES_DELAY = 5.0
CATALOG_DELAY = 0.5  # the catalog is a summary: one render per burst of app changes
# The hosts' per-app session config: rendering it reads every policy for every app of
# the pool, and no app waits for it to be Ready. (Scaling passes are never delayed.)
POOL_CONFIG_DELAY = 2.0


@dataclass(frozen=True)
class Delayed:
    key: Key
    seconds: float


def _ready(body: Mapping[str, Any]) -> bool:
    return is_true((body.get("status") or {}).get("conditions"))


def app_route(spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """The host and path an app claims (render/route_claims.route_key)."""
    gateway = spec.get("gateway") or {}
    host = gateway.get("host")
    return route_key(host, gateway.get("path") or "/") if isinstance(host, str) else None


def object_facts(body: Mapping[str, Any]) -> Facts:
    """What other objects read of any object: its spec (by generation) and annotations."""
    meta = body.get("metadata") or {}
    return {"generation": meta.get("generation"),
            "annotations": dict(meta.get("annotations") or {})}


def pool_event_facts(body: Mapping[str, Any]) -> Facts:
    return {**object_facts(body), "ready": _ready(body)}


def app_event_facts(body: Mapping[str, Any]) -> Facts:
    spec = body.get("spec") or {}
    return {**object_facts(body), "ready": _ready(body),
            "labels": dict((body.get("metadata") or {}).get("labels") or {}),
            "pool": (spec.get("poolRef") or {}).get("name", ""),
            "route": app_route(spec)}


def policy_event_facts(body: Mapping[str, Any]) -> Facts:
    return {**object_facts(body), "apps": (body.get("spec") or {}).get("apps")}


def facts(kind: str, body: Mapping[str, Any]) -> Facts:
    """What other objects read of this one (each controller declares its own)."""
    by_kind = {APP: app_event_facts, POOL: pool_event_facts, POLICY: policy_event_facts}
    return by_kind.get(kind, object_facts)(body)


def _changed(old: Facts | None, new: Facts | None, *names: str) -> bool:
    if old is None or new is None:
        return old is not new  # appeared or went away
    return any(old.get(n) != new.get(n) for n in names)


def itself(key: Key, old: Facts | None, new: Facts | None) -> list[Key | Delayed]:
    """The object itself, unless only its status changed (as controller-runtime's
    GenerationChangedPredicate): its status is the operator's own last write."""
    return [key] if _changed(old, new, "generation", "labels", "annotations") else []


def app_keys(namespace: str, name: str, old: Facts | None, new: Facts | None,
             rivals: list[tuple[str, str]] | None = None) -> list[Key | Delayed]:
    """`rivals`: (namespace, name) of the apps claiming the old or new host and path."""
    keys = itself((APP, namespace, name), old, new)
    if _changed(old, new, "route"):
        keys += [(APP, ns, n) for ns, n in sorted(set(rivals or []))
                 if (ns, n) != (namespace, name)]
    if _changed(old, new, "generation", "labels", "ready"):
        keys.append(Delayed((CATALOG, namespace, ""), CATALOG_DELAY))
    if _changed(old, new, "generation", "labels", "pool"):
        # Debounced: a pool re-renders its hosts' app config once per burst of app edits.
        pools = {f["pool"] for f in (old, new) if f and f["pool"]}
        keys += [Delayed((POOL, namespace, p), POOL_CONFIG_DELAY)
                 for p in sorted(pools)]
    if _changed(old, new, "labels"):
        keys.append(Delayed((POLICIES, namespace, ""), POLICIES_DELAY))
    return keys


def pool_keys(namespace: str, name: str, old: Facts | None, new: Facts | None,
              apps: list[str]) -> list[Key | Delayed]:
    keys = itself((POOL, namespace, name), old, new)
    if _changed(old, new, "generation", "ready"):
        keys += [(APP, namespace, a) for a in apps]
        keys.append(Delayed((CATALOG, namespace, ""), CATALOG_DELAY))
    return keys


# (a policy's `spec.apps` as written) -> the apps of the namespace it selects, sorted;
# None when the selection cannot be read (the policy's own pass reports it).
Covered = Callable[[Any], "list[str] | None"]


def policy_keys(namespace: str, name: str, old: Facts | None, new: Facts | None,
                covered: Covered, pool_of: Callable[[str], str]) -> list[Key | Delayed]:
    """A policy opens or closes the routes of the apps it selects, before or after the
    change, and shapes their pools' host config; its conflicts are other policies'
    status. Nothing else reads it, so the fan-out stays with those apps (a namespace of
    10,000 apps is not re-checked for an edit that concerns 30). A selection that
    cannot be read re-checks the whole namespace: on doubt, look at everything."""
    keys = itself((POLICY, namespace, name), old, new)
    if not _changed(old, new, "generation"):
        return keys
    apps: set[str] = set()
    for f in (old, new):
        names = covered(f["apps"]) if f is not None else []
        if names is None:
            return [*keys, Delayed((NAMESPACE, namespace, ""), FANOUT_DELAY)]
        apps.update(names)
    keys += [Delayed((APP, namespace, a), FANOUT_DELAY) for a in sorted(apps)]
    keys += [Delayed((POOL, namespace, p), POOL_CONFIG_DELAY)
             for p in sorted({pool_of(a) for a in apps} - {""})]
    keys += [Delayed((POLICIES, namespace, ""), POLICIES_DELAY),
             Delayed((CATALOG, namespace, ""), CATALOG_DELAY)]
    return keys


def own_echo(body: Mapping[str, Any], manager: str) -> bool:
    """Whether the object's latest change was the operator's own write (its field manager
    holds every managedFields entry with the latest time). Such an event only echoes
    what the owner's pass just decided, so the owner need not run again; any other
    writer, a controller updating status or a hand edit, makes the owner look. Times have
    second resolution: a tie with another manager counts as someone else's change."""
    entries = (body.get("metadata") or {}).get("managedFields") or []
    if not entries:
        return False
    latest = max(e.get("time") or "" for e in entries)
    return all(e.get("manager") == manager for e in entries if (e.get("time") or "") == latest)


class FactsMemory:
    """The facts of every object as of its last event (one entry per live object), and
    per kind and namespace a version of the facts that answers computed over many
    objects read (e.g. its apps' labels for a policy's coverage, its policies' specs for
    every decision). Such answers are kept while the version stays the same. Objects
    whose facts have labels are kept grouped by them too (`label_groups`)."""

    def __init__(self) -> None:
        self._facts: dict[Key, Facts] = {}
        self._versions: dict[tuple[str, str], int] = {}
        self._labels: dict[tuple[str, str], GroupedLabels] = {}

    def swap(self, key: Key, new: Facts | None, versioned_by: tuple[str, ...] = ()
             ) -> Facts | None:
        """Remember `new` (None: deleted) and return what was remembered before; a
        change of any fact in `versioned_by` moves the version of the key's kind in its
        namespace."""
        old = self._facts.pop(key, None)
        if new is not None:
            self._facts[key] = new
        kind, namespace = key[0], key[1]
        if versioned_by and _changed(old, new, *versioned_by):
            self._versions[kind, namespace] = self._versions.get((kind, namespace), 0) + 1
        if "labels" in (new or old or {}):
            grouped = self._labels.setdefault((kind, namespace), GroupedLabels())
            grouped.move(key[2], old["labels"] if old else None,
                         new["labels"] if new else None)
            if not grouped:
                del self._labels[kind, namespace]
        return old

    def version(self, kind: str, namespace: str) -> int:
        return self._versions.get((kind, namespace), 0)

    def get(self, key: Key) -> Facts | None:
        return self._facts.get(key)

    def label_groups(self, kind: str, namespace: str) -> LabelGroups:
        """The namespace's objects of `kind` grouped by labels, as of their last events."""
        grouped = self._labels.get((kind, namespace))
        return grouped.frozen() if grouped is not None else LabelGroups(())
