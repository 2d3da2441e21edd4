"""Which PublishedApp holds a host and path that several of them claim. Pure.

Two routes for one URL leave the choice to the gateway, and users could reach a
different app from the one the landing page names. Gateway API settles such conflicts
by age: the route created first (then by namespace and name) wins, and ingress-nginx
merges Ingresses in the same order. deskfleet applies that rule one step earlier, to the
apps themselves: the app created first keeps the route, every other claimant has none,
and all of them say so in status. A claim is the spec's host and path whatever the
claimant's state, so who holds a URL never changes because a pool lost its last host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

RouteKey = tuple[str, str]


@dataclass(frozen=True, order=True)
class Claim:
    """An app's claim on its URL; orders by age (RFC 3339 times sort as text)."""

    created: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def route_key(host: str, path: str) -> RouteKey:
    """What the gateway matches: a prefix ignores a trailing slash (Ingress `Prefix`
    and HTTPRoute `PathPrefix` both match `/epr` and `/epr/` alike)."""
    return host.lower(), path.rstrip("/") or "/"


@dataclass(frozen=True)
class Conflict:
    holder: Claim
    others: tuple[Claim, ...]  # every claimant but the one asking, oldest first

    def held_by(self, me: Claim) -> bool:
        return self.holder == me


def conflict_for(me: Claim, claims: Iterable[Claim]) -> Conflict | None:
    """None when no other app claims `me`'s host and path."""
    others = {c for c in claims if (c.namespace, c.name) != (me.namespace, me.name)}
    everyone = sorted({*others, me})
    if len(everyone) < 2:
        return None
    return Conflict(holder=everyone[0], others=tuple(c for c in everyone if c != me))
