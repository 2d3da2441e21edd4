"""The front door end to end, real parts only: the test bed's API server, the operator
and `deskfleet portal` as processes, Traefik reading the operator's HTTPRoutes,
Middlewares and Ingresses, oauth2-proxy and a test OIDC issuer, stand-in session hosts
on the pool's ClusterIP, headless Chromium. Every request goes through the gateway.

What it shows (issue 14): the gateway's answer equals `deskfleet explain`'s over a
matrix of users, groups, countries, networks, MFA, times, a deny, a dry-run policy,
forged identity headers and bad tokens; a published app is reachable within a measured
time and a deny refuses within a measured time; the landing page shows each user exactly
their apps; the portal's absence fails closed; dry-run status counts real requests.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deskfleet import contracts

from ..conftest import Bed, Operator, wait_until
from ..support.browser import chromium
from ..support.client import Response
from ..support.oidc_issuer import MFA_AMR, PASSWORD_AMR, TestUser
from ..support.traefik import Traefik
from ..support.workspace import HOST, Workspace, running_workspace

pytestmark = pytest.mark.cluster

USERS = (
    TestUser("patel", "dr.patel@northgate.example", ("clinicians",), MFA_AMR, "Dr Patel"),
    TestUser("jones", "nurse.jones@northgate.example", ("nurses",), PASSWORD_AMR,
             "Nurse Jones"),
    TestUser("dev", "dev@acme-supplier.example", ("contractors",), MFA_AMR, "Dev Supplier"),
    TestUser("rad", "rad@northgate.example", ("radiologists",), MFA_AMR, "Dr Rad"),
    TestUser("locum", "locum@northgate.example", ("on-call-consultants",), MFA_AMR, "Locum"),
    TestUser("both", "both@northgate.example", ("clinicians", "contractors"), MFA_AMR, "Both"),
    TestUser("porter", "porter@northgate.example", ("porters",), MFA_AMR, "Porter"),
)
BY_SUB = {u.sub: u for u in USERS}
GB, FR, KP, ELSEWHERE, SUPPLIER = "127.0.10.5", "127.0.20.5", "127.0.40.5", "127.0.50.5", \
    "127.0.30.5"
COUNTRY_OF = {GB: "GB", FR: "FR", KP: "KP", ELSEWHERE: None, SUPPLIER: None, "127.0.0.1": "GB"}
APPS = {"epr": "clinical", "finance": "office", "pacs": "radiology", "rota": "office"}


def window_around_now(open_now: bool) -> dict[str, Any]:
    """A daily UTC window that holds the present moment (or does not) for the next
    hour or so whenever the suite runs."""
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=2), now + timedelta(hours=2)
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    if open_now:
        lo = "00:00" if start.date() < now.date() else start.strftime("%H:%M")
        hi = "24:00" if end.date() > now.date() else end.strftime("%H:%M")
        return {"days": days, "start": lo, "end": hi}
    if end.date() == now.date() and end.hour < 23:  # after the open hours, same day
        return {"days": days, "start": end.strftime("%H:00"), "end": "24:00"}
    return {"days": days, "start": "00:00", "end": start.strftime("%H:00")}


def manifests(namespace: str, traefik: Traefik) -> list[dict[str, Any]]:
    def app(name: str, tier: str, **gateway: Any) -> dict[str, Any]:
        return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "PublishedApp",
                "metadata": {"name": name, "namespace": namespace, "labels": {"tier": tier}},
                "spec": {"displayName": name.upper(), "category": tier.title(),
                         "description": f"The {name} application.",
                         "poolRef": {"name": "desktops"},
                         "gateway": {"host": HOST, "path": f"/{name}", **gateway}}}

    def policy(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}

    parent = {"name": traefik.gateway, "namespace": traefik.namespace}
    return [
        {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
         "metadata": {"name": "desktops", "namespace": namespace},
         "spec": {"image": "registry.northgate.example/desktop:1", "protocol": "http",
                  "port": 8080, "sessionsPerHost": 20, "agent": {"enabled": False},
                  "scaling": {"minHosts": 1, "maxHosts": 2}}},
        *(app(name, tier, parentRef=parent) for name, tier in APPS.items()),
        # The legacy path: an Ingress read by Traefik's ingress-nginx provider.
        app("intranet", "office", ingressClassName="nginx"),
        policy("clinicians-home-mfa", subjects={"groups": ["clinicians", "nurses"]},
               apps={"selector": {"matchExpressions": [
                   {"key": "tier", "operator": "In", "values": ["clinical", "office"]}]}},
               priority=200, conditions={"countries": ["GB"], "requireMFA": True},
               sessionControls={"clipboardToClient": False, "watermark": True,
                                "idleTimeout": "30m"}),
        policy("radiology", subjects={"groups": ["radiologists"]},
               apps={"selector": {"matchLabels": {"tier": "radiology"}}}, priority=200,
               conditions={"countries": ["GB"], "requireMFA": True},
               sessionControls={"printing": True}),
        policy("contractors-open-hours", subjects={"groups": ["contractors"]},
               apps={"names": ["rota"]}, conditions={
                   "sourceRanges": ["127.0.30.0/24", "127.0.0.1/32"], "requireMFA": True,
                   "timeZone": "UTC", "timeWindows": [window_around_now(True)]},
               sessionControls={"clipboardToHost": False, "recording": True}),
        policy("contractors-closed-hours", subjects={"groups": ["contractors"]},
               apps={"names": ["finance"]}, conditions={
                   "sourceRanges": ["127.0.30.0/24"], "timeZone": "UTC",
                   "timeWindows": [window_around_now(False)]}),
        policy("no-contractors-on-finance", subjects={"groups": ["contractors"]},
               apps={"names": ["finance"]}, action="deny", priority=500),
        policy("deny-unexpected-country", subjects={"groups": [
            "clinicians", "nurses", "contractors", "radiologists", "on-call-consultants"]},
               apps={"selector": {}}, action="deny", priority=1000,
               conditions={"countries": ["KP"]}),
        policy("trial-consultants-abroad", subjects={"groups": ["on-call-consultants"]},
               apps={"names": ["epr"]}, mode="dryRun", conditions={"requireMFA": True}),
        policy("intranet-for-all", subjects={"groups": [
            "clinicians", "nurses", "contractors", "radiologists", "porters"]},
               apps={"names": ["intranet"]}),
    ]


@dataclass
class Stack:
    workspace: Workspace
    operator: Operator
    hosts: Any
    namespace: str


@pytest.fixture(scope="module")
def stack(bed: Bed, traefik: Traefik, gateway_bin: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from ..support.hosts import serve_service

    namespace = f"pg-{uuid.uuid4().hex[:6]}"
    bed.kubectl("create", "namespace", namespace)
    workdir = tmp_path_factory.mktemp("workspace")
    try:
        with running_workspace(bed, namespace, traefik, gateway_bin, workdir,
                               USERS) as workspace:
            operator = Operator(bed, namespace, workdir / "operator.log",
                                extra_env=workspace.operator_env)
            operator.start()
            try:
                bed.apply(manifests(namespace, traefik))
                wait_until(lambda: bed.get("service", "desktops", namespace), timeout=60,
                           what="the pool's Service")
                with serve_service(bed, namespace, "desktops", ["host-a"]) as hosts:
                    for app in [*APPS, "intranet"]:
                        wait_until(lambda a=app: ready(bed, namespace, a), timeout=90,
                                   what=f"{app} Ready")
                    # Traefik's ingress-nginx provider dials the ClusterIP only when told
                    # (EndpointSlices cannot hold loopback): a second field manager adds it.
                    bed.kubectl("annotate", "ingress", "intranet", "-n", namespace,
                                "nginx.ingress.kubernetes.io/service-upstream=true")
                    token = workspace.token("patel")
                    for path in ("/epr", "/intranet"):
                        traefik.wait_served(HOST, path, until=lambda r: r.status == 200,
                                            headers=bearer(token), source=GB)
                    yield Stack(workspace, operator, hosts, namespace)
            finally:
                operator.stop()
                crashes = [line for line in operator.logs().splitlines()
                           if "Traceback" in line]
                assert not crashes, operator.logs()[-5000:]
    finally:
        bed.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def ready(bed: Bed, namespace: str, app: str) -> bool:
    body = bed.get("papp", app, namespace) or {}
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (body.get("status") or {}).get("conditions", []))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def explain(bed: Bed, namespace: str, app: str, user: TestUser, ip: str, mfa: bool
            ) -> dict[str, Any]:
    """`deskfleet explain` against the cluster, as a security engineer runs it."""
    country = COUNTRY_OF[ip]
    args = [sys.executable, "-m", "deskfleet", "explain", "-n", namespace, "--app", app,
            "--user", user.email, "--ip", ip, "--json",
            *(a for g in user.groups for a in ("--group", g)),
            *(["--country", country] if country else []), *(["--mfa"] if mfa else [])]
    proc = subprocess.run(args, capture_output=True, text=True, env=bed.env, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


@dataclass(frozen=True)
class Case:
    user: str
    app: str
    source: str
    mfa: bool | None = None  # None: as the user signs in (their amr)


def matrix() -> list[Case]:
    cases = []
    for user in ("patel", "jones", "dev", "rad", "locum", "both", "porter"):
        for app in ("epr", "finance", "pacs", "rota", "intranet"):
            cases.append(Case(user, app, GB))
    cases += [Case("patel", "epr", FR), Case("patel", "epr", KP), Case("patel", "epr",
                                                                        ELSEWHERE),
              Case("patel", "epr", GB, mfa=False), Case("jones", "epr", GB, mfa=True),
              Case("dev", "rota", SUPPLIER), Case("dev", "rota", SUPPLIER, mfa=False),
              Case("dev", "finance", SUPPLIER), Case("dev", "rota", KP),
              Case("both", "finance", GB), Case("locum", "epr", FR),
              Case("rad", "pacs", FR), Case("porter", "intranet", KP)]
    return cases


def through_gateway(workspace: Workspace, case: Case) -> Response:
    claims = {} if case.mfa is None else {"amr": list(MFA_AMR if case.mfa else
                                                       PASSWORD_AMR)}
    token = workspace.token(case.user, **claims)
    return workspace.traefik.get(HOST, f"/{case.app}/page", source=case.source,
                                 headers=bearer(token))


def test_the_gateway_answers_what_explain_answers(bed: Bed, stack: Stack) -> None:
    workspace = stack.workspace
    cases = matrix()

    def expected(case: Case) -> dict[str, Any]:
        user = BY_SUB[case.user]
        mfa = ("mfa" in user.amr) if case.mfa is None else case.mfa
        return explain(bed, stack.namespace, case.app, user, case.source, mfa)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(expected, cases))
    checked = 0
    for case, want in zip(cases, answers, strict=True):
        before = len(stack.hosts.requests)
        got = through_gateway(workspace, case)
        if want["allowed"]:
            assert got.status == 200, (case, want["reason"], got.text)
            seen = stack.hosts.requests[-1]
            controls = [v for k, v in seen["headers"] if k == contracts.CONTROLS_HEADER]
            assert [json.loads(c) for c in controls] == [want["controls"]], case
            user = [v for k, v in seen["headers"] if k == contracts.USER_HEADER]
            assert user == [BY_SUB[case.user].email], case
        else:
            assert got.status == 403, (case, want["reason"], got.status, got.text)
            assert len(stack.hosts.requests) == before, f"refused {case} reached the host"
        checked += 1
    allowed = sum(a["allowed"] for a in answers)
    print(f"\n[portal-gateway] {checked} requests through Traefik matched deskfleet "
          f"explain: {allowed} allowed, {checked - allowed} denied")
    assert checked >= 40 and 5 <= allowed <= checked - 5


def test_forged_identity_and_bad_tokens_never_pass(stack: Stack) -> None:
    workspace, traefik = stack.workspace, stack.workspace.traefik
    before = len(stack.hosts.requests)
    forged = {"X-Auth-Request-User": "dr.patel@northgate.example",
              "X-Auth-Request-Email": "dr.patel@northgate.example",
              "X-Auth-Request-Groups": "clinicians", contracts.USER_HEADER: "dr.patel"}
    assert traefik.get(HOST, "/epr/", source=GB, headers=forged).status == 401
    signed_by_another = workspace.token("patel")[:-12] + "AAAAAAAAAAAA"
    assert traefik.get(HOST, "/epr/", source=GB, headers=bearer(signed_by_another)
                       ).status == 401
    expired = workspace.issuer.mint_id_token("patel", expires_in=-120)
    assert traefik.get(HOST, "/epr/", source=GB, headers=bearer(expired)).status == 401
    other_audience = workspace.issuer.mint_id_token("patel", audience="someone-else")
    assert traefik.get(HOST, "/epr/", source=GB, headers=bearer(other_audience)
                       ).status == 401
    # The same forged headers beside a real token reach the host replaced by the portal's.
    got = traefik.get(HOST, "/epr/", source=GB, headers={
        **bearer(workspace.token("jones", amr=list(MFA_AMR))), **forged,
        contracts.GROUPS_HEADER: '["radiologists"]', "X-Forwarded-For": "127.0.20.9"})
    assert got.status == 200
    seen = dict((k, v) for k, v in stack.hosts.requests[-1]["headers"])
    assert seen[contracts.USER_HEADER] == "nurse.jones@northgate.example"
    assert json.loads(seen[contracts.GROUPS_HEADER]) == ["nurses"]
    assert len(stack.hosts.requests) == before + 1
    audit = workspace.portal.audit()[-1]
    assert audit["clientIP"] == GB and audit["country"] == "GB"  # not the forged 127.0.20.9
    # A browser that is not signed in is sent to sign in, and back where it was going.
    page = traefik.get(HOST, "/epr/chart", source=GB, headers={"Accept": "text/html"})
    assert page.status == 401
    assert "oauth2/start?rd=http%3A%2F%2Fworkspace.test" in page.text


def test_a_signed_in_cookie_is_asked_of_oauth2_proxy(stack: Stack) -> None:
    """The browser's way in: oauth2-proxy's session cookie, which the portal shows to
    oauth2-proxy itself; the ID token it hands back carries the groups and MFA."""
    from ..support.client import request

    workspace = stack.workspace
    proxy = workspace.proxy
    start = request(f"{proxy.signin_url}?rd=/epr/")
    csrf = "; ".join(c.split(";")[0] for c in start.headers.get_all("Set-Cookie") or [])
    to_callback = request(f"{start.headers['Location']}&login_hint=patel")
    callback = request(to_callback.headers["Location"].replace(
        f"http://{HOST}:{workspace.traefik.port}", proxy.url), headers={"Cookie": csrf})
    assert callback.status == 302, callback.text
    session = "; ".join(c.split(";")[0] for c in callback.headers.get_all("Set-Cookie") or [])
    got = workspace.traefik.get(HOST, "/epr/", source=GB, headers={"Cookie": session})
    assert got.status == 200, got.text
    assert workspace.portal.audit()[-1]["identitySource"] == "auth-proxy"
    assert workspace.traefik.get(HOST, "/pacs/", source=GB,
                                 headers={"Cookie": session}).status == 403


def test_publishing_and_denying_take_effect_within_measured_times(
        bed: Bed, stack: Stack) -> None:
    workspace, namespace = stack.workspace, stack.namespace
    token = workspace.token("patel")
    publish = []
    for i in range(10):
        name = f"new-app-{i}"
        started = time.monotonic()
        bed.apply([{"apiVersion": "deskfleet.io/v1alpha1", "kind": "PublishedApp",
                    "metadata": {"name": name, "namespace": namespace,
                                 "labels": {"tier": "clinical"}},
                    "spec": {"displayName": f"New app {i}", "poolRef": {"name": "desktops"},
                             "gateway": {"host": HOST, "path": f"/{name}", "parentRef": {
                                 "name": workspace.traefik.gateway,
                                 "namespace": workspace.traefik.namespace}}}}])
        wait_until(lambda n=name: workspace.traefik.get(
            HOST, f"/{n}/", source=GB, headers=bearer(token)).status == 200,
            timeout=60, interval=0.05, what=f"{name} through the gateway")
        publish.append(time.monotonic() - started)
    started = time.monotonic()
    bed.apply([{"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
                "metadata": {"name": "no-new-app-0", "namespace": namespace},
                "spec": {"subjects": {"users": ["dr.patel@northgate.example"]},
                         "apps": {"names": ["new-app-0"]}, "action": "deny"}}])
    wait_until(lambda: workspace.traefik.get(HOST, "/new-app-0/", source=GB,
                                             headers=bearer(token)).status == 403,
               timeout=30, interval=0.05, what="the deny through the gateway")
    deny = time.monotonic() - started
    print(f"\n[portal-gateway] apply PublishedApp -> 200 through Traefik, 10 apps: p50 "
          f"{statistics.median(publish):.2f}s, max {max(publish):.2f}s "
          f"({', '.join(f'{s:.2f}' for s in publish)}); apply deny -> 403: {deny:.2f}s")


def test_dry_run_policies_report_the_requests_they_would_have_changed(
        bed: Bed, stack: Stack) -> None:
    workspace = stack.workspace
    for _ in range(3):  # the locum abroad: refused today, allowed by the trial
        assert through_gateway(workspace, Case("locum", "epr", FR)).status == 403
    assert workspace.portal.stats()["policies"][
        f"{stack.namespace}/trial-consultants-abroad"]["wouldChange"] >= 3

    def reported() -> dict[str, Any] | None:
        body = bed.get("apol", "trial-consultants-abroad", stack.namespace) or {}
        report = (body.get("status") or {}).get("dryRun")
        return report if report and report["wouldHaveChanged"] >= 3 else None

    report = wait_until(reported, timeout=90, what="dryRun figures in the status")
    assert report["requestsEvaluated"] >= report["wouldHaveChanged"]


def test_each_user_sees_exactly_their_apps_on_the_landing_page(
        bed: Bed, stack: Stack, tmp_path: Path) -> None:
    workspace = stack.workspace
    shots = Path(os.environ.get("DESKFLEET_SCREENSHOTS", tmp_path))
    for sub in ("patel", "dev"):
        user = BY_SUB[sub]
        with chromium(tmp_path / sub, hosts={HOST: "127.0.0.1"}) as browser:
            page = browser.new_page()
            page.set_viewport_size({"width": 1000, "height": 700})
            page.goto(f"{workspace.base_url}/")
            page.click(f"button[value={sub}]")  # the test issuer's sign-in page
            page.wait_for_url(f"{workspace.base_url}/")
            page.wait_for_selector("main")
            shown = set(page.eval_on_selector_all(
                "li.app", "els => els.filter(e => !e.classList.contains('stepup'))"
                ".map(e => e.dataset.app)"))
            # The strict CSP lets exactly the portal's own stylesheet through.
            assert page.eval_on_selector(
                ".bar", "e => getComputedStyle(e).backgroundColor") == "rgb(0, 94, 184)"
            page.screenshot(path=str(shots / f"portal-landing-{sub}.png"), full_page=True)
            phone = browser.new_page()
            phone.set_viewport_size({"width": 390, "height": 844})
            phone.goto(f"{workspace.base_url}/")
            phone.screenshot(path=str(shots / f"portal-landing-{sub}-phone.png"))
        apps = [a["metadata"]["name"] for a in bed.list("papp", stack.namespace)]
        wanted = {f"{stack.namespace}/{app}" for app in apps
                  if explain(bed, stack.namespace, app, user, "127.0.0.1",
                             "mfa" in user.amr)["allowed"]}
        assert shown == wanted, (sub, shown, wanted)
        assert wanted, f"{sub} should see some app"


def test_without_the_portal_every_request_fails_closed(stack: Stack) -> None:
    """Deleting the portal's pods: the gateway cannot ask, and lets nobody in. (Last in
    this module: the portal is started again for nothing after it.)"""
    workspace = stack.workspace
    token = workspace.token("patel")
    assert workspace.traefik.get(HOST, "/epr/", source=GB, headers=bearer(token)
                                 ).status == 200
    workspace.portal.stop()
    before = len(stack.hosts.requests)
    statuses = {workspace.traefik.get(HOST, f"/{app}/", source=GB,
                                      headers=bearer(token)).status for app in APPS}
    assert all(s >= 400 for s in statuses), statuses
    assert len(stack.hosts.requests) == before
    print(f"\n[portal-gateway] portal gone: the gateway answered {sorted(statuses)}")
    workspace.portal.start()
    assert workspace.traefik.get(HOST, "/epr/", source=GB, headers=bearer(token)
                                 ).status == 200

