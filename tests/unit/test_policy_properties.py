"""Properties of access-policy evaluation over generated policies and requests.

The vocabularies (groups, ranges, countries, labels) are deliberately small so generated
policies overlap with each other and with requests: most examples exercise real
interactions between allows, denies and dry-run policies rather than disjoint ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deskfleet.api.accesspolicy import AccessPolicySpec
from deskfleet.api.common import WEEKDAYS, parse_duration
from deskfleet.policy import (
    AccessDecision,
    Request,
    app_selected,
    evaluate,
    policy_applies,
    route_access,
    who_can_open,
)
from deskfleet.policy.conditions import normalise_ip
from deskfleet.policy.controls import PERMISSION_DEFAULTS
from deskfleet.policy.enforcement import access_for, app_session_config
from deskfleet.policy.selection import GroupedLabels, LabelGroups, PolicySet, covering
from deskfleet.render.meta import Resource

Policy = Resource[AccessPolicySpec]

PROPERTY = settings(max_examples=200, deadline=None)

GROUPS = ("clinicians", "contractors", "radiologists", "nurses")
USERS = ("alice", "bob", "carol")
APP_NAMES = ("epr", "rota", "pacs")
LABEL_KEYS = ("tier", "data")
LABEL_VALUES = ("clinical", "office", "patient")
CIDRS = ("10.0.0.0/8", "10.1.0.0/16", "203.0.113.0/24", "2001:db8::/32")
IPS = ("10.1.2.3", "10.200.0.1", "203.0.113.7", "198.51.100.9", "2001:db8::1",
       "::ffff:203.0.113.7")
COUNTRIES = ("GB", "FR", "KP")
ZONES = ("UTC", "Europe/London", "America/New_York")
TIMES = ("00:00", "08:00", "12:00", "18:00", "24:00")
DURATIONS = ("15m", "30m", "1h", "1h30m", "8h")

# Hypothesis's per-draw overhead, not evaluation, dominates the run time, so a policy is
# drawn as a handful of integers, each split into mixed-radix digits (one per field).
# Digit 0 is always the simplest choice, so shrinking still heads for minimal policies.


def digits(*bases: int) -> st.SearchStrategy[list[int]]:
    def split(value: int) -> list[int]:
        out = []
        for base in bases:
            value, digit = divmod(value, base)
            out.append(digit)
        return out
    return st.integers(0, math.prod(bases) - 1).map(split)


def subset(items: Sequence[str], mask: int) -> list[str]:
    return [item for bit, item in enumerate(items) if mask >> bit & 1]


def _requirements() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in LABEL_KEYS:
        out += [{"key": key, "operator": "Exists"}, {"key": key, "operator": "DoesNotExist"}]
        for values in ([v] for v in LABEL_VALUES):
            out += [{"key": key, "operator": op, "values": values} for op in ("In", "NotIn")]
        out.append({"key": key, "operator": "In", "values": ["clinical", "office"]})
    return out


SELECTOR_PARTS: list[dict[str, Any]] = (
    [{}]
    + [{"matchLabels": {k: v}} for k in LABEL_KEYS for v in LABEL_VALUES]
    + [{"matchExpressions": [r]} for r in _requirements()]
)
WINDOW_BOUNDS = [(a, b) for i, a in enumerate(TIMES) for b in TIMES[i + 1:]]
CONTROL_FLAGS = ("clipboardToHost", "clipboardToClient", "fileUpload", "fileDownload",
                 "printing", "recording", "watermark")
ACTIONS = ("allow", "allow", "deny")
PRIORITIES = (100, 0, 100, 1000)  # ties on purpose
MODES = ("enforce", "enforce", "enforce", "dryRun")

who = digits(2 ** len(GROUPS), 2 ** len(USERS))
which_apps = digits(3, 2 ** len(APP_NAMES) - 1, len(SELECTOR_PARTS), len(SELECTOR_PARTS))
# Masks have one extra bit: when set the list is empty, so "unset" is as common as "set".
where = digits(2 ** (len(CIDRS) + 1), 2 ** (len(COUNTRIES) + 1), 2, len(ZONES), 4)
windows = st.lists(digits(2 ** 7 - 1, len(WINDOW_BOUNDS)), min_size=1, max_size=2)
controls_digits = digits(3 ** len(CONTROL_FLAGS), len(DURATIONS) + 1, len(DURATIONS) + 1)
meta = digits(len(ACTIONS), len(PRIORITIES), len(MODES))


def half_empty(items: Sequence[str], mask: int) -> list[str]:
    return subset(items, mask) if mask < 2 ** len(items) else []


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two selector parts ANDed, as one selector."""
    expressions = a.get("matchExpressions", []) + b.get("matchExpressions", [])
    merged = {**a, **b}
    if expressions:
        merged["matchExpressions"] = expressions
    return merged


