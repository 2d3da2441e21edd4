"""The alert rules (charts/deskfleet/files/alerts.yaml): promtool accepts them, their unit
tests (tests/observability/alerts.test.yaml, and alerts-weekly.test.yaml for what needs a
week of history) pass, every alert carries what on-call needs, and they query only
metrics the operator and the portal export.

promtool comes with Debian's prometheus package (hack/setup.sh installs it). Without it
these tests fail rather than skip: a run must not pass without having checked the rules.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deskfleet.metrics import METRIC_NAMES
from deskfleet.portal.metrics import METRIC_NAMES as PORTAL_METRIC_NAMES

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "charts" / "deskfleet" / "files" / "alerts.yaml"
ALERT_TESTS = REPO / "tests" / "observability" / "alerts.test.yaml"
WEEKLY_ALERT_TESTS = REPO / "tests" / "observability" / "alerts-weekly.test.yaml"
EXPECTED_ALERTS = {
    "DeskfleetPoolCapacityNearlyExhausted": "warning",
    "DeskfleetPoolCapacityExhausted": "critical",
    "DeskfleetPoolNotReady": "critical",
    "DeskfleetPoolDegraded": "warning",
    "DeskfleetHostsStuckDraining": "warning",
    "DeskfleetOutdatedHostsPastDeadline": "warning",
    "DeskfleetSessionSignalStale": "warning",
    "DeskfleetReconcileErrors": "warning",
    "DeskfleetOperatorDown": "critical",
}
EXPECTED_PORTAL_ALERTS = {
    "DeskfleetPortalDown": "critical",
    "DeskfleetPortalFailingClosed": "critical",
    "DeskfleetDeniedCountryRising": "warning",
    "DeskfleetSignInFromNewCountry": "warning",
    "DeskfleetPortalNotReady": "warning",
}
ALL_ALERTS = {**EXPECTED_ALERTS, **EXPECTED_PORTAL_ALERTS}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: install Debian's prometheus package "
                    "(`apt-get install prometheus`; hack/setup.sh installs it)", pytrace=False)
    result = subprocess.run([binary, *args], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)
    print(f"$ promtool {' '.join(args)}\n{result.stdout}{result.stderr}")
    return result


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules_accepts_the_rule_file() -> None:
    result = promtool("check", "rules", str(ALERTS.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALL_ALERTS)} rules found" in result.stdout


@pytest.mark.parametrize("tests", [ALERT_TESTS, WEEKLY_ALERT_TESTS], ids=lambda p: p.name)
def test_promtool_unit_tests_of_the_alerts_pass(tests: Path) -> None:
    result = promtool("test", "rules", str(tests.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout


def test_rule_file_holds_the_operator_and_the_portal_groups() -> None:
    """Two groups: the chart leaves `deskfleet-portal` out when it deploys no portal."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert [g["name"] for g in groups] == ["deskfleet", "deskfleet-portal"]
    by_group = {g["name"]: {r["alert"]: r["labels"]["severity"] for r in g["rules"]}
                for g in groups}
    assert by_group["deskfleet"] == EXPECTED_ALERTS
    assert by_group["deskfleet-portal"] == EXPECTED_PORTAL_ALERTS


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_severity_summary_description_and_for(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), "every alert needs a for:"
    annotations = rule["annotations"]
    assert len(annotations.get("summary", "")) > 10
    # The description tells on-call what to do: at least one command to run.
    assert len(annotations.get("description", "")) > 100
    assert "kubectl" in annotations["description"]
    per_pool = "pool" in rule["expr"] and "by (namespace, pool)" in rule["expr"]
    if per_pool:
        assert "{{ $labels.namespace }}/{{ $labels.pool }}" in annotations["summary"]


def test_alerts_query_only_exported_metrics() -> None:
    for rule in alert_rules():
        # The portal's alerts query the portal's metrics, the others the operator's.
        portal = rule["alert"] in EXPECTED_PORTAL_ALERTS
        exported = set(PORTAL_METRIC_NAMES if portal else METRIC_NAMES)
        expr = rule["expr"]
        used = set(re.findall(r"deskfleet_[a-z_]+", expr))
        assert used <= exported, f"{rule['alert']} queries {used - exported}"
        # Anything else selected with a label matcher may only be Prometheus' `up`.
        others = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr)) - exported
        assert others <= {"up"}, f"{rule['alert']} queries {others}"
        assert used or others, f"{rule['alert']} queries no metric"


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    assert tests["rule_files"] == ["../../charts/deskfleet/files/alerts.yaml"]
    assert tests["evaluation_interval"] == "1m"
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    expected = set(ALL_ALERTS)
    assert firing == expected, f"never shown firing: {expected - firing}"
    assert quiet == expected, f"never shown quiet: {expected - quiet}"


def test_portal_alerts_are_about_the_portal_job() -> None:
    """`up` of the portal is job="deskfleet-portal" (the chart's ServiceMonitor sets it):
    the operator's job being up must not hide a portal that is down."""
    rules = {r["alert"]: r for r in alert_rules()}
    assert 'up{job="deskfleet-portal"}' in rules["DeskfleetPortalDown"]["expr"]
    for name in EXPECTED_PORTAL_ALERTS:
        assert 'job="deskfleet"' not in rules[name]["expr"], name
