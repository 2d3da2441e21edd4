"""What a PublishedApp's route should be, and what its status says. Pure.

The rules (docs/design.md, "Routes"):

- A route follows the app's spec while its pool reference resolves, and is rendered
  only when it leads somewhere (a pool with a ready host) and someone may use it.
- A route is taken down when the pool it leads to is gone or has no ready host — never
  because the reference changed to something that does not resolve (a typo, a pool in
  another namespace): the route that is serving then stays as it is, leading to the
  pool it served, and status says why.
- Of apps that claim the same host and path, the one created first keeps the route
  (`route_claims`); the others have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..conditions import Cond
from .app import App, PoolFacts, RouteAccess
from .route_claims import Claim, Conflict

RouteAction = Literal["render", "down", "keep"]


@dataclass(frozen=True)
class RouteFacts:
    """What a pass knows beyond the app itself."""

    pool: PoolFacts
    access: RouteAccess
    conflict: Conflict | None = None
    live_pool: str | None = None  # the pool the route serving now leads to (its label)
    live_pool_exists: bool = False
    tls_secret_exists: bool | None = None  # None: not asked (no Ingress TLS, or not allowed)
    unenforced: str = ""  # the setting that makes routes ask nobody (gateway_auth)


@dataclass(frozen=True)
class AppPlan:
    route: RouteAction  # render the route; take it down; keep what runs untouched
    ready: Cond
    problems: tuple[Cond, ...] = ()  # what Degraded reports, most important first


def _url(app: App) -> str:
    return f"{app.spec.gateway.host}{app.spec.gateway.path}"


def _names(claims: tuple[Claim, ...]) -> str:
    return ", ".join(str(c) for c in claims)


def _conflict(app: App, me: Claim, conflict: Conflict) -> Cond:
    field = "spec.gateway.host and spec.gateway.path"
    if conflict.held_by(me):
        many = len(conflict.others) > 1
        return Cond("Degraded", True, "RouteConflict",
                    f"{field}: PublishedApp{'s' if many else ''} {_names(conflict.others)} "
                    f"also claim{'' if many else 's'} {_url(app)}; this app claimed it "
                    "first and keeps the route, the others have none until they move.")
    return Cond("Degraded", True, "RouteConflict",
                f"{field}: {_url(app)} is held by PublishedApp {conflict.holder}, which "
                "claimed it first (the oldest app keeps a contested route), so this app "
                "has no route. Give it another host or path, or delete the app that "
                "should not have it.")


def _unresolved(app: App, facts: RouteFacts, keep: bool) -> Cond:
    ref, namespace = facts.pool.name, app.namespace
    if facts.pool.elsewhere:
        places = ", ".join(facts.pool.elsewhere)
        reason = "PoolInOtherNamespace"
        message = (f"spec.poolRef.name: SessionHostPool {ref} is in namespace {places}, not "
                   f"in {namespace}: an app can only use a pool in its own namespace "
                   f"(cross-namespace references are not allowed). Create the app in {places}, "
                   f"a pool named {ref} in {namespace}, or correct poolRef.")
    else:
        reason = "PoolNotFound"
        message = (f"spec.poolRef.name: SessionHostPool {ref} does not exist in namespace "
                   f"{namespace}: create it, or correct poolRef.")
    if keep:
        message += (f" The route to SessionHostPool {facts.live_pool} that was serving "
                    "stays until poolRef resolves.")
    else:
        message += " The app has no route until then."
    return Cond("Ready", False, reason, message)


def plan_route(app: App, me: Claim, facts: RouteFacts) -> AppPlan:
    problems: list[Cond] = []
    if facts.unenforced:
        problems.append(Cond("Degraded", True, "AccessNotEnforced", facts.unenforced))
    if facts.tls_secret_exists is False:
        gw = app.spec.gateway
        problems.append(Cond(
            "Degraded", True, "TLSSecretNotFound",
            f"spec.gateway.tlsSecretName: Secret {gw.tls_secret_name} does not exist in "
            f"namespace {app.namespace}, so the gateway serves {gw.host} with its default "
            "certificate, which browsers refuse. Create the Secret (cert-manager can) or "
            "correct the name."))
    if facts.conflict is not None:
        clash = _conflict(app, me, facts.conflict)
        if not facts.conflict.held_by(me):
            return AppPlan("down", Cond("Ready", False, "RouteConflict", clash.message),
                           (clash, *problems))
        problems.insert(0, clash)
    pool = facts.pool
    if not pool.exists:
        keep = (facts.live_pool not in (None, pool.name)) and facts.live_pool_exists
        ready = _unresolved(app, facts, keep)
        if keep:  # serving, but not what the spec says
            problems.insert(0, Cond("Degraded", True, ready.reason, ready.message))
        return AppPlan("keep" if keep else "down", ready, tuple(problems))
    if not pool.port:
        return AppPlan("keep", Cond(
            "Ready", False, "PoolInvalid",
            f"SessionHostPool {pool.name} has an invalid spec and no Service yet, so a route "
            "would lead nowhere: correct the pool (its status names the field)."),
            tuple(problems))
    if not pool.ready:
        ready = Cond("Ready", False, "PoolNotReady",
                     f"SessionHostPool {pool.name} has no ready hosts; the route is down")
        return AppPlan("down", ready, tuple(problems))
    if not facts.access.open:
        ready = Cond("Ready", False, "NoPolicyAllows",
                     "no enforced AccessPolicy allows anyone to open this app; the route is "
                     "closed")
        return AppPlan("down", ready, tuple(problems))
    if facts.unenforced:
        return AppPlan("render", Cond("Ready", True, "RouteOpenUnenforced", facts.unenforced),
                       tuple(problems))
    return AppPlan("render", Cond("Ready", True, "RouteOpen", ""), tuple(problems))


def app_conditions(plan: AppPlan, errors: list[str]) -> list[Cond]:
    """Ready says whether users can reach the app as specified; Degraded lists what is
    wrong beside it (the first problem's reason, every problem's message)."""
    if errors:
        msg = "; ".join(errors)
        return [Cond("Ready", False, "RouteFailed", msg),
                Cond("Degraded", True, "RouteFailed", msg)]
    if not plan.problems:
        return [plan.ready, Cond("Degraded", False, "AsExpected", "")]
    return [plan.ready, Cond("Degraded", True, plan.problems[0].reason,
                             " ".join(_sentence(p.message) for p in plan.problems))]


def _sentence(message: str) -> str:
    return message if message.endswith(".") else f"{message}."
