"""Answers computed from lists of cached bodies, kept while what they read is the same.

Every app pass of a namespace reads the same policies, and every policy pass the same
apps; those change rarely compared with how often they are read, and most of their
changes are the operator's own status writes, which no such answer reads. So a memo is
keyed by what its answer reads of each body (`key`): by default the body's identity —
the operator's cache replaces a body when its object changes and never changes one in
place — or, say, a policy's uid and generation, which status writes leave alone. An
entry holds its bodies, so their ids cannot be reused by other objects while it is
kept."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    """The latest answer per slot (a namespace): a pass only ever asks about the present,
    and an answer kept for an older version would keep thousands of replaced bodies
    alive (this held 1.5 GB at 10,000 apps when it kept the last 64 answers)."""

    def __init__(self, key: Callable[[Any], Hashable] = id, slots: int = 1024) -> None:
        self._key = key
        self._slots = slots
        self._answers: dict[Hashable, tuple[Hashable, list[Any] | None, T]] = {}

    def get(self, slot: Hashable, bodies: Sequence[Any],
            compute: Callable[[Sequence[Any]], T], version: Hashable | None = None) -> T:
        """`version`, when the caller has one, stands for the bodies' keys: it must
        change whenever what the answer reads of them does."""
        key = ("version", version) if version is not None else tuple(map(self._key, bodies))
        kept = self._answers.get(slot)
        if kept is not None and kept[0] == key:
            return kept[2]
        answer = compute(bodies)
        if slot not in self._answers and len(self._answers) >= self._slots:
            self._answers.clear()
        # Keyed by ids, the entry holds the bodies so the ids cannot be reused meanwhile.
        self._answers[slot] = (key, list(bodies) if version is None else None, answer)
        return answer

    def peek(self, slot: Hashable, version: Hashable) -> T | None:
        """The answer kept for `version`, if any."""
        kept = self._answers.get(slot)
        return kept[2] if kept is not None and kept[0] == ("version", version) else None


def spec_key(body: dict[str, Any]) -> Hashable:
    """What an answer about an object's spec reads of it: its uid and generation (a new
    generation for every spec change), or the body itself when it has neither."""
    meta = body.get("metadata") or {}
    uid, generation = meta.get("uid"), meta.get("generation")
    return (uid, generation) if uid and generation else id(body)
