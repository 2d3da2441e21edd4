"""The CRDs against the real API server: they install, accept the examples, refuse the
bad-input catalogue naming the field, explain themselves and print useful columns."""

from __future__ import annotations

import pytest

from ..bad_inputs import ADMISSION, OPERATOR, Case
from ..conftest import EXAMPLES, Bed, Operator, example_docs, wait_until


def test_crds_are_established_with_names_and_category(bed: Bed) -> None:
    out = bed.kubectl("api-resources", "--api-group=deskfleet.io", "-o", "wide").stdout
    for plural, short in (("sessionhostpools", "shp"), ("publishedapps", "papp"),
                          ("accesspolicies", "apol")):
        line = next(ln for ln in out.splitlines() if ln.startswith(plural))
        assert f" {short} " in line and "deskfleet" in line and "true" in line


def test_examples_are_accepted_dry_run_then_for_real(bed: Bed, namespace: str) -> None:
    docs = example_docs(namespace)
    assert len(docs) >= 3 + 12 + 5
    bed.apply(docs, dry_run=True)
    bed.apply(docs)
    out = bed.kubectl("get", "deskfleet", "-n", namespace, "-o", "name").stdout.split()
    assert len(out) == len(docs)


def test_example_files_apply_unchanged(bed: Bed) -> None:
    # The files as a newcomer applies them (their own namespace), server-side dry run.
    proc = bed.kubectl("apply", "--server-side", "--dry-run=server", "-f", str(EXAMPLES))
    assert "sessionhostpool.deskfleet.io/clinical-desktop" in proc.stdout


@pytest.mark.parametrize("case", ADMISSION, ids=lambda c: c.id)
def test_bad_input_is_refused_naming_the_field(bed: Bed, namespace: str, case: Case) -> None:
    proc = bed.apply([case.with_name("bad", namespace)], check=False)
    assert proc.returncode != 0, f"{case.id} was accepted"
    assert case.field in proc.stderr, f"{case.id}: error does not name {case.field}:\n" \
                                      f"{proc.stderr}"
    assert bed.get(case.body["kind"].lower(), "bad", namespace) is None


@pytest.mark.parametrize("case", OPERATOR, ids=lambda c: c.id)
def test_operator_judged_input_is_reported_in_status(
        bed: Bed, namespace: str, operator: Operator, case: Case) -> None:
    bed.apply([case.with_name("judged", namespace)])

    def reported() -> dict[str, str] | None:
        obj = bed.get(case.body["kind"].lower(), "judged", namespace) or {}
        ready = [c for c in (obj.get("status") or {}).get("conditions", [])
                 if c["type"] == "Ready"]
        return ready[0] if ready and ready[0]["reason"] == case.reason else None

    cond = wait_until(reported, timeout=30, what=f"Ready reason {case.reason}")
    assert cond["status"] == "False"
    if case.reason == "InvalidSpec":
        assert case.field in cond["message"]


def test_explain_prints_the_model_descriptions(bed: Bed) -> None:
    out = bed.kubectl("explain", "sessionhostpool.spec.scaling").stdout
    assert "Session-aware autoscaling" in out
    assert "Stabilisation window" in out  # scaleInDelay's docstring
    assert "minHosts" in out and "bufferPercent" in out
    out = bed.kubectl("explain", "accesspolicy.spec.conditions.requireMFA").stdout
    assert "multi-factor" in out


def test_get_deskfleet_shows_printer_columns(bed: Bed, namespace: str) -> None:
    bed.apply(example_docs(namespace))
    out = bed.kubectl("get", "deskfleet", "-n", namespace).stdout
    for header in ("HOSTS", "SESSIONS", "CAPACITY", "UTIL%", "PHASE", "POOL", "URL",
                   "ACTION", "PRIORITY", "MODE", "APPS", "READY"):
        assert header in out, f"column {header} missing:\n{out}"
    # Selectable field: apps of one pool, filtered by the API server.
    names = bed.kubectl("get", "papp", "-n", namespace, "--field-selector",
                        "spec.poolRef.name=pacs-viewer", "-o", "name").stdout.split()
    assert sorted(names) == ["publishedapp.deskfleet.io/dictation",
                             "publishedapp.deskfleet.io/pacs"]
