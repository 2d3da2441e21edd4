"""What the operator does with an app whose surroundings are wrong, on the real test bed:
an invalid pool, a poolRef that does not resolve, two apps claiming one URL, a TLS Secret
that does not exist. Each is reported naming the field, and none tears down a route
that runs."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Bed, Operator, example_docs, wait_until
from .test_reconcile import converge, ready


def condition(bed: Bed, name: str, ns: str, kind: str = "Ready") -> dict[str, Any]:
    obj = bed.get("papp", name, ns) or {}
    return next((c for c in (obj.get("status") or {}).get("conditions", [])
                 if c["type"] == kind), {})


def reason_is(bed: Bed, name: str, ns: str, reason: str, kind: str = "Ready"
              ) -> dict[str, Any] | None:
    cond = condition(bed, name, ns, kind)
    return cond if cond.get("reason") == reason else None


def route_identity(bed: Bed, kind: str, name: str, ns: str) -> tuple[str, str]:
    obj = bed.get(kind, name, ns)
    assert obj, f"{kind}/{name} is gone"
    return obj["metadata"]["uid"], obj["metadata"]["resourceVersion"]


def backend_port(bed: Bed, name: str, ns: str) -> int:
    route = bed.get("httproute", name, ns)
    assert route
    return int(route["spec"]["rules"][0]["backendRefs"][0]["port"])


def test_an_invalid_pool_keeps_its_apps_routes(bed: Bed, namespace: str,
                                               operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)
    epr = route_identity(bed, "httproute", "epr", namespace)
    intranet = route_identity(bed, "ingress", "intranet", namespace)
    assert backend_port(bed, "epr", namespace) == 8443

    # A new port and a schedule only the operator can judge invalid, in one edit: the
    # pool touches none of its children, so its Service keeps 8443 and so do the routes.
    bed.kubectl("patch", "shp", "ehr-web", "-n", namespace, "--type=merge", "-p",
                '{"spec":{"port":9443,"scaling":{"schedule":{"timeZone":"Europe/Lundon",'
                '"holidays":["2026-02-30"]}}}}')
    wait_until(lambda: any(c["reason"] == "InvalidSpec" for c in (bed.get(
        "shp", "ehr-web", namespace) or {}).get("status", {}).get("conditions", [])),
        what="pool InvalidSpec")
    time.sleep(5)  # the apps' passes after the pool's change
    for app in ("epr", "finance"):
        assert ready(bed, "papp", app, namespace), condition(bed, app, namespace)
    assert route_identity(bed, "httproute", "epr", namespace) == epr
    assert route_identity(bed, "ingress", "intranet", namespace) == intranet
    assert backend_port(bed, "epr", namespace) == 8443
    service = bed.get("service", "ehr-web", namespace)
    assert service and service["spec"]["ports"][0]["port"] == 8443
    log = operator.logs()
    assert "RouteFailed" not in log and "cannot undo" not in log and "retrying" not in log, \
        log[-3000:]

    # Corrected: the Service and the routes move to the new port together.
    bed.kubectl("patch", "shp", "ehr-web", "-n", namespace, "--type=merge", "-p",
                '{"spec":{"scaling":{"schedule":{"timeZone":"Europe/London","holidays":[]}}}}')
    wait_until(lambda: backend_port(bed, "epr", namespace) == 9443, what="route on 9443")


@pytest.fixture
def two_namespaces(bed: Bed, tmp_path: Path) -> Iterator[tuple[str, str, Operator]]:
    """Two namespaces and one operator watching both (a glob over their names)."""
    stem = f"t-{uuid.uuid4().hex[:8]}"
    names = (stem, f"{stem}-b")
    for name in names:
        bed.kubectl("create", "namespace", name)
    op = Operator(bed, f"{stem}*", tmp_path / "operator.log")
    op.start()
    try:
        yield names[0], names[1], op
    finally:
        op.stop()
        for name in names:
            bed.kubectl("delete", "namespace", name, "--wait=false", check=False)
    assert "Traceback" not in op.logs(), op.logs()[-5000:]


def test_a_pool_ref_that_does_not_resolve_keeps_the_route_and_says_why(
        bed: Bed, two_namespaces: tuple[str, str, Operator]) -> None:
    ns, other, _ = two_namespaces
    bed.apply(example_docs(ns))
    elsewhere = next(d for d in example_docs(other) if d["metadata"]["name"] == "pacs-viewer")
    elsewhere["metadata"]["name"] = "imaging"
    bed.apply([elsewhere])
    converge(bed, ns)
    epr = route_identity(bed, "httproute", "epr", ns)
    intranet = route_identity(bed, "ingress", "intranet", ns)

    # A pool that exists, but in another namespace.
    bed.kubectl("patch", "papp", "epr", "-n", ns, "--type=merge", "-p",
                '{"spec":{"poolRef":{"name":"imaging"}}}')
    cond = wait_until(lambda: reason_is(bed, "epr", ns, "PoolInOtherNamespace"),
                      what="epr PoolInOtherNamespace")
    assert cond["status"] == "False"
    assert cond["message"].startswith(
        f"spec.poolRef.name: SessionHostPool imaging is in namespace {other}, not in {ns}")
    assert "cross-namespace references are not allowed" in cond["message"]
    assert "The route to SessionHostPool ehr-web that was serving stays" in cond["message"]
    assert reason_is(bed, "epr", ns, "PoolInOtherNamespace", "Degraded")

    # A typo: a pool that exists nowhere.
    bed.kubectl("patch", "papp", "intranet", "-n", ns, "--type=merge", "-p",
                '{"spec":{"poolRef":{"name":"ehr-wbe"}}}')
    cond = wait_until(lambda: reason_is(bed, "intranet", ns, "PoolNotFound"),
                      what="intranet PoolNotFound")
    assert cond["message"].startswith(
        f"spec.poolRef.name: SessionHostPool ehr-wbe does not exist in namespace {ns}")
    assert "correct poolRef" in cond["message"]

    # Both routes still serve, untouched, and status still names them.
    time.sleep(3)
    assert route_identity(bed, "httproute", "epr", ns) == epr
    assert route_identity(bed, "ingress", "intranet", ns) == intranet
    assert (bed.get("papp", "epr", ns) or {})["status"]["route"] == "HTTPRoute/epr"

    # Corrected: back to Ready, on the same routes.
    for app, pool in (("epr", "ehr-web"), ("intranet", "ehr-web")):
        bed.kubectl("patch", "papp", app, "-n", ns, "--type=merge", "-p",
                    f'{{"spec":{{"poolRef":{{"name":"{pool}"}}}}}}')
        wait_until(lambda a=app: ready(bed, "papp", a, ns), what=f"{app} Ready again")
    assert route_identity(bed, "httproute", "epr", ns)[0] == epr[0]
    # A reference that never resolved never had a route: the documented "route down".
    app = next(d for d in example_docs(ns) if d["metadata"]["name"] == "finance")
    app["metadata"]["name"] = "finance-typo"
    app["spec"]["gateway"]["path"] = "/finance-typo"
    app["spec"]["poolRef"]["name"] = "imaging"
    bed.apply([app])
    wait_until(lambda: reason_is(bed, "finance-typo", ns, "PoolInOtherNamespace"),
               what="finance-typo reported")
    assert "The app has no route until then." in condition(bed, "finance-typo", ns)["message"]
    assert bed.get("httproute", "finance-typo", ns) is None


def test_two_apps_claiming_one_url_are_both_told_and_the_older_keeps_it(
        bed: Bed, namespace: str, operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)
    epr = route_identity(bed, "httproute", "epr", namespace)
    copy = next(d for d in example_docs(namespace) if d["metadata"]["name"] == "epr")
    copy["metadata"]["name"] = "epr-trial"
    copy["spec"]["gateway"]["path"] = "/epr/"  # the same prefix match
    copy["spec"]["poolRef"]["name"] = "clinical-desktop"  # even on another pool
    bed.apply([copy])

    loser = wait_until(lambda: reason_is(bed, "epr-trial", namespace, "RouteConflict"),
                       what="epr-trial RouteConflict")
    assert loser["status"] == "False"
    assert loser["message"].startswith(
        "spec.gateway.host and spec.gateway.path: workspace.northgate.example/epr/ is held "
        f"by PublishedApp {namespace}/epr, which claimed it first")
    holder = wait_until(lambda: reason_is(bed, "epr", namespace, "RouteConflict", "Degraded"),
                        what="epr told of the rival")
    assert f"PublishedApp {namespace}/epr-trial also claims" in holder["message"]
    assert ready(bed, "papp", "epr", namespace)
    assert route_identity(bed, "httproute", "epr", namespace) == epr
    assert bed.get("httproute", "epr-trial", namespace) is None

    # The holder goes: the other app takes the URL, and nobody is in conflict any more.
    bed.kubectl("delete", "papp", "epr", "-n", namespace)
    wait_until(lambda: ready(bed, "papp", "epr-trial", namespace), what="epr-trial Ready")
    wait_until(lambda: bed.get("httproute", "epr-trial", namespace), what="its route")
    assert condition(bed, "epr-trial", namespace, "Degraded")["reason"] != "RouteConflict"


def test_a_tls_secret_that_does_not_exist_is_reported_until_it_does(
        bed: Bed, namespace: str, operator: Operator, tmp_path: Path) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)
    # The intranet's Ingress names workspace-tls, which nobody created here.
    cond = wait_until(lambda: reason_is(bed, "intranet", namespace, "TLSSecretNotFound",
                                        "Degraded"), what="TLSSecretNotFound")
    assert cond["message"].startswith(
        f"spec.gateway.tlsSecretName: Secret workspace-tls does not exist in namespace "
        f"{namespace}")
    assert ready(bed, "papp", "intranet", namespace)  # reported, not torn down
    assert bed.get("ingress", "intranet", namespace)
    # HTTPRoutes' TLS is their Gateway listener's: not asked, not reported.
    assert condition(bed, "epr", namespace, "Degraded")["reason"] == "AsExpected"

    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=workspace.northgate.example", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    bed.kubectl("create", "secret", "tls", "workspace-tls", "-n", namespace,
                f"--cert={cert}", f"--key={key}")
    wait_until(lambda: reason_is(bed, "intranet", namespace, "AsExpected", "Degraded"),
               timeout=90, interval=2, what="the report cleared once the Secret exists")
