"""The authorization decision for one request to one app: the policy core's `evaluate`,
wrapped in the refusals that keep it failing closed. Pure: the server resolves the
identity, address, country and data age first and hands them in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..policy import AccessDecision, Request, evaluate
from ..policy.conditions import MFA
from ..policy.hints import HINT_MFA, denial_hints
from .directory import AppEntry, NamespaceView

# Outcomes, as the metrics and the audit log name them.
ALLOW, DENY, UNAUTHENTICATED, FAIL_CLOSED = "allow", "deny", "unauthenticated", "fail-closed"


@dataclass(frozen=True)
class Verdict:
    status: int  # the HTTP answer to the gateway
    outcome: str
    reason: str  # a short code: metrics label and audit field
    detail: str = ""  # for the log, never for the user
    app: AppEntry | None = None
    decision: AccessDecision | None = None
    hints: tuple[str, ...] = ()
    step_up: bool = False  # the same request with MFA would be allowed

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW


def fail_closed(reason: str, detail: str, status: int = 503,
                app: AppEntry | None = None) -> Verdict:
    return Verdict(status, FAIL_CLOSED, reason, detail, app)


def unauthenticated(reason: str, detail: str, app: AppEntry | None = None) -> Verdict:
    return Verdict(401, UNAUTHENTICATED, reason, detail, app)


def check_data(data_age: float, max_age: float) -> Verdict | None:
    """A refusal when what the portal knows cannot be trusted yet or any more."""
    if math.isinf(data_age):
        return fail_closed("no-data", "the policies have not been loaded yet")
    if data_age > max_age:
        return fail_closed("stale-data", f"the policies were last confirmed {data_age:.0f}s "
                           f"ago (bound {max_age:.0f}s)")
    return None


def find_app(view: NamespaceView | None, app_name: str) -> AppEntry | Verdict:
    app = view.apps.get(app_name) if view is not None else None
    if app is None:
        return fail_closed("unknown-app", f"no PublishedApp {app_name!r} is known", 403)
    return app


def _mfa_may_help(decision: AccessDecision) -> bool:
    """Whether completing MFA could allow the request: only if some enforced allow failed
    on MFA alone (then `evaluate` is asked again, with MFA, to be sure)."""
    return any(m.enforced and m.action == "allow" and m.failed == (MFA,)
               for m in decision.matches)


def authorize(view: NamespaceView, app: AppEntry, request: Request) -> Verdict:
    """`evaluate`'s decision for the request, or a refusal where a policy that could
    refuse it cannot be read."""
    unreadable = view.unreadable_covering(app)
    if unreadable:
        names = ", ".join(u.name for u in unreadable)
        return fail_closed("unreadable-policy", f"policies that may refuse this app cannot "
                           f"be read: {names}", 403, app)
    decision = evaluate(view.policies, app.name, app.labels, request)
    if decision.allowed:
        return Verdict(200, ALLOW, "allowed", decision.reason, app, decision)
    step_up = not request.mfa and _mfa_may_help(decision) and evaluate(
        view.policies, app.name, app.labels, replace(request, mfa=True)).allowed
    hints = denial_hints(decision)
    if step_up and HINT_MFA not in hints:
        hints = (HINT_MFA, *hints)
    reason = "denied-by-policy" if decision.decided_by else "no-policy-matched"
    return Verdict(403, DENY, reason, decision.reason, app, decision, hints, step_up)
