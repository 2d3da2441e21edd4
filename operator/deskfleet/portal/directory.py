"""What the portal knows of the cluster: apps, policies and pools per namespace, kept
from watches, and how fresh that knowledge is.

The watch threads hand events to `Directory` on the event loop; requests read
`NamespaceView`s, immutable snapshots rebuilt only when their namespace changed, so a
decision never sees half an update. Policies are the operator's own parsed models and
`PolicySet` (the same code `deskfleet explain` and the operator use).

Fail closed: an AccessPolicy the portal cannot parse is not silently dropped when it
might refuse someone — apps it may cover are refused until it is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..api.accesspolicy import AppSelection
from ..api.common import API_VERSION
from ..api.kinds import KINDS as API_KINDS
from ..api.parse import InvalidSpec, parse
from ..policy.selection import PolicySet, app_selected_by
from ..render.app import app_url

KINDS = tuple(k.kind for k in API_KINDS)  # the portal reads all three


@dataclass(frozen=True)
class AppEntry:
    """One published app as the landing page and the authorizer need it."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    display_name: str
    description: str
    category: str
    icon: str | None
    url: str
    pool: str


@dataclass(frozen=True)
class PoolView:
    """A pool's readiness and room, from the status the operator writes."""

    ready_hosts: int = 0
    capacity: int | None = None
    sessions: int | None = None

    @property
    def ready(self) -> bool:
        return self.ready_hosts > 0

    @property
    def free_slots(self) -> float:
        if self.capacity is None or self.sessions is None:
            return math.inf if self.ready else 0  # no figures yet: readiness decides
        return max(0, self.capacity - self.sessions)


@dataclass(frozen=True)
class UnreadablePolicy:
    """A policy the portal could not parse; `apps` None when even that is unreadable."""

    name: str
    apps: AppSelection | None
    problem: str


@dataclass(frozen=True)
class NamespaceView:
    namespace: str
    apps: Mapping[str, AppEntry]
    policies: PolicySet
    pools: Mapping[str, PoolView]
    unreadable: tuple[UnreadablePolicy, ...] = ()

    def pool_of(self, app: AppEntry) -> PoolView | None:
        return self.pools.get(app.pool)

    def unreadable_covering(self, app: AppEntry) -> list[UnreadablePolicy]:
        """Unparseable policies that may refuse someone this app (fail closed on them)."""
        return [u for u in self.unreadable
                if u.apps is None or app_selected_by(u.apps, app.name, app.labels)]


def _slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the portal reads: a thousand apps' managed fields are not held."""
    meta = body.get("metadata") or {}
    out: dict[str, Any] = {
        "apiVersion": body.get("apiVersion", API_VERSION),
        "kind": body.get("kind", ""),
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "generation",
                                          "labels") if k in meta},
        "spec": body.get("spec") or {},
    }
    if out["kind"] == "SessionHostPool":
        status = body.get("status") or {}
        out["status"] = {k: status[k] for k in ("readyHosts", "capacity", "sessions")
                         if k in status}
        out.pop("spec")  # the portal needs only a pool's readiness and room
    return out


def _app_entry(body: dict[str, Any]) -> AppEntry | None:
    try:
        app = parse(body)
    except InvalidSpec:
        return None  # the operator reports it on the app; it has no route either
    spec = app.spec
    return AppEntry(namespace=app.namespace, name=app.name, labels=dict(app.labels),
                    display_name=spec.display_name, description=spec.description,
                    category=spec.category, icon=spec.icon, url=app_url(spec),
                    pool=spec.pool_ref.name)


def _pool_view(body: dict[str, Any]) -> PoolView:
    status = body.get("status") or {}

    def number(key: str) -> int | None:
        value = status.get(key)
        return value if isinstance(value, int) else None

    return PoolView(ready_hosts=number("readyHosts") or 0, capacity=number("capacity"),
                    sessions=number("sessions"))


def _unreadable(body: dict[str, Any], err: InvalidSpec) -> UnreadablePolicy | None:
    spec = body.get("spec") or {}
    if spec.get("action", "allow") == "allow" and spec.get("mode", "enforce") in (
            "enforce", "dryRun"):
        return None  # an allow that cannot be read grants nothing: refusing is safe
    try:
        apps: AppSelection | None = AppSelection.model_validate(spec.get("apps") or {},
                                                                by_alias=True)
    except ValidationError:
        apps = None
    return UnreadablePolicy(body["metadata"].get("name", "?"), apps, str(err))


