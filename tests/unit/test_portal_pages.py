"""The landing page and launches, in process: each user sees exactly the apps `evaluate`
lets them open now (plus those MFA would open, marked), user data renders inert, and a
launch on a pool without a ready host is counted as demand and waits."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from deskfleet.api.parse import parse
from deskfleet.policy import Request, evaluate
from deskfleet.portal.app import Portal, build_apps
from deskfleet.portal.pages import CONTENT_SECURITY_POLICY

from .portal_kit import FR_IP, GB_IP, Clock, example_bodies, make_portal, token, with_status

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Page(HTMLParser):
    """Tags and attributes of a page, to check what a browser would run."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def apps(self) -> set[str]:
        return {a["data-app"] or "" for t, a in self.tags if t == "li" and "data-app" in a}

    def classes_of(self, app: str) -> str:
        return next(a.get("class") or "" for t, a in self.tags
                    if t == "li" and a.get("data-app") == app)


async def serve(portal: Portal) -> AsyncIterator[TestClient[Any, Any]]:
    public, _ = build_apps(portal)
    async with TestClient(TestServer(public)) as client:
        yield client


def headers(tok: str, ip: str = GB_IP) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}", "X-Forwarded-For": ip}


def allowed_apps(user: str, groups: list[str], ip: str, country: str | None, mfa: bool,
                 clock: Clock, bodies: list[dict[str, Any]]) -> set[str]:
    policies = [parse(b) for b in bodies if b["kind"] == "AccessPolicy"]
    out = set()
    for body in bodies:
        if body["kind"] != "PublishedApp":
            continue
        name = body["metadata"]["name"]
        request = Request(user, frozenset(groups), ip, country, mfa, clock.now)
        if evaluate(policies, name, body["metadata"].get("labels", {}), request).allowed:
            out.add(f"northgate/{name}")
    return out


@pytest.mark.parametrize("user, groups, ip, country, mfa", [
    ("dr.patel@northgate.example", ["clinicians"], GB_IP, "GB", True),
    ("rad@northgate.example", ["radiologists"], GB_IP, "GB", True),
    ("dev@acme-supplier.example", ["contractors"], "203.0.113.7", None, True),
    ("dr.patel@northgate.example", ["clinicians"], FR_IP, "FR", True),
])
async def test_each_user_sees_exactly_the_apps_explain_allows(
        tmp_path: Path, user: str, groups: list[str], ip: str, country: str | None,
        mfa: bool) -> None:
    clock = Clock()
    portal = make_portal(tmp_path, clock)
    async for client in serve(portal):
        response = await client.get("/", headers=headers(token(user, groups, mfa), ip))
        assert response.status == 200
        page = Page(await response.text())
        expected = allowed_apps(user, groups, ip, country, mfa, clock, example_bodies())
        assert page.apps() == expected


async def test_apps_behind_mfa_are_marked_and_unready_pools_shown_unavailable(
        tmp_path: Path) -> None:
    bodies = with_status(example_bodies(), "pacs-viewer", readyHosts=0)
    portal = make_portal(tmp_path, bodies=bodies)
    async for client in serve(portal):
        no_mfa = Page(await (await client.get("/", headers=headers(
            token("dr.patel@northgate.example", ["clinicians"], mfa=False)))).text())
        assert "stepup" in no_mfa.classes_of("northgate/epr")
        radiologist = Page(await (await client.get("/", headers=headers(
            token("rad@northgate.example", ["radiologists"])))).text())
        assert "unavailable" in radiologist.classes_of("northgate/pacs")


