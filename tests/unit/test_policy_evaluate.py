"""Access-policy evaluation against the example policies, with realistic requests.

The policies are examples/30-policies.yaml and the apps' labels examples/20-apps.yaml,
parsed exactly as the operator parses them, so a change to the examples that changes
who may open what shows up here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from deskfleet.api.accesspolicy import AccessPolicySpec, SessionControls
from deskfleet.api.parse import parse
from deskfleet.policy import (
    AccessDecision,
    Controls,
    Request,
    app_selected,
    evaluate,
    policy_applies,
    route_access,
    who_can_open,
)
from deskfleet.policy.controls import combine_controls
from deskfleet.policy.explain import (
    decision_to_dict,
    format_decision,
    format_seconds,
    format_who_can_open,
)
from deskfleet.render.meta import Resource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LONDON = ZoneInfo("Europe/London")


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


POLICIES = [parse(d) for d in _documents("30-policies.yaml")]
APPS = {d["metadata"]["name"]: d["metadata"].get("labels", {})
        for d in _documents("20-apps.yaml")}

HOME_GB = "81.2.69.160"
SUPPLIER = "203.0.113.7"
TUESDAY_10 = "2026-03-10T10:00"  # London is on GMT then


def request(user: str = "dr.ahmed", groups: tuple[str, ...] = ("clinicians",),
            ip: str = HOME_GB, country: str | None = "GB", mfa: bool = True,
            time: str = TUESDAY_10) -> Request:
    when = datetime.fromisoformat(time)
    if when.tzinfo is None:
        when = when.replace(tzinfo=LONDON)
    return Request(user=user, groups=frozenset(groups), source_ip=ip, country=country,
                   mfa=mfa, time=when)


def decide(app: str, req: Request) -> AccessDecision:
    return evaluate(POLICIES, app, APPS[app], req)


def policy(spec: dict[str, Any], name: str = "p") -> Resource[AccessPolicySpec]:
    return Resource(kind="AccessPolicy", name=name, namespace="northgate", uid="",
                    spec=AccessPolicySpec.model_validate(spec, by_alias=True))


CONTRACTOR: dict[str, Any] = {"user": "sam@supplier", "groups": ("contractors",), "ip": SUPPLIER}


@dataclass(frozen=True)
class Case:
    id: str
    app: str
    req: Request
    allowed: bool
    decided_by: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # each must appear among the matches' reasons
    dry_run_changes: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("clinician at home in GB with MFA on epr", "epr", request(), True,
         ("clinicians-home-mfa",), ("group clinicians listed", "country GB in [GB]")),
    Case("clinician abroad in FR", "epr", request(country="FR", ip="90.1.2.3"), False,
         reasons=("country FR not in [GB]",)),
    Case("clinician without MFA", "epr", request(mfa=False), False,
         reasons=("MFA required, not done",)),
    Case("clinician, geo-IP unknown", "epr", request(country=None), False,
         reasons=("country unknown, needs [GB]",)),
    Case("clinician from KP", "epr", request(country="KP", ip="175.45.176.1"), False,
         ("deny-unexpected-country",), ("country KP in [BY, KP, RU]",)),
    Case("contractor at 22:00 London time", "rota",
         request(**CONTRACTOR, time="2026-03-10T22:00"), False,
         reasons=("Tue 22:00 Europe/London outside Mon-Fri 08:00-18:00",)),
    Case("contractor at 10:00 from 203.0.113.7", "rota", request(**CONTRACTOR), True,
         ("contractors-business-hours",), ("source 203.0.113.7 in 203.0.113.0/24",)),
    Case("contractor from home network", "rota",
         request(**{**CONTRACTOR, "ip": "198.51.100.9"}), False,
         reasons=("source 198.51.100.9 not in [203.0.113.0/24]",)),
    Case("contractor on Saturday", "rota", request(**CONTRACTOR, time="2026-03-14T10:00"),
         False, reasons=("Sat 10:00 Europe/London outside Mon-Fri 08:00-18:00",)),
    Case("contractor at 08:00, start inclusive", "intranet",
         request(**CONTRACTOR, time="2026-03-10T08:00"), True, ("contractors-business-hours",)),
    Case("contractor at 17:59:59", "intranet",
         request(**CONTRACTOR, time="2026-03-10T17:59:59"), True,
         ("contractors-business-hours",)),
    Case("contractor at 18:00, end exclusive", "intranet",
         request(**CONTRACTOR, time="2026-03-10T18:00"), False),
    Case("contractor 07:30 UTC in summer is 08:30 BST", "finance",
         request(**CONTRACTOR, time="2026-07-07T07:30+00:00"), True,
         ("contractors-business-hours",), ("Tue 08:30 Europe/London within Mon-Fri 08:00-18:00",)),
    Case("contractor 17:30 UTC in summer is 18:30 BST", "finance",
         request(**CONTRACTOR, time="2026-07-07T17:30+00:00"), False),
    Case("contractor via dual-stack gateway", "rota",
         request(**{**CONTRACTOR, "ip": "::ffff:203.0.113.7"}), True,
         ("contractors-business-hours",)),
    Case("contractor on the EPR", "epr", request(**CONTRACTOR), False,
         reasons=("user sam@supplier and groups [contractors] not in subjects",)),
    Case("contractor in hours from KP: deny beats allow", "rota",
         request(**CONTRACTOR, country="KP"), False, ("deny-unexpected-country",)),
    Case("on-call consultant abroad (dry-run only)", "epr",
         request(user="dr.okafor", groups=("on-call-consultants",), country="FR"), False,
         dry_run_changes=True),
    Case("on-call consultant on an app the trial does not cover", "rota",
         request(user="dr.okafor", groups=("on-call-consultants",)), False),
    Case("clinician and on-call consultant at home", "epr",
         request(groups=("clinicians", "on-call-consultants")), True, ("clinicians-home-mfa",),
         dry_run_changes=True),
    Case("radiologist on PACS", "pacs", request(groups=("radiologists",)), True,
         ("radiology",)),
    Case("clinician on PACS", "pacs", request(), False),
    Case("clinician who is also a contractor, on the rota", "rota",
         request(**{**CONTRACTOR, "groups": ("clinicians", "contractors")}), True,
         ("clinicians-home-mfa", "contractors-business-hours")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_example_requests(case: Case) -> None:
    decision = decide(case.app, case.req)
    assert decision.allowed is case.allowed, format_decision(decision, case.req)
    assert decision.decided_by == case.decided_by
    assert (decision.controls is not None) is case.allowed
    if not decision.decided_by:
        assert "no policy matched" in decision.reason
    every_reason = {r for m in decision.matches for r in m.reasons}
    for reason in case.reasons:
        assert reason in every_reason, format_decision(decision, case.req)
    assert decision.dry_run_would_change is case.dry_run_changes


def _controls(**overrides: Any) -> Controls:
    base: dict[str, Any] = dict(clipboard_to_host=True, clipboard_to_client=False,
                                file_upload=False, file_download=False, printing=False,
                                recording=False, watermark=False)
    return Controls(**{**base, **overrides})


CONTROL_CASES = [
    ("clinician", "epr", request(),
     _controls(file_upload=True, watermark=True, idle_timeout_seconds=1800,
               max_session_seconds=12 * 3600)),
    ("contractor", "rota", request(**CONTRACTOR),
     _controls(clipboard_to_host=False, recording=True, watermark=True,
               idle_timeout_seconds=900, max_session_seconds=8 * 3600)),
    # Radiology leaves clipboardToHost and fileUpload unset: the secure defaults apply.
    ("radiologist", "pacs", request(groups=("radiologists",)),
     _controls(printing=True, idle_timeout_seconds=3600)),
    # Most restrictive of both: the contractor policy's false vetoes the clinicians' true.
    ("clinician+contractor", "rota",
     request(**{**CONTRACTOR, "groups": ("clinicians", "contractors")}),
     _controls(clipboard_to_host=False, recording=True, watermark=True,
               idle_timeout_seconds=900, max_session_seconds=8 * 3600)),
]


@pytest.mark.parametrize(("who", "app", "req", "expected"), CONTROL_CASES,
                         ids=[c[0] for c in CONTROL_CASES])
def test_effective_controls(who: str, app: str, req: Request, expected: Controls) -> None:
    assert decide(app, req).controls == expected


def test_dry_run_outcome_is_reported_not_enforced() -> None:
    decision = decide("epr", request(groups=("clinicians", "on-call-consultants")))
    assert decision.dry_run is not None
    assert decision.dry_run.decided_by == ("clinicians-home-mfa", "trial-consultants-abroad")
    assert decision.dry_run.controls is not None and decision.dry_run.controls.recording
    assert decision.controls is not None and not decision.controls.recording
    trial = next(m for m in decision.matches if m.policy == "trial-consultants-abroad")
    assert trial.applies and trial.mode == "dryRun"


def test_matches_are_in_priority_order_and_list_only_covering_policies() -> None:
    decision = decide("epr", request())
    assert [m.policy for m in decision.matches] == [
        "deny-unexpected-country", "clinicians-home-mfa", "trial-consultants-abroad"]
    assert decision.not_covering == ("contractors-business-hours", "radiology")


SELECTION_CASES: list[tuple[dict[str, Any], str, dict[str, str], bool]] = [
    ({"names": ["epr"]}, "epr", {}, True),
    ({"names": ["epr"]}, "rota", {"tier": "clinical"}, False),
    ({"selector": {}}, "anything", {}, True),
    ({"selector": {"matchLabels": {"tier": "clinical"}}}, "epr", APPS["epr"], True),
    ({"selector": {"matchLabels": {"tier": "clinical"}}}, "rota", APPS["rota"], False),
    ({"selector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["clinical", "office"]}]}},
     "pacs", APPS["pacs"], False),
    ({"selector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["office"]}]}}, "x", {}, False),
    ({"selector": {"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["radiology"]}]}}, "x", {}, True),
    ({"selector": {"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["radiology"]}]}},
     "pacs", APPS["pacs"], False),
    ({"selector": {"matchExpressions": [{"key": "data", "operator": "Exists"}]}},
     "epr", APPS["epr"], True),
    ({"selector": {"matchExpressions": [{"key": "data", "operator": "Exists"}]}},
     "rota", APPS["rota"], False),
    ({"selector": {"matchExpressions": [{"key": "data", "operator": "DoesNotExist"}]}},
     "rota", APPS["rota"], True),
    ({"selector": {"matchLabels": {"tier": "clinical"}, "matchExpressions": [
        {"key": "data", "operator": "DoesNotExist"}]}}, "epr", APPS["epr"], False),
    ({"names": ["finance"], "selector": {"matchLabels": {"tier": "radiology"}}},
     "finance", {}, True),
    ({"names": ["finance"], "selector": {"matchLabels": {"tier": "radiology"}}},
     "pacs", APPS["pacs"], True),
]


@pytest.mark.parametrize(("apps", "name", "labels", "expected"), SELECTION_CASES)
def test_app_selected(apps: dict[str, Any], name: str, labels: dict[str, str],
                      expected: bool) -> None:
    spec = AccessPolicySpec.model_validate({"subjects": {"groups": ["g"]}, "apps": apps})
    assert app_selected(spec, name, labels) is expected


def test_named_user_and_end_of_day_window() -> None:
    late = policy({"subjects": {"users": ["dr.patel"]}, "apps": {"names": ["epr"]},
                   "conditions": {"timeZone": "Europe/London", "timeWindows": [
                       {"days": ["Sat", "Sun"], "start": "20:00", "end": "24:00"}]}})
    patel = request(user="dr.patel", groups=(), time="2026-03-14T23:59")
    assert policy_applies(late, patel) == (
        True, ["user dr.patel listed", "Sat 23:59 Europe/London within Sat,Sun 20:00-24:00"])
    assert not policy_applies(late, request(user="dr.patel", time="2026-03-16T23:59"))[0]
    assert not policy_applies(late, request(user="dr.jones", time="2026-03-14T23:59"))[0]


COMBINE_CASES: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
    ([{}], {}),
    ([{"printing": True}, {}], {"printing": True}),
    ([{"printing": True}, {"printing": False}], {}),
    ([{"clipboardToHost": False}, {}], {"clipboard_to_host": False}),
    ([{"recording": False}, {"recording": True}], {"recording": True}),
    ([{"idleTimeout": "1h"}, {"idleTimeout": "45m"}, {}], {"idle_timeout_seconds": 2700}),
    ([{"maxSessionDuration": "1h30m"}], {"max_session_seconds": 5400}),
]


@pytest.mark.parametrize(("grants", "expected"), COMBINE_CASES)
def test_combine_controls(grants: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    controls = [SessionControls.model_validate(g, by_alias=True) for g in grants]
    assert combine_controls(controls) == _controls(**expected)


def test_route_access_from_examples() -> None:
    epr = route_access(POLICIES, "epr", APPS["epr"])
    assert (epr.open, epr.allowed_groups, epr.source_ranges, epr.require_mfa) == (
        True, ("clinicians", "junior-doctors", "nurses"), (), True)
    rota = route_access(POLICIES, "rota", APPS["rota"])
    # The clinicians' allow has no source ranges, so the route cannot restrict them.
    assert rota.allowed_groups == ("clinicians", "contractors", "junior-doctors", "nurses")
    assert rota.source_ranges == ()
    # An app only the contractors' policy covers is fenced to the supplier network.
    finance = route_access(POLICIES, "finance", {})
    assert (finance.allowed_groups, finance.source_ranges) == (
        ("contractors",), ("203.0.113.0/24",))
    assert not route_access(POLICIES, "lab-system", {"tier": "lab"}).open


def test_route_access_mapping() -> None:
    allow = {"apps": {"names": ["app"]}}
    policies = [
        policy({**allow, "subjects": {"groups": ["b"]},
                "conditions": {"sourceRanges": ["10.9.9.9/8", "2001:db8::/32"],
                               "requireMFA": True}}, "one"),
        policy({**allow, "subjects": {"groups": ["a"], "users": ["u"]},
                "conditions": {"sourceRanges": ["10.0.0.0/8", "192.0.2.0/24"]}}, "two"),
        policy({**allow, "subjects": {"groups": ["trial"]}, "mode": "dryRun"}, "dry"),
        policy({**allow, "subjects": {"groups": ["a"]}, "action": "deny",
                "conditions": {"sourceRanges": ["10.1.0.0/16"]}}, "deny"),
    ]
    access = route_access(policies, "app", {})
    assert access.allowed_groups == ("a", "b")
    assert access.allowed_users == ("u",)
    assert access.source_ranges == ("10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32")
    assert access.require_mfa is False  # "two" does not require it
    opened = policy({**allow, "subjects": {"groups": ["c"]}}, "anywhere")
    assert route_access([*policies, opened], "app", {}).source_ranges == ()


def test_who_can_open_epr() -> None:
    rows = who_can_open(POLICIES, "epr", APPS["epr"])
    assert [r.policy for r in rows] == ["clinicians-home-mfa"]  # the dry-run trial grants nothing
    assert rows[0].conditions == ("from countries GB", "MFA required")
    assert rows[0].overridable_by == ("deny-unexpected-country (from countries BY, KP, RU)",)
    text = format_who_can_open("rota", who_can_open(POLICIES, "rota", APPS["rota"]))
    assert "from 203.0.113.0/24; MFA required; Mon-Fri 08:00-18:00 (Europe/London)" in text
    assert "Nobody can open lab" in format_who_can_open("lab", [])


def test_explain_text_and_json() -> None:
    req = request(user="dr.okafor", groups=("on-call-consultants",), country="FR")
    decision = decide("epr", req)
    text = format_decision(decision, req)
    assert "Decision: DENIED to open epr" in text
    assert "no policy matched" in text
    assert "WOULD CHANGE this decision: allowed by trial-consultants-abroad" in text
    data = json.loads(json.dumps(decision_to_dict(decision, req)))
    assert data["allowed"] is False and data["decidedBy"] == []
    assert data["dryRun"]["wouldChange"] is True
    assert data["dryRun"]["controls"]["recording"] is True
    allowed = decide("epr", request())
    assert "clipboard to client  blocked" in format_decision(allowed)
    assert "idle timeout         30m" in format_decision(allowed)
    assert format_seconds(5400) == "1h30m" and format_seconds(None) == "no limit"


def test_bad_requests_and_decisions_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Request("u", frozenset(), HOME_GB, "GB", True, datetime(2026, 3, 10, 10))
    with pytest.raises(ValueError):
        Request("u", frozenset(), "not-an-ip", "GB", True, datetime(2026, 3, 10, tzinfo=UTC))
    with pytest.raises(ValueError, match="no policy matched"):
        AccessDecision(app="epr", allowed=False, controls=None, decided_by=(), matches=(),
                 reason="Denied.")


def test_a_deny_on_other_groups_is_listed_against_an_allow_its_members_may_share() -> None:
    """A person can be in `clinicians` and `locums`: a deny of locums refuses them even
    though the allow names only clinicians, so who-can-open and the hosts' config must
    show it (they once compared group names and missed it)."""
    from deskfleet.policy.enforcement import app_session_config

    allow = policy({"subjects": {"groups": ["clinicians"]}, "apps": {"names": ["epr"]}},
                   name="clinicians")
    deny = policy({"subjects": {"groups": ["locums", "agency"]}, "apps": {"names": ["epr"]},
                   "action": "deny"}, name="no-locums")
    both = request(groups=("clinicians", "locums"))
    assert not evaluate([allow, deny], "epr", {}, both).allowed
    rows = who_can_open([allow, deny], "epr", {})
    assert rows[0].overridable_by == ("no-locums (always)",)
    grants = app_session_config([allow, deny], "epr", {})["grants"]
    assert grants[0]["overridableBy"] == ["no-locums (always)"]


def test_baseline_controls_are_the_strictest_grant_not_the_combination() -> None:
    """A clinician admitted by `home` alone gets no clipboard-to-client (its default);
    the host's baseline must not say on because another grant, `office`, sets it."""
    from deskfleet.policy.enforcement import app_session_config

    home = policy({"subjects": {"groups": ["clinicians"]}, "apps": {"names": ["epr"]}},
                  name="home")
    office = policy({"subjects": {"groups": ["office"]}, "apps": {"names": ["epr"]},
                     "sessionControls": {"clipboardToClient": True, "idleTimeout": "1h"}},
                    name="office")
    baseline = app_session_config([home, office], "epr", {})["baselineControls"]
    assert baseline["clipboardToClient"] is False
    assert baseline["idleTimeoutSeconds"] == 3600
    alone = evaluate([home, office], "epr", {}, request(groups=("clinicians",)))
    assert alone.controls is not None and alone.controls.clipboard_to_client is False


