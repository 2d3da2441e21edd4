"""Access policies enforced by the operator on the example hospital: routes carry exactly
the source ranges and groups the policies allow, follow policy changes, close when the
last allow goes; and `deskfleet explain` against the cluster agrees with the files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from deskfleet import contracts

from ..conftest import PORTAL_URL, Bed, Operator, example_docs, wait_until
from .test_reconcile import converge

NGINX = "nginx.ingress.kubernetes.io/"


def annotations(bed: Bed, ns: str, name: str) -> dict[str, str]:
    ingress = bed.get("ingress", name, ns) or {}
    result: dict[str, str] = ingress.get("metadata", {}).get("annotations", {})
    return result


def middleware(bed: Bed, ns: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = (bed.get("middleware", name, ns) or {}).get("spec", {})
    return spec


def test_routes_carry_the_policies(bed: Bed, namespace: str, operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)
    # Every route asks the portal about its own app, and copies its answer's headers:
    # HTTPRoutes through a ForwardAuth Middleware (the default flavour, Traefik)...
    for app in ("epr", "finance", "pacs"):
        auth = middleware(bed, namespace, f"{app}-deskfleet-auth")["forwardAuth"]
        assert auth["address"] == f"{PORTAL_URL}/authz/{namespace}/{app}"
        assert auth["authResponseHeaders"] == list(contracts.AUTH_RESPONSE_HEADERS)
    # ...the legacy Ingress through auth-url.
    ann = annotations(bed, namespace, "intranet")
    assert ann[f"{NGINX}auth-url"] == f"{PORTAL_URL}/authz/{namespace}/intranet"
    assert ann[f"{NGINX}auth-response-headers"] == ",".join(contracts.AUTH_RESPONSE_HEADERS)
    # finance: clinicians (any network) and contractors (supplier network): the route must
    # admit both, so it cannot restrict networks.
    assert bed.get("middleware", "finance-deskfleet-fence", namespace) is None
    # The hosts' config carries each app's session controls.
    config = json.loads(bed.get("configmap", "ehr-web-host-config", namespace)[  # type: ignore[index]
        "data"]["host.json"])
    assert config["apps"]["epr"]["baselineControls"]["clipboardToClient"] is False
    assert config["apps"]["epr"]["baselineControls"]["idleTimeoutSeconds"] == 1800
    # Status: who grants the app; what each policy covers.
    app = bed.get("papp", "finance", namespace)
    assert app and app["status"]["allowedBy"] == ["clinicians-home-mfa",
                                                  "contractors-business-hours"]
    policy = bed.get("apol", "radiology", namespace)
    assert policy and policy["status"]["matchedApps"] == ["dictation", "pacs"]
    dry = bed.get("apol", "trial-consultants-abroad", namespace)
    assert dry and dry["status"]["inEffect"] is False


def test_policy_changes_reach_the_routes(bed: Bed, namespace: str, operator: Operator) -> None:
    bed.apply(example_docs(namespace))
    converge(bed, namespace)
    # Radiology only from the trust's networks: the PACS route now refuses others.
    bed.kubectl("patch", "apol", "radiology", "-n", namespace, "--type=merge", "-p",
                '{"spec":{"conditions":{"sourceRanges":["10.40.0.0/16","192.0.2.0/24"]}}}')
    wait_until(lambda: middleware(bed, namespace, "pacs-deskfleet-fence").get(
        "ipAllowList", {}).get("sourceRange") == ["10.40.0.0/16", "192.0.2.0/24"],
        what="source ranges on the PACS route")
    [fence, _auth] = bed.get("httproute", "pacs", namespace)["spec"]["rules"][0]["filters"]  # type: ignore[index]
    assert fence["extensionRef"]["name"] == "pacs-deskfleet-fence"  # checked first
    # Deleting the last allow closes the route.
    bed.kubectl("delete", "apol", "radiology", "-n", namespace)
    for app in ("pacs", "dictation"):
        wait_until(lambda a=app: bed.get("httproute", a, namespace) is None
                   and bed.get("middleware", f"{a}-deskfleet-auth", namespace) is None,
                   what=f"{app} route closed")
        obj = bed.get("papp", app, namespace) or {}
        wait_until(lambda a=app: any(
            c["reason"] == "NoPolicyAllows" for c in (bed.get("papp", a, namespace) or {})
            .get("status", {}).get("conditions", [])), what=f"{app} NoPolicyAllows")
        assert obj
    assert bed.get("httproute", "epr", namespace) is not None  # others untouched


def test_a_policy_that_selects_nothing_says_so(bed: Bed, namespace: str,
                                               operator: Operator) -> None:
    typo = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
            "metadata": {"name": "typo", "namespace": namespace},
            "spec": {"subjects": {"groups": ["nurses"]}, "apps": {"names": ["e-p-r"]}}}
    bed.apply([*example_docs(namespace), typo])
    wait_until(lambda: any(c["reason"] == "SelectsNothing" for c in (
        bed.get("apol", "typo", namespace) or {}).get("status", {}).get("conditions", [])),
        what="SelectsNothing")


QUESTIONS = [
    ["--app", "epr", "--user", "dr.patel", "--group", "clinicians", "--ip", "81.2.69.160",
     "--country", "GB", "--mfa", "--time", "2026-11-24T10:15:00+00:00"],
    ["--app", "epr", "--user", "dr.patel", "--group", "clinicians", "--ip", "90.8.1.1",
     "--country", "FR", "--mfa", "--time", "2026-11-24T10:15:00+00:00"],
    ["--app", "finance", "--user", "acme.dev", "--group", "contractors", "--ip", "203.0.113.7",
     "--country", "GB", "--mfa", "--time", "2026-11-24T22:00:00+00:00"],
    ["--who-can-open", "pacs"],
]


def test_explain_against_the_cluster_agrees_with_the_files(bed: Bed, namespace: str,
                                                           tmp_path: Path) -> None:
    docs = example_docs(namespace)
    bed.apply(docs)
    files = tmp_path / "hospital.yaml"
    files.write_text(yaml.safe_dump_all(docs))
    def ask(question: list[str], *source: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "deskfleet", "explain", *source,
                               "--json", *question], env=bed.env, capture_output=True,
                              text=True)
        assert proc.returncode in (0, 1), proc.stderr
        return proc.stdout

    for question in QUESTIONS:
        offline = ask(question, "-f", str(files), "-n", namespace)
        online = ask(question, "-n", namespace)
        assert json.loads(offline) == json.loads(online), question
