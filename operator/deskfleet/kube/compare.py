"""Is a live object already what we would apply? A pure function.

Server-side apply of an unchanged manifest persists nothing, but it is still a PATCH
request; at hospital scale a resync of every child would be thousands of them. So a
pass first checks that every field deskfleet renders is already present in the live
object with the same value (`desired` is a subset of `live`), and only applies when it
is not. The API server adds fields (defaults, status, managedFields): those are ignored.

Values the API server rewrites are compared by meaning: resource quantities (`0.5` and
`500m`), and ints against strings where Kubernetes allows int-or-string.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from kubernetes.utils.quantity import parse_quantity

# Written by the API server, or by other controllers, never by a render.
_IGNORED_METADATA = {"resourceVersion", "uid", "generation", "creationTimestamp",
                     "managedFields", "selfLink"}


class Digest:
    """What the operator's cache keeps of a large string it only ever compares (a
    ConfigMap's documents): its length and SHA-256. Equal to a string with the same
    ones, so `is_subset(rendered, live)` reads the same with it as with the text."""

    __slots__ = ("sha", "size")

    def __init__(self, size: int, sha: bytes) -> None:
        self.size, self.sha = size, sha

    @classmethod
    def of(cls, text: str) -> Digest:
        return cls(len(text), hashlib.sha256(text.encode()).digest())

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Digest):
            return (self.size, self.sha) == (other.size, other.sha)
        if isinstance(other, str):
            return len(other) == self.size and hashlib.sha256(other.encode()).digest() == self.sha
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.sha)

    def __repr__(self) -> str:
        return f"Digest({self.size} chars, sha256 {self.sha.hex()[:12]})"


class ValueDigest:
    """What the operator's cache keeps of a long list in a status it only ever compares
    with what it would write (an app's `allowedBy`, a policy's `matchedApps`: hundreds of
    names each at 10,000 apps): the SHA-256 of its JSON. Equal to any value that
    serialises the same, so `conditions.status_differs` reads the same with it."""

    __slots__ = ("sha",)

    def __init__(self, sha: bytes) -> None:
        self.sha = sha

    @classmethod
    def of(cls, value: Any) -> ValueDigest:
        return cls(hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).digest())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ValueDigest):
            return self.sha == other.sha
        try:
            return self.sha == ValueDigest.of(other).sha
        except TypeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self.sha)

    def __repr__(self) -> str:
        return f"ValueDigest(sha256 {self.sha.hex()[:12]})"


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    if isinstance(want, (str, int, float)) and isinstance(have, (str, int, float)):
        try:
            return Decimal(parse_quantity(want)) == Decimal(parse_quantity(have))
        except (ValueError, InvalidOperation, TypeError):
            return str(want) == str(have)
    return False


def is_subset(want: Any, have: Any) -> bool:
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all(k in have and is_subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        # Lists are atomic or keyed; either way we render them whole and in order.
        return (isinstance(have, list) and len(want) == len(have)
                and all(is_subset(w, h) for w, h in zip(want, have, strict=True)))
    return _same_scalar(want, have)


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return True
    if live.get("metadata", {}).get("deletionTimestamp"):
        return True  # going away: re-create once it is gone
    meta = {k: v for k, v in desired.get("metadata", {}).items() if k not in _IGNORED_METADATA}
    body = {k: v for k, v in desired.items() if k not in ("metadata", "status")}
    return not (is_subset(meta, live.get("metadata", {})) and is_subset(body, live))