def test_a_policy_set_rebuilt_for_a_new_policy_parses_only_that_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from deskfleet.policy import enforcement

    parsed: list[str] = []

    def counting(body: dict[str, Any]) -> Any:
        parsed.append(body["metadata"]["name"])
        return parse(body)

    monkeypatch.setattr(enforcement, "parse", counting)
    monkeypatch.setattr(enforcement, "_PARSED", {})

    def policy(i: int, generation: int = 1, **labels: str) -> dict[str, Any]:
        return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
                "metadata": {"name": f"p{i}", "namespace": "ward", "uid": f"u{i}",
                             "generation": generation, "labels": labels},
                "spec": {"subjects": {"groups": [f"g{i}"]}, "apps": {"selector": {}},
                         "priority": i}}

    bodies = [policy(i) for i in range(50)]
    first = enforcement.valid_policies(bodies, version=("policies", "ward", 50))
    assert len(first) == 50 and len(parsed) == 50
    bodies.append(policy(50))  # one more arrives: the version moves
    second = enforcement.valid_policies(bodies, version=("policies", "ward", 51))
    assert len(second) == 51 and parsed[50:] == ["p50"]
    bodies[3] = policy(3, generation=2)  # an edit, and a relabel: parsed again
    bodies[4] = policy(4, team="ward-7")
    third = enforcement.valid_policies(bodies, version=("policies", "ward", 52))
    assert parsed[51:] == ["p3", "p4"] and next(p for p in third if p.name == "p4").labels == {
        "team": "ward-7"}
    bad = policy(60)
    bad["spec"]["apps"] = {"names": ["Not A Name"]}  # only the operator can judge it
    assert len(enforcement.valid_policies([*bodies, bad], version=("p", "w", 53))) == 51
    enforcement.valid_policies([*bodies, bad], version=("p", "w", 54))
    assert parsed.count("p60") == 1  # an invalid one is remembered as such too
