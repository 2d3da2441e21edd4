"""One kind's controller, declared: what it watches and indexes, which work-queue keys an
event on it concerns, and how a pass is snapshotted. In the spirit of controller-runtime's
builder (`For`, `Owns`, `Watches`); `registry.py` lists the declarations, and
`handlers.py` and `workers.py` drive every kind from them alike.

Every pass has one shape: on the event loop, `snapshot` copies what the pass reads from
the indexes (the body, its children, whatever else); in a worker thread, the returned
job parses every fact once, plans (the pure cores: `render`, `policy`, `scaling`),
applies what differs and writes status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.kinds import ACCESS_POLICY
from .fanout import Delayed, Facts, Key, itself, object_facts
from .pass_result import PassResult

if TYPE_CHECKING:
    from .runtime import Runtime

Body = dict[str, Any]
Job = Callable[[], PassResult]
# (namespace, name, body) -> {index key: value}; Kopf keeps the values per object.
IndexFn = Callable[[str, str, Mapping[str, Any]], dict[Any, Any]]
# What is kept of an object's metadata in its index (managedFields, often the largest
# part of an object, never).
OBJECT_META = ("name", "namespace", "uid", "resourceVersion", "labels", "annotations",
               "generation", "creationTimestamp", "deletionTimestamp")


def _itself_only(rt: Runtime, key: Key, old: Facts | None, new: Facts | None
                 ) -> list[Key | Delayed]:
    return itself(key, old, new)


def _owner_only(rt: Runtime, key: Key) -> list[Key | Delayed]:
    return [key]


@dataclass(frozen=True)
class Controller:
    kind: str  # the first element of its keys: (kind, namespace, name)
    # Its pass, taken on the event loop: (runtime, namespace, name, the indexed body or
    # None for a kind without a watch) -> the blocking work, or None when there is none.
    snapshot: Callable[[Runtime, str, str, Body | None], Job | None]
    # The deskfleet.io/v1alpha1 resource it watches and indexes by (namespace, name) and
    # by namespace; None: a summary with no object of its own, queued by the fan-out of
    # others (the catalog).
    plural: str | None = None
    # What other objects read of it (fanout.py): an event fans out only when these change.
    facts: Callable[[Mapping[str, Any]], Facts] = object_facts
    # Which keys an event on the object concerns, given its key and its facts before and
    # after (None: it appeared or went away); by default only itself (fanout.itself).
    keys: Callable[[Runtime, Key, Facts | None, Facts | None],
                   list[Key | Delayed]] = _itself_only
    # Facts whose change moves this kind's per-namespace version (fanout.FactsMemory),
    # on which answers computed over all its objects are kept.
    versioned_by: tuple[str, ...] = ()
    meta: tuple[str, ...] = OBJECT_META  # the metadata its index keeps
    # Status fields its index keeps as digests (cache.slim): long lists that a pass only
    # compares with what it would write, and no other reads.
    compared_status: tuple[str, ...] = ()
    # Further indexes on the same watch: (name, function); held in the kind's one Kopf
    # index under `cache.Further` keys.
    indexes: tuple[tuple[str, IndexFn], ...] = ()
    owns_children: bool = False  # its children's events queue it (and RBAC: finalizers)
    # Which keys an event on one of its children concerns (the index already holds the
    # child as it is now), given the owner's key; by default only the owner.
    child_keys: Callable[[Runtime, Key], list[Key | Delayed]] = _owner_only
    # What passes remembered of a deleted object, beyond its metrics.
    forget: Callable[[Runtime, str, str], None] | None = None


# -- what several snapshots take -----------------------------------------------------------

def present(rt: Runtime, bodies: list[Body]) -> list[Body]:
    """The cached bodies the API server has not said are gone (ProcessState.gone)."""
    gone = rt.process.gone
    return [b for b in bodies if b["metadata"].get("uid") not in gone]


def policies_of(rt: Runtime, namespace: str) -> tuple[list[Body], tuple[str, str, int]]:
    """The namespace's AccessPolicies, and the version of their specs on which answers
    computed from them are kept (fanout.FactsMemory)."""
    return (rt.cache.in_namespace(ACCESS_POLICY.kind, namespace),
            ("policies", namespace, rt.facts.version(ACCESS_POLICY.kind, namespace)))