def session_controls(flags: int, idle: int, longest: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in CONTROL_FLAGS:  # per flag a base-3 digit: unset, false, true
        flags, digit = divmod(flags, 3)
        if digit:
            out[name] = digit == 2
    if idle:
        out["idleTimeout"] = DURATIONS[idle - 1]
    if longest:
        out["maxSessionDuration"] = DURATIONS[longest - 1]
    return out


@st.composite
def specs(draw: st.DrawFn, action: str | None = None, mode: str | None = None
          ) -> AccessPolicySpec:
    groups, users = draw(who)
    subjects = {"groups": subset(GROUPS, groups), "users": subset(USERS, users)}
    if not subjects["groups"] and not subjects["users"]:
        subjects["groups"] = ["clinicians"]  # admission requires at least one subject
    by, names, part_a, part_b = draw(which_apps)  # by: names, selector, or both
    apps: dict[str, Any] = {}
    if by != 1:
        apps["names"] = subset(APP_NAMES, names + 1)
    if by != 0:
        apps["selector"] = merge(SELECTOR_PARTS[part_a], SELECTOR_PARTS[part_b])
    ranges, countries, mfa, zone, timed = draw(where)
    conditions = {
        "sourceRanges": half_empty(CIDRS, ranges),
        "countries": half_empty(COUNTRIES, countries),
        "requireMFA": bool(mfa),
        "timeZone": ZONES[zone],
        "timeWindows": [{"days": subset(WEEKDAYS, days + 1), "start": WINDOW_BOUNDS[b][0],
                         "end": WINDOW_BOUNDS[b][1]}
                        for days, b in (draw(windows) if timed == 3 else [])],
    }
    act, priority, mod = draw(meta)
    return AccessPolicySpec.model_validate({
        "subjects": subjects, "apps": apps,
        "action": action or ACTIONS[act], "priority": PRIORITIES[priority],
        "mode": mode or MODES[mod], "conditions": conditions,
        "sessionControls": session_controls(*draw(controls_digits)),
    }, by_alias=True)


def as_policy(spec: AccessPolicySpec, name: str) -> Policy:
    return Resource(kind="AccessPolicy", name=name, namespace="ns", uid="", spec=spec)


@st.composite
def policy_lists(draw: st.DrawFn) -> list[Policy]:
    drawn = draw(st.lists(specs(), max_size=6))
    # Names in an order unrelated to the list order, so sorting by name is really tested.
    numbers = draw(st.permutations(range(len(drawn))))
    return [as_policy(spec, f"policy-{n}") for spec, n in zip(drawn, numbers, strict=True)]


def one_policy(action: str | None = None, mode: str | None = None,
               name: str = "extra") -> st.SearchStrategy[Policy]:
    return specs(action=action, mode=mode).map(lambda spec: as_policy(spec, name))


requests = st.builds(
    Request,
    user=st.sampled_from(USERS),
    groups=st.integers(0, 15).map(lambda mask: frozenset(subset(GROUPS, mask))),
    source_ip=st.sampled_from(IPS),
    country=st.none() | st.sampled_from(COUNTRIES),
    mfa=st.booleans(),
    time=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31),
                      timezones=st.just(UTC)),
)
APP_LABELS: list[dict[str, str]] = (
    [{}]
    + [{k: v} for k in LABEL_KEYS for v in LABEL_VALUES]
    + [{"tier": t, "data": "patient"} for t in LABEL_VALUES]
)
apps = st.tuples(st.sampled_from(APP_NAMES), st.sampled_from(APP_LABELS))


def decide(policies: list[Policy], app: tuple[str, dict[str, str]], req: Request) -> AccessDecision:
    return evaluate(policies, app[0], app[1], req)


def applying(policies: list[Policy], app: tuple[str, dict[str, str]], req: Request,
             action: str) -> set[str]:
    """Enforced policies of `action` that cover the app and apply: computed from the
    building blocks, independently of how evaluate() combines them."""
    return {p.name for p in policies
            if p.spec.mode == "enforce" and p.spec.action == action
            and app_selected(p.spec, *app) and policy_applies(p, req)[0]}


