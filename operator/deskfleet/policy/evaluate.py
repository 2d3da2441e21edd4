"""Access-policy evaluation: may this request open this app, with which controls, and why.

The contract (docs/access-policy.md says the same for people):

1. Only policies that cover the app are considered: the app is listed in `apps.names`, or
   its labels match `apps.selector` (`{}` covers every app). The caller passes the
   policies of the app's namespace.
2. A policy applies to a request when the request's user is listed, or one of its groups
   is, and every condition the policy sets holds: source IP in one of `sourceRanges`,
   country in `countries`, MFA done if `requireMFA`, local time (in `timeZone`) within
   one of `timeWindows`. A condition left empty imposes nothing. An unknown country
   never satisfies a country list.
3. `dryRun` policies are evaluated and reported, and never change the decision.
4. Among the enforced policies that apply:
   a. any deny applies -> denied; decided_by = those denies;
   b. else any allow applies -> allowed; decided_by = those allows; the session controls
      are theirs combined, most restrictive wins (see controls.py);
   c. else -> denied, "no policy matched" (default deny).
5. Deny beats allow whatever the priorities. Priority only orders: decided_by and the
   reported matches are sorted by priority (highest first), then name.
6. The decision does not depend on the order of the input list.
7. The dry-run outcome applies the same rules with dryRun policies treated as enforced;
   `dry_run_would_change` is set when that changes `allowed` or the controls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..api.accesspolicy import AccessPolicySpec
from ..api.resource import Resource
from .conditions import check_kinds, run_checks
from .controls import combine_controls
from .model import NO_POLICY_MATCHED, AccessDecision, Match, Outcome, Request
from .selection import PolicySet, app_selected, ordered

Policy = Resource[AccessPolicySpec]


def _reasons(policy: Policy, request: Request, applies: bool) -> tuple[str, ...]:
    return tuple(text for _, ok, text in run_checks(policy, request) if ok == applies)


def _match(policy: Policy, request: Request) -> Match:
    checks = check_kinds(policy, request)
    failed = tuple(kind for kind, ok in checks if not ok)
    applies = not failed
    spec = policy.spec
    return Match(policy.name, spec.action, spec.priority, spec.mode, applies,
                 tuple(kind for kind, _ in checks), failed,
                 lambda: _reasons(policy, request, applies))


def _outcome(evaluated: Sequence[tuple[Policy, Match]], with_dry_run: bool) -> Outcome:
    applying = [p for p, m in evaluated if m.applies and (with_dry_run or m.enforced)]
    denies = [p for p in applying if p.spec.action == "deny"]
    if denies:
        return Outcome(False, None, tuple(p.name for p in denies))
    allows = [p for p in applying if p.spec.action == "allow"]
    if allows:
        controls = combine_controls([p.spec.session_controls for p in allows])
        return Outcome(True, controls, tuple(p.name for p in allows))
    return Outcome(False, None, ())


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _reason(outcome: Outcome, matches: Sequence[Match], app_name: str) -> str:
    if outcome.decided_by and not outcome.allowed:
        noun = "deny policy" if len(outcome.decided_by) == 1 else "deny policies"
        return (f"Denied by {noun} {_names(outcome.decided_by)}: "
                "a deny that applies beats any allow.")
    if outcome.allowed:
        if len(outcome.decided_by) == 1:
            return f"Allowed by {outcome.decided_by[0]}."
        return (f"Allowed by {_names(outcome.decided_by)}; their session controls are "
                "combined, most restrictive wins.")
    if any(m.enforced and m.action == "allow" for m in matches):
        why = f"no enforced allow covering {app_name} applies to this request"
    else:
        why = f"no enforced allow covers {app_name}"
    return f"Denied: {NO_POLICY_MATCHED} ({why}); access is denied by default."


def evaluate(policies: Iterable[Policy], app_name: str, app_labels: Mapping[str, str],
             request: Request) -> AccessDecision:
    """Decide one request for one app under the contract at the top of this module."""
    if isinstance(policies, PolicySet):
        # The portal asks this for every request: the covering policies of a label set
        # are kept by the set, so a request costs only the checks of those few.
        cover = list(policies.covering(app_name, app_labels))
        everything: Sequence[Policy] = policies
    else:
        everything = ordered(policies)
        cover = [p for p in everything if app_selected(p.spec, app_name, app_labels)]
    evaluated = [(p, _match(p, request)) for p in cover]
    matches = tuple(m for _, m in evaluated)
    enforced = _outcome(evaluated, with_dry_run=False)
    dry_run = None
    if any(not m.enforced for m in matches):
        dry_run = _outcome(evaluated, with_dry_run=True)
    would_change = dry_run is not None and (
        (dry_run.allowed, dry_run.controls) != (enforced.allowed, enforced.controls))
    return AccessDecision(
        app=app_name,
        allowed=enforced.allowed,
        controls=enforced.controls,
        decided_by=enforced.decided_by,
        matches=matches,
        reason=_reason(enforced, matches, app_name),
        dry_run=dry_run,
        dry_run_would_change=would_change,
        not_covering=policies.not_covering(app_name, app_labels) if isinstance(policies, PolicySet)
        else tuple(sorted({p.name for p in everything} - {p.name for p in cover})),
    )
