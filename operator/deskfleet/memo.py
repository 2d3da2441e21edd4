"""Answers computed from lists of cached bodies, kept while the bodies are the same.

Every app pass of a namespace reads the same policies, and every policy pass the same
apps; those change rarely compared with how often they are read. The operator's cache
replaces a body when its object changes and never changes one in place, so the ids of
the bodies say whether the list is the same. An entry holds its bodies, so their ids
cannot be reused by other objects while it is kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ByIdentity(Generic[T]):
    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._answers: dict[tuple[int, ...], tuple[list[Any], T]] = {}

    def get(self, bodies: Sequence[Any], compute: Callable[[Sequence[Any]], T]) -> T:
        key = tuple(map(id, bodies))
        if (kept := self._answers.get(key)) is not None:
            return kept[1]
        answer = compute(bodies)
        if len(self._answers) >= self._size:
            self._answers.clear()
        self._answers[key] = (list(bodies), answer)
        return answer