@PROPERTY
@given(policy_lists(), apps, requests)
def test_deny_always_wins(policies: list[Policy], app: Any, req: Request) -> None:
    decision = decide(policies, app, req)
    denies = applying(policies, app, req, "deny")
    if denies:
        assert not decision.allowed
        assert set(decision.decided_by) == denies
    else:
        assert decision.allowed == bool(applying(policies, app, req, "allow"))


@PROPERTY
@given(policy_lists(), apps, requests, st.data())
def test_input_order_never_matters(policies: list[Policy], app: Any, req: Request,
                                   data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(policies))
    assert decide(shuffled, app, req) == decide(policies, app, req)
    assert who_can_open(shuffled, *app) == who_can_open(policies, *app)


@PROPERTY
@given(policy_lists(), apps, requests, one_policy(action="allow"))
def test_adding_an_allow_never_removes_access(policies: list[Policy], app: Any, req: Request,
                                              allow: Policy) -> None:
    if decide(policies, app, req).allowed:
        assert decide([*policies, allow], app, req).allowed


@PROPERTY
@given(policy_lists(), apps, requests, one_policy(action="deny"))
def test_adding_a_deny_never_grants_access(policies: list[Policy], app: Any, req: Request,
                                           deny: Policy) -> None:
    if decide([*policies, deny], app, req).allowed:
        assert decide(policies, app, req).allowed


@PROPERTY
@given(policy_lists(), apps, requests, one_policy(mode="dryRun"))
def test_dry_run_policies_never_change_the_decision(policies: list[Policy], app: Any,
                                                    req: Request, trial: Policy) -> None:
    before = decide(policies, app, req).outcome
    assert decide([*policies, trial], app, req).outcome == before
    enforced_only = [p for p in policies if p.spec.mode == "enforce"]
    assert decide(enforced_only, app, req).outcome == before


@PROPERTY
@given(policy_lists(), apps, requests)
def test_every_decision_names_a_policy_or_says_none_matched(policies: list[Policy], app: Any,
                                                            req: Request) -> None:
    decision = decide(policies, app, req)
    assert decision.decided_by or "no policy matched" in decision.reason
    by_name = {m.policy: m for m in decision.matches}
    for name in decision.decided_by:
        assert by_name[name].applies and by_name[name].enforced
    ranks = [(-m.priority, m.policy) for m in decision.matches]
    assert ranks == sorted(ranks)


@PROPERTY
@given(policy_lists(), apps, requests)
def test_controls_are_the_most_restrictive_of_the_allows(policies: list[Policy], app: Any,
                                                         req: Request) -> None:
    decision = decide(policies, app, req)
    if decision.controls is None:
        return
    grants = [p.spec.session_controls for p in policies if p.name in decision.decided_by]
    for name, default in PERMISSION_DEFAULTS.items():
        values = {getattr(g, name) for g in grants} - {None}
        expected = (True in values and False not in values) if values else default
        assert getattr(decision.controls, name) is expected, name
    for name in ("recording", "watermark"):
        assert getattr(decision.controls, name) is any(getattr(g, name) for g in grants)
    idle = [parse_duration(g.idle_timeout).total_seconds() for g in grants if g.idle_timeout]
    assert decision.controls.idle_timeout_seconds == (min(idle) if idle else None)


@PROPERTY
@given(policy_lists(), apps, st.data())
def test_route_access_is_order_independent(policies: list[Policy], app: Any,
                                           data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(policies))
    assert route_access(shuffled, *app) == route_access(policies, *app)


@PROPERTY
@given(policy_lists(), apps, requests)
def test_route_never_blocks_an_allowed_request(policies: list[Policy], app: Any,
                                               req: Request) -> None:
    """The static fence is necessary, never stricter than the decision it fronts."""
    if not decide(policies, app, req).allowed:
        return
    access = route_access(policies, *app)
    assert access.open
    assert req.user in access.allowed_users or req.groups & set(access.allowed_groups)
    if access.source_ranges:
        assert any(normalise_ip(req.source_ip) in ip_network(r) for r in access.source_ranges)
    assert req.mfa or not access.require_mfa