def build_view(namespace: str, bodies: Mapping[str, Iterable[dict[str, Any]]]
               ) -> NamespaceView:
    """A namespace's snapshot from its bodies by kind (a pure function: tested alone)."""
    apps = {}
    for body in bodies.get("PublishedApp", ()):
        entry = _app_entry(body)
        if entry is not None:
            apps[entry.name] = entry
    policies, unreadable = [], []
    for body in bodies.get("AccessPolicy", ()):
        try:
            policies.append(parse(body))
        except InvalidSpec as err:
            bad = _unreadable(body, err)
            if bad is not None:
                unreadable.append(bad)
    pools = {b["metadata"]["name"]: _pool_view(b) for b in bodies.get("SessionHostPool", ())}
    return NamespaceView(namespace, apps, PolicySet(policies), pools,
                         tuple(sorted(unreadable, key=lambda u: u.name)))


Scope = tuple[str, str | None]  # (kind, namespace or None for all namespaces)


@dataclass
class Directory:
    """The mutable store behind the views; touched only on the event loop.

    `namespaces` are the watch scopes (empty: all namespaces, one cluster-wide watch per
    kind); every kind of every scope must have been listed before anything is served."""

    namespaces: tuple[str, ...] = ()
    # kind -> namespace -> name -> slim body
    bodies: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS})
    listed: set[Scope] = field(default_factory=set)
    alive_at: dict[Scope, float] = field(default_factory=dict)  # monotonic
    _views: dict[str, NamespaceView] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)

    @property
    def scopes(self) -> list[Scope]:
        spaces: list[str | None] = list(self.namespaces) or [None]
        return [(kind, ns) for kind in KINDS for ns in spaces]

    def replace(self, kind: str, namespace: str | None, bodies: Iterable[Mapping[str, Any]],
                now: float) -> None:
        """A fresh list of a kind in a scope (at start, and after a 410 Gone)."""
        stored = self.bodies[kind]
        dropped = list(stored) if namespace is None else [namespace]
        for ns in dropped:
            stored.pop(ns, None)
            self._dirty.add(ns)
        for body in bodies:
            self._put(kind, body)
        self.listed.add((kind, namespace))
        self.alive(kind, namespace, now)

    def upsert(self, kind: str, namespace: str | None, body: Mapping[str, Any],
               now: float) -> None:
        self._put(kind, body)
        self.alive(kind, namespace, now)

    def delete(self, kind: str, namespace: str | None, body: Mapping[str, Any],
               now: float) -> None:
        meta = body.get("metadata") or {}
        ns = meta.get("namespace", "")
        self.bodies[kind].get(ns, {}).pop(meta.get("name", ""), None)
        self._dirty.add(ns)
        self.alive(kind, namespace, now)

    def alive(self, kind: str, namespace: str | None, now: float) -> None:
        """The watch of this scope showed the API server answering at `now`."""
        self.alive_at[(kind, namespace)] = now

    def _put(self, kind: str, body: Mapping[str, Any]) -> None:
        slim = _slim({"kind": kind, **body})
        namespace = slim["metadata"].get("namespace", "")
        self.bodies[kind].setdefault(namespace, {})[slim["metadata"].get("name", "")] = slim
        self._dirty.add(namespace)

    # --- reading -----------------------------------------------------------------

    def ready(self) -> bool:
        return self.listed.issuperset(self.scopes)

    def age(self, now: float) -> float:
        """Seconds since the stalest watch last proved itself; inf before the first list."""
        if not self.ready():
            return math.inf
        return max(0.0, now - min(self.alive_at[s] for s in self.scopes))

    def namespace_names(self) -> list[str]:
        return sorted({ns for kind in KINDS for ns, objs in self.bodies[kind].items() if objs})

    def view(self, namespace: str) -> NamespaceView:
        if namespace in self._dirty or namespace not in self._views:
            by_kind = {kind: list(self.bodies[kind].get(namespace, {}).values())
                       for kind in KINDS}
            self._views[namespace] = build_view(namespace, by_kind)
            self._dirty.discard(namespace)
        return self._views[namespace]
