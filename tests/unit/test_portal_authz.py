"""The portal's authorization endpoint, in process: every answer is `evaluate`'s, or a
refusal when the portal cannot decide safely. The same questions through a real gateway
are asked in tests/cluster/test_portal_gateway.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from deskfleet import contracts
from deskfleet.policy import Request, evaluate
from deskfleet.portal import metrics as m
from deskfleet.portal.app import Portal, build_apps
from deskfleet.portal.directory import Directory

from .portal_kit import (
    FR_IP,
    GB_IP,
    OTHER_KEY,
    Clock,
    example_bodies,
    fill,
    make_portal,
    token,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def serve(portal: Portal) -> AsyncIterator[TestClient[Any, Any]]:
    public, _ = build_apps(portal)
    async with TestClient(TestServer(public)) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def portal(tmp_path: Path, clock: Clock) -> Portal:
    return make_portal(tmp_path, clock)


@pytest_asyncio.fixture
async def client(portal: Portal) -> AsyncIterator[TestClient[Any, Any]]:
    async for c in serve(portal):
        yield c


def auth(tok: str, ip: str = GB_IP, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}", "X-Forwarded-For": ip, **headers}


def audit_lines(portal: Portal) -> list[dict[str, Any]]:
    path = Path(portal.settings.audit_log) if portal.settings.audit_log != "-" else None
    target = path or Path(portal.audit._out.name)  # the kit writes to a file
    return [json.loads(line) for line in target.read_text().splitlines()]


async def test_allowed_request_gets_the_identity_and_controls_headers(
        client: TestClient[Any, Any], portal: Portal) -> None:
    response = await client.get("/authz/northgate/epr", headers=auth(token()))
    assert response.status == 200
    assert response.headers[contracts.USER_HEADER] == "dr.patel@northgate.example"
    assert json.loads(response.headers[contracts.GROUPS_HEADER]) == ["clinicians"]
    assert response.headers[contracts.MFA_HEADER] == "true"
    controls = json.loads(response.headers[contracts.CONTROLS_HEADER])
    assert controls["clipboardToClient"] is False and controls["watermark"] is True
    assert response.headers[contracts.POLICIES_HEADER] == "clinicians-home-mfa"
    line = audit_lines(portal)[-1]
    assert line["decision"] == "allow" and line["country"] == "GB"
    assert line["decidedBy"] == ["clinicians-home-mfa"]
    assert line["requestId"] == response.headers[contracts.REQUEST_ID_HEADER]


async def test_every_answer_is_the_one_explain_gives(client: TestClient[Any, Any],
                                                     clock: Clock) -> None:
    """A grid of users, networks, MFA and times: the endpoint allows exactly what
    `evaluate` (what `deskfleet explain` prints) allows, with the same controls."""
    from deskfleet.api.parse import parse

    bodies = example_bodies()
    policies = [parse(b) for b in bodies if b["kind"] == "AccessPolicy"]
    labels = {b["metadata"]["name"]: b["metadata"].get("labels", {})
              for b in bodies if b["kind"] == "PublishedApp"}
    people = [("dr.patel@northgate.example", ["clinicians"]),
              ("dev@acme-supplier.example", ["contractors"]),
              ("rad@northgate.example", ["radiologists"]),
              ("both@northgate.example", ["clinicians", "contractors"])]
    asked = 0
    for user, groups in people:
        for ip, country in ((GB_IP, "GB"), (FR_IP, "FR"), ("203.0.113.7", None)):
            for mfa in (True, False):
                for when in ("2026-11-24T10:15:00+00:00", "2026-11-24T22:00:00+00:00"):
                    clock.now = datetime.fromisoformat(when)
                    for app in ("epr", "finance", "pacs", "rota"):
                        answer = await client.get(f"/authz/northgate/{app}", headers=auth(
                            token(user, groups, mfa), ip))
                        expected = evaluate(policies, app, labels[app], Request(
                            user, frozenset(groups), ip, country, mfa, clock.now))
                        assert (answer.status == 200) == expected.allowed, (user, ip, app)
                        if expected.allowed:
                            assert expected.controls is not None
                            got = json.loads(answer.headers[contracts.CONTROLS_HEADER])
                            assert got == expected.controls.wire()
                        else:
                            assert answer.status == 403
                        asked += 1
    assert asked == 4 * 3 * 2 * 2 * 4


async def test_denied_page_says_what_to_do_without_naming_policies(
        client: TestClient[Any, Any]) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml"}
    response = await client.get("/authz/northgate/epr", headers=auth(token(mfa=False),
                                                                      **browser))
    assert response.status == 403
    page = await response.text()
    assert "multi-factor" in page and "Sign in with MFA" in page  # step-up offered
    assert "clinicians-home-mfa" not in page and "GB" not in page
    abroad = await client.get("/authz/northgate/epr", headers=auth(token(), FR_IP, **browser))
    assert "current network or country" in await abroad.text()
    assert "Sign in with MFA" not in await abroad.text()  # MFA would not help
    # A script's request (no page wanted) gets the status and a line, not a page.
    script = await client.get("/authz/northgate/epr", headers=auth(token(), FR_IP))
    assert script.status == 403 and await script.text() == "deny\n"


async def test_not_signed_in_is_401_with_the_way_to_sign_in(
        client: TestClient[Any, Any]) -> None:
    response = await client.get("/authz/northgate/epr", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "workspace.northgate.example",
        "X-Forwarded-Uri": "/epr/chart?id=7"})
    assert response.status == 401
    page = await response.text()
    assert ("oauth2/start?rd=https%3A%2F%2Fworkspace.northgate.example%2Fepr%2Fchart"
            "%3Fid%3D7") in page


async def test_an_expired_token_is_a_sign_in_not_an_alarm(
        client: TestClient[Any, Any]) -> None:
    before = m.FAIL_CLOSED.labels("token-expired")._value.get()
    response = await client.get("/authz/northgate/epr", headers=auth(token(lifetime=-3600)))
    assert response.status == 401
    assert m.FAIL_CLOSED.labels("token-expired")._value.get() == before


@pytest.mark.parametrize("make_token, why", [
    (lambda: token(key=OTHER_KEY), "bad signature"),
    (lambda: token(iss="https://evil.example"), "wrong issuer"),
    (lambda: token(aud="someone-else"), "wrong audience"),
    (lambda: "not.a.token", "garbage"),
])
async def test_bad_tokens_are_refused_and_counted(client: TestClient[Any, Any],
                                                  make_token: Any, why: str) -> None:
    before = m.FAIL_CLOSED.labels("token-invalid")._value.get()
    response = await client.get("/authz/northgate/epr", headers=auth(make_token()))
    assert response.status == 401, why
    assert m.FAIL_CLOSED.labels("token-invalid")._value.get() == before + 1


async def test_identity_headers_from_a_client_are_not_identity(
        client: TestClient[Any, Any]) -> None:
    """The gateway is a trusted proxy for X-Forwarded-For, but identity headers are only
    believed when the platform turned them on: a forged one gets a sign-in, not access."""
    response = await client.get("/authz/northgate/epr", headers={
        "X-Auth-Request-User": "dr.patel@northgate.example",
        "X-Auth-Request-Email": "dr.patel@northgate.example",
        "X-Auth-Request-Groups": "clinicians", "X-Forwarded-For": GB_IP,
        contracts.USER_HEADER: "dr.patel@northgate.example"})
    assert response.status == 401


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    portal = make_portal(tmp_path, trusted_proxies=["10.0.0.0/8"])
    async for client in serve(portal):
        # The client claims a GB address; its real address (loopback) has no country,
        # and an allow that needs GB fails closed on an unknown country.
        response = await client.get("/authz/northgate/epr", headers=auth(token()))
        assert response.status == 403
        assert audit_lines(portal)[-1]["clientIP"] == "127.0.0.1"


@pytest.mark.parametrize("path, reason", [
    ("/authz/northgate/no-such-app", "unknown-app"),
    ("/authz/elsewhere/epr", "unknown-app"),
])
async def test_unknown_apps_fail_closed(client: TestClient[Any, Any], path: str,
                                        reason: str) -> None:
    before = m.FAIL_CLOSED.labels(reason)._value.get()
    response = await client.get(path, headers=auth(token()))
    assert response.status == 403
    assert m.FAIL_CLOSED.labels(reason)._value.get() == before + 1


async def test_no_data_and_stale_data_fail_closed(tmp_path: Path, clock: Clock) -> None:
    empty = make_portal(tmp_path, clock, bodies=[])
    empty.directory = Directory()  # nothing listed yet
    async for client in serve(empty):
        response = await client.get("/authz/northgate/epr", headers=auth(token()))
        assert response.status == 503
    portal = make_portal(tmp_path, clock)
    async for client in serve(portal):
        assert (await client.get("/authz/northgate/epr", headers=auth(token()))).status == 200
        clock.mono += 121  # no watch has proved itself for longer than the bound
        response = await client.get("/authz/northgate/epr", headers=auth(token()))
        assert response.status == 503
        assert audit_lines(portal)[-1]["reason"] == "stale-data"


async def test_a_deny_that_cannot_be_read_refuses_the_apps_it_may_cover(
        tmp_path: Path) -> None:
    bodies = example_bodies()
    broken = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
              "metadata": {"name": "deny-broken", "namespace": "northgate", "uid": "u"},
              "spec": {"action": "deny", "subjects": {"groups": ["clinicians"]},
                       "apps": {"names": ["epr"]},
                       "conditions": {"timeZone": "Mars/Olympus_Mons",
                                      "timeWindows": [{"start": "00:00", "end": "24:00"}]}}}
    portal = make_portal(tmp_path, bodies=[*bodies, broken])
    async for client in serve(portal):
        assert (await client.get("/authz/northgate/epr", headers=auth(token()))).status == 403
        assert audit_lines(portal)[-1]["reason"] == "unreadable-policy"
        # ...and only those: another app is decided as usual.
        rota = await client.get("/authz/northgate/rota", headers=auth(token()))
        assert audit_lines(portal)[-1]["reason"] != "unreadable-policy", rota.status


async def test_an_internal_error_fails_closed(client: TestClient[Any, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import deskfleet.portal.app as app_module

    def broken(*_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "authorize", broken)
    before = m.FAIL_CLOSED.labels("error")._value.get()
    response = await client.get("/authz/northgate/epr", headers=auth(token()))
    assert response.status == 503
    assert m.FAIL_CLOSED.labels("error")._value.get() == before + 1


async def test_dry_run_differences_are_counted_per_policy(tmp_path: Path) -> None:
    """trial-consultants-abroad (dry run) would let consultants in from FR."""
    portal = make_portal(tmp_path)
    async for client in serve(portal):
        consultant = token("locum@northgate.example", ["on-call-consultants"])
        response = await client.get("/authz/northgate/epr", headers=auth(consultant, FR_IP))
        assert response.status == 403
        line = audit_lines(portal)[-1]
        assert line["dryRun"]["wouldChange"] is True
        stats = portal.stats.snapshot(0)["policies"]["northgate/trial-consultants-abroad"]
        assert stats == {"evaluated": 1, "wouldChange": 1}


async def test_envoy_style_paths_carry_the_app_before_the_original_path(
        client: TestClient[Any, Any]) -> None:
    response = await client.post("/authz/northgate/epr/epr/api/orders",
                                 headers=auth(token()))
    assert response.status == 200


async def test_fill_is_level_based(tmp_path: Path, clock: Clock) -> None:
    """A re-list replaces what the portal knew: an app deleted meanwhile is gone."""
    portal = make_portal(tmp_path, clock)
    bodies = [b for b in example_bodies() if b["metadata"]["name"] != "epr"]
    fill(portal.directory, bodies, clock.monotonic())
    async for client in serve(portal):
        assert (await client.get("/authz/northgate/epr", headers=auth(token()))).status == 403