@PROPERTY
@given(policy_lists(), st.lists(apps, min_size=1, max_size=8))
def test_memoised_coverage_equals_checking_each_app(policies: list[Policy],
                                                    some_apps: list[Any]) -> None:
    """PolicySet and LabelGroups answer per label set; the answer per app is unchanged."""
    policy_set = PolicySet(policies)
    for _ in range(2):  # the second round answers from the memo
        for name, labels in some_apps:
            naive = sorted((p for p in policies if app_selected(p.spec, name, labels)),
                           key=lambda p: (-p.spec.priority, p.name))
            assert covering(policy_set, name, labels) == naive
            assert route_access(policy_set, name, labels) == route_access(policies, name,
                                                                          labels)
            assert access_for(policy_set, name, labels) == access_for(policies, name, labels)
            assert app_session_config(policy_set, name, labels) == app_session_config(
                policies, name, labels)
    # Grouped one event at a time (the watch handlers' way), each app appearing, then
    # relabelled as the next one is, then some going: the same answer as grouping anew.
    grouped = GroupedLabels()
    live: dict[str, Any] = {}
    for (name, labels), (_, relabel) in zip(some_apps, some_apps[1:] + some_apps[:1],
                                            strict=True):
        grouped.move(name, live.get(name), labels)
        live[name] = labels
        grouped.move(name, live[name], relabel)
        live[name] = relabel
    for name in list(live)[::2]:
        grouped.move(name, live.pop(name), None)
    for groups in (LabelGroups(some_apps), grouped.frozen()):
        final = some_apps if groups is not grouped.frozen() else list(live.items())
        for p in policies:
            assert groups.covered_by(p.spec.apps) == sorted(
                {name for name, labels in final if app_selected(p.spec, name, labels)})


# --- holes closed in the portal round (issue 14) ---------------------------------------

@PROPERTY
@given(policy_lists(), apps, requests)
def test_evaluating_a_policy_set_equals_evaluating_the_list(policies: list[Policy], app: Any,
                                                            req: Request) -> None:
    """The portal evaluates PolicySets (covering kept per label set): same decision."""
    policy_set = PolicySet(policies)
    for _ in range(2):
        assert decide(policy_set, app, req) == decide(policies, app, req)


@PROPERTY
@given(policy_lists(), apps, requests)
def test_baseline_controls_are_never_looser_than_any_admitted_request(
        policies: list[Policy], app: Any, req: Request) -> None:
    """What the hosts apply before they know which grant admitted a session must be at
    least as strict as the controls of every request the policies allow."""
    decision = decide(policies, app, req)
    if decision.controls is None:
        return
    baseline = app_session_config(policies, *app)["baselineControls"]
    got = decision.controls.wire()
    for name in ("clipboardToHost", "clipboardToClient", "fileUpload", "fileDownload",
                 "printing"):
        assert not baseline[name] or got[name], name  # baseline on => request on
    for name in ("recording", "watermark"):
        assert baseline[name] or not got[name], name  # request on => baseline on
    for name in ("idleTimeoutSeconds", "maxSessionSeconds"):
        if got[name] is not None:
            assert baseline[name] is not None and baseline[name] <= got[name], name


@PROPERTY
@given(policy_lists(), apps, requests)
def test_every_deny_that_refuses_an_allowed_subject_is_listed_against_the_allow(
        policies: list[Policy], app: Any, req: Request) -> None:
    """who-can-open names every enforced deny that can refuse someone an allow admits:
    here a request both an allow and a deny apply to (a user in both groups, say)."""
    allows = applying(policies, app, req, "allow")
    denies = applying(policies, app, req, "deny")
    rows = {row.policy: row for row in who_can_open(policies, *app)}
    for allow in allows:
        listed = {label.split(" (")[0] for label in rows[allow].overridable_by}
        assert denies <= listed, (allow, denies, listed)


@PROPERTY
@given(policy_lists(), apps, requests)
def test_hints_say_mfa_exactly_when_mfa_is_what_an_applicable_allow_lacks(
        policies: list[Policy], app: Any, req: Request) -> None:
    from deskfleet.policy.hints import HINT_MFA, HINT_NOT_GRANTED, denial_hints

    decision = decide(policies, app, req)
    hints = denial_hints(decision)
    if decision.allowed:
        assert hints == ()
        return
    assert hints
    with_mfa = decide(policies, app, Request(req.user, req.groups, req.source_ip,
                                             req.country, True, req.time))
    if not req.mfa and with_mfa.allowed:
        assert HINT_MFA in hints  # step-up is always offered where it would help
    if HINT_NOT_GRANTED in hints:
        assert not with_mfa.allowed


@PROPERTY
@given(policy_lists(), requests)
def test_the_fast_checks_agree_with_the_explained_ones(policies: list[Policy],
                                                       req: Request) -> None:
    """The portal decides with `check_kinds` (no words); `explain` with `run_checks`."""
    from deskfleet.policy.conditions import check_kinds, run_checks

    for p in policies:
        assert check_kinds(p, req) == [(kind, ok) for kind, ok, _ in run_checks(p, req)]