async def test_user_data_renders_inert(tmp_path: Path) -> None:
    bodies = example_bodies()
    epr = next(b for b in bodies if b["metadata"]["name"] == "epr")
    hostile = copy.deepcopy(epr)
    hostile["metadata"].update(name="hostile", uid="uid-hostile")
    hostile["spec"].update({
        "displayName": "<script>alert('name')</script>",
        "description": '<img src=x onerror="alert(1)"><a href="javascript:alert(2)">x</a>',
        "category": "</section><script>alert(3)</script>",
        "icon": 'https://icons.example/x.png" onerror="alert(4)',
        "gateway": {**hostile["spec"]["gateway"], "path": "/hostile"},
    })
    svg = copy.deepcopy(hostile)
    svg["metadata"].update(name="svg-icon", uid="uid-svg-icon")
    svg["spec"]["icon"] = ("data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDUpIiB4bWxucz0"
                           "iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=")  # <svg onload=...>
    portal = make_portal(tmp_path, bodies=[*bodies, hostile, svg])
    async for client in serve(portal):
        response = await client.get("/", headers=headers(token()))
        text = await response.text()
        page = Page(text)
        assert {"northgate/hostile", "northgate/svg-icon"} <= page.apps()
        assert not [t for t, _ in page.tags if t == "script"]
        for _, attrs in page.tags:
            assert not [k for k in attrs if k.startswith("on")], attrs
            for key in ("href", "src"):
                assert not (attrs.get(key) or "").lower().startswith("javascript:"), attrs
        assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in text
        icons = [a["src"] for t, a in page.tags if t == "img"]
        assert all(src.startswith("data:image/svg+xml;base64,") for src in icons), icons
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        # The one inline stylesheet is exactly what the policy's hash allows.
        import base64
        import hashlib
        import re

        style = re.search(r"<style>(.*?)</style>", text, re.S)
        assert style is not None
        digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
        assert f"'sha256-{digest}'" in CONTENT_SECURITY_POLICY
        assert "script-src" not in CONTENT_SECURITY_POLICY  # default-src 'none' covers it


async def test_not_signed_in_goes_to_sign_in_and_back(tmp_path: Path) -> None:
    portal = make_portal(tmp_path)
    async for client in serve(portal):
        response = await client.get("/launch/northgate/epr", allow_redirects=False)
        assert response.status == 302
        assert response.headers["Location"] == (
            "https://workspace.northgate.example/oauth2/start?rd=https%3A%2F%2F"
            "workspace.northgate.example%2Flaunch%2Fnorthgate%2Fepr")


async def test_launch_opens_the_app_when_a_host_is_ready(tmp_path: Path) -> None:
    portal = make_portal(tmp_path)
    async for client in serve(portal):
        response = await client.get("/launch/northgate/epr", headers=headers(token()),
                                    allow_redirects=False)
        assert response.status == 302
        assert response.headers["Location"] == "https://workspace.northgate.example/epr"
        assert portal.stats.snapshot(0)["pools"]["northgate/ehr-web"] == {
            "launches": 1, "unserved": 0, "waiting": 0}


async def test_launch_on_a_pool_without_a_ready_host_waits_and_counts_demand(
        tmp_path: Path) -> None:
    clock = Clock()
    bodies = with_status(example_bodies(), "ehr-web", readyHosts=0, capacity=0, sessions=0)
    portal = make_portal(tmp_path, clock, bodies=bodies)
    async for client in serve(portal):
        for _ in range(3):  # the waiting page refreshes itself: one launch, one waiter
            response = await client.get("/launch/northgate/epr", headers=headers(token()),
                                        allow_redirects=False)
            assert response.status == 200
            assert 'http-equiv="refresh"' in await response.text()
        other = token("dr.jones@northgate.example", ["nurses"])
        await client.get("/launch/northgate/epr", headers=headers(other))
        assert portal.stats.snapshot(clock.mono)["pools"]["northgate/ehr-web"] == {
            "launches": 2, "unserved": 2, "waiting": 2}


async def test_a_refused_launch_says_why(tmp_path: Path) -> None:
    portal = make_portal(tmp_path)
    async for client in serve(portal):
        response = await client.get("/launch/northgate/epr", headers=headers(token(), FR_IP))
        assert response.status == 403
        assert "current network or country" in await response.text()
        assert "northgate/ehr-web" not in portal.stats.snapshot(0)["pools"]
