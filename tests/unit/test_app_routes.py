"""What an app's route becomes when its pool is invalid, missing or elsewhere, when other
apps claim its host and path, and when its TLS Secret is missing — and that no such
case tears down a route that runs. Pure, plus the Secret check against a fake client."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from deskfleet.api.parse import parse
from deskfleet.controllers import fanout
from deskfleet.controllers.apps import live_route_pool, pool_facts
from deskfleet.controllers.tls_secrets import REFUSED_SECONDS, TTL_SECONDS, SecretChecker
from deskfleet.kube.client import KubeError
from deskfleet.manifests import load_paths
from deskfleet.policy.enforcement import access_for
from deskfleet.render.app import PoolFacts, RouteAccess, build_app_children
from deskfleet.render.app_plan import RouteFacts, app_conditions, plan_route
from deskfleet.render.offline import render_objects
from deskfleet.render.route_claims import Claim, conflict_for, route_key
from deskfleet.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCS = [d for d in load_paths([REPO / "examples"]) if "deskfleet" in d["apiVersion"]]
T1, T2, T3 = "2026-03-01T08:00:00Z", "2026-03-01T09:00:00Z", "2026-03-02T08:00:00Z"
READY = PoolFacts(name="ehr-web", exists=True, ready=True, port=8443, protocol="http")


def body(name: str) -> dict[str, Any]:
    found = next(d for d in DOCS if d["metadata"]["name"] == name)
    out = copy.deepcopy(found)
    out["metadata"]["uid"] = f"uid-{name}"
    return out


def app(name: str = "epr") -> Any:
    return parse(body(name))


def me(name: str = "epr", created: str = T2) -> Claim:
    return Claim(created, "northgate", name)


# --- an invalid pool keeps its apps' routes -------------------------------------------

def invalid_pool() -> dict[str, Any]:
    pool = body("ehr-web")
    pool["spec"]["scaling"]["schedule"] = {"timeZone": "Mars/Olympus"}
    return pool


def service(port: int) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": "ehr-web"},
            "spec": {"ports": [{"name": "session", "port": port}]}}


def deployment(ready: int) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "ehr-web"},
            "spec": {"replicas": ready}, "status": {"readyReplicas": ready}}


def test_an_invalid_pool_leads_its_routes_to_the_port_its_service_keeps() -> None:
    # The pool's spec says 8443 but it is invalid, so its children stay as they were:
    # the Service still listens on 9443, and that is where the route must lead.
    facts = pool_facts("ehr-web", invalid_pool(), [deployment(2), service(9443)])
    assert facts.exists and facts.ready and facts.port == 9443 and facts.protocol == "http"
    plan = plan_route(app(), me(), RouteFacts(facts, RouteAccess()))
    assert plan.route == "render" and plan.ready.status
    [route, *_] = build_app_children(app(), facts, RouteAccess(), Settings())
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "ehr-web", "port": 9443}]


def test_an_invalid_pool_without_a_service_touches_no_route() -> None:
    facts = pool_facts("ehr-web", invalid_pool(), [])
    assert facts.port == 0  # never rendered as a backend port
    plan = plan_route(app(), me(), RouteFacts(facts, RouteAccess(), live_pool="ehr-web",
                                              live_pool_exists=True))
    assert plan.route == "keep" and plan.ready.reason == "PoolInvalid"


def test_a_valid_pool_gives_its_spec_port() -> None:
    facts = pool_facts("ehr-web", body("ehr-web"), [deployment(1), service(9443)])
    assert facts.port == 8443  # the pool's own pass moves the Service to it


# --- a poolRef that does not resolve ----------------------------------------------------

def missing(elsewhere: tuple[str, ...] = ()) -> PoolFacts:
    return PoolFacts(name="ehr-wbe", exists=False, elsewhere=elsewhere)


def test_a_reference_typo_keeps_the_route_that_serves() -> None:
    plan = plan_route(app(), me(), RouteFacts(missing(), RouteAccess(), live_pool="ehr-web",
                                              live_pool_exists=True))
    assert plan.route == "keep"
    ready, degraded = app_conditions(plan, [])
    assert not ready.status and ready.reason == "PoolNotFound"
    assert ready.message.startswith("spec.poolRef.name: SessionHostPool ehr-wbe does not")
    assert "correct poolRef" in ready.message and "ehr-web that was serving stays" in \
        ready.message
    assert degraded.status and degraded.reason == "PoolNotFound"


def test_a_pool_in_another_namespace_is_named_and_the_route_kept() -> None:
    plan = plan_route(app(), me(), RouteFacts(missing(("southgate",)), RouteAccess(),
                                              live_pool="ehr-web", live_pool_exists=True))
    assert plan.route == "keep" and plan.ready.reason == "PoolInOtherNamespace"
    assert "in namespace southgate, not in northgate" in plan.ready.message
    assert "cross-namespace references are not allowed" in plan.ready.message


@pytest.mark.parametrize("live_pool, live_pool_exists", [
    (None, False),          # never had a route: a pool that never existed
    ("ehr-wbe", False),     # the pool it led to was deleted: the route leads nowhere
    ("ehr-web", False),     # moved from a pool that is gone too
])
def test_a_route_goes_down_only_when_its_own_pool_is_gone(
        live_pool: str | None, live_pool_exists: bool) -> None:
    plan = plan_route(app(), me(), RouteFacts(missing(), RouteAccess(), live_pool=live_pool,
                                              live_pool_exists=live_pool_exists))
    assert plan.route == "down" and plan.ready.reason == "PoolNotFound"
    assert plan.ready.message.endswith("The app has no route until then.")
    assert app_conditions(plan, [])[1].reason == "AsExpected"


def test_the_live_routes_pool_is_read_from_its_label() -> None:
    children = [{"kind": "Middleware", "metadata": {"labels": {}}},
                {"kind": "HTTPRoute", "metadata": {"labels": {"deskfleet.io/pool": "ehr-web"}}}]
    assert live_route_pool(children) == "ehr-web"
    assert live_route_pool(children[:1]) == ""


# --- host and path collisions ---------------------------------------------------------

def test_route_keys_ignore_a_trailing_slash_as_prefix_matches_do() -> None:
    assert route_key("a.example", "/epr/") == route_key("a.example", "/epr")
    assert route_key("a.example", "/") == ("a.example", "/")
    assert route_key("a.example", "/epr") != route_key("a.example", "/epr2")


def test_the_oldest_claim_holds_then_namespace_and_name() -> None:
    old, new = Claim(T1, "northgate", "zz"), Claim(T2, "northgate", "aa")
    assert conflict_for(new, [old, new]).holder == old  # type: ignore[union-attr]
    tie_a, tie_b = Claim(T1, "a", "x"), Claim(T1, "b", "a")
    assert conflict_for(tie_b, [tie_a]).holder == tie_a  # type: ignore[union-attr]
    assert conflict_for(old, [old]) is None
    # A stale entry for the same app (re-created) is not a rival.
    assert conflict_for(new, [Claim(T1, "northgate", "aa")]) is None


def test_both_apps_report_a_collision_and_only_the_older_has_a_route() -> None:
    older, newer = me("epr", T1), me("epr-copy", T3)
    plan_old = plan_route(app(), older, RouteFacts(READY, RouteAccess(),
                                                   conflict=conflict_for(older, [newer])))
    plan_new = plan_route(app(), newer, RouteFacts(READY, RouteAccess(),
                                                   conflict=conflict_for(newer, [older])))
    assert plan_old.route == "render" and plan_old.ready.status
    ready, degraded = app_conditions(plan_old, [])
    assert degraded.reason == "RouteConflict" and "northgate/epr-copy also claims" in \
        degraded.message and "claimed it first and keeps the route" in degraded.message
    assert plan_new.route == "down"
    ready, degraded = app_conditions(plan_new, [])
    assert not ready.status and ready.reason == "RouteConflict"
    assert ready.message.startswith("spec.gateway.host and spec.gateway.path: "
                                    "workspace.northgate.example/epr is held by "
                                    "PublishedApp northgate/epr, which claimed it first")
    assert "another host or path" in ready.message


def test_offline_render_gives_a_contested_route_to_one_app_only() -> None:
    pools = [d for d in DOCS if d["kind"] == "SessionHostPool"]
    policies = [d for d in DOCS if d["kind"] == "AccessPolicy"]
    first, second = body("epr"), body("epr")
    second["metadata"]["name"] = "epr-copy"
    second["spec"]["gateway"]["path"] = "/epr/"
    docs = render_objects([*pools, *policies, second, first], Settings())
    routes = [d["metadata"]["name"] for d in docs if d["kind"] == "HTTPRoute"]
    assert routes == ["epr"]


def test_a_changed_host_or_path_reaches_the_rivals() -> None:
    def facts(path: str) -> fanout.Facts:
        return fanout.facts("PublishedApp", {"metadata": {"generation": 1}, "spec": {
            "poolRef": {"name": "p"}, "gateway": {"host": "a.example", "path": path}}})
    rivals = [("northgate", "other"), ("southgate", "third"), ("northgate", "epr")]
    keys = fanout.app_keys("northgate", "epr", facts("/x"), facts("/y"), rivals)
    assert ("PublishedApp", "northgate", "other") in keys
    assert ("PublishedApp", "southgate", "third") in keys
    gone = fanout.app_keys("northgate", "epr", facts("/x"), None, rivals)
    assert ("PublishedApp", "northgate", "other") in gone
    same = fanout.app_keys("northgate", "epr", facts("/x"), facts("/x/"), rivals)
    assert ("PublishedApp", "northgate", "other") not in same


# --- TLS Secrets ------------------------------------------------------------------------

def test_a_missing_tls_secret_is_reported_without_closing_the_route() -> None:
    plan = plan_route(app("intranet"), me("intranet"),
                      RouteFacts(READY, RouteAccess(), tls_secret_exists=False))
    assert plan.route == "render" and plan.ready.status
    _, degraded = app_conditions(plan, [])
    assert degraded.reason == "TLSSecretNotFound"
    assert degraded.message.startswith("spec.gateway.tlsSecretName: Secret workspace-tls "
                                       "does not exist in namespace northgate")


class FakeKube:
    def __init__(self, present: set[str], status: int = 0) -> None:
        self.present, self.status, self.asked = present, status, 0

    def get_metadata(self, rtype: Any, namespace: str, name: str) -> dict[str, Any] | None:
        self.asked += 1
        if self.status:
            raise KubeError(self.status, "Forbidden", "no")
        return {"metadata": {"name": name}} if name in self.present else None


def test_secrets_are_asked_by_name_and_answers_reused_briefly() -> None:
    now = [0.0]
    checker = SecretChecker(clock=lambda: now[0])
    kube = FakeKube({"workspace-tls"})
    assert checker.exists(kube, "ns", "workspace-tls") is True  # type: ignore[arg-type]
    assert checker.exists(kube, "ns", "workspace-tls") is True  # type: ignore[arg-type]
    assert checker.exists(kube, "ns", "other") is False  # type: ignore[arg-type]
    assert kube.asked == 2
    now[0] += TTL_SECONDS
    kube.present.add("other")
    assert checker.exists(kube, "ns", "other") is True  # type: ignore[arg-type]


def test_without_the_grant_nothing_is_reported_and_asking_pauses() -> None:
    now = [0.0]
    checker = SecretChecker(clock=lambda: now[0])
    kube = FakeKube(set(), status=403)
    assert checker.exists(kube, "ns", "a") is None  # type: ignore[arg-type]
    assert checker.exists(kube, "ns", "b") is None  # type: ignore[arg-type]
    assert kube.asked == 1
    now[0] += REFUSED_SECONDS
    checker.exists(kube, "ns", "c")  # type: ignore[arg-type]
    assert kube.asked == 2


def catalog_ready(docs: list[dict[str, Any]], name: str) -> bool:
    catalog = next(d for d in docs if d["kind"] == "ConfigMap"
                   and "catalog" in d["metadata"]["name"])
    data = catalog.get("data") or {}
    raw = (data["catalog.json"] if "catalog.json" in data else gzip.decompress(
        base64.b64decode(catalog["binaryData"]["catalog.json.gz"])).decode())
    return bool(next(e for e in json.loads(raw)["apps"] if e["name"] == name)["ready"])


def test_offline_render_plans_each_route_as_the_operator_does() -> None:
    """`deskfleet render` runs the live pass's plan (plan_route): an app no enforced
    policy opens gets no route and shows as not ready, exactly as the live status says
    (NoPolicyAllows), where it used to be rendered and listed ready."""
    pools = [d for d in DOCS if d["kind"] == "SessionHostPool"]
    policies = [d for d in DOCS if d["kind"] == "AccessPolicy"]
    docs = render_objects([*pools, *policies, body("epr")], Settings())
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "HTTPRoute"] == ["epr"]
    assert catalog_ready(docs, "epr")
    closed = render_objects([*pools, body("epr")], Settings())  # no policy at all
    assert [d for d in closed if d["kind"] in ("HTTPRoute", "Ingress")] == []
    assert not catalog_ready(closed, "epr")
    facts = PoolFacts(name="desktops", exists=True, ready=True, port=3389, protocol="rdp")
    live = plan_route(app(), me(), RouteFacts(facts, access_for([], "epr", app().labels)))
    assert live.route == "down" and live.ready.reason == "NoPolicyAllows"
