"""Fast checks of the Grafana dashboard (charts/deskfleet/files/dashboard.json): it loads,
has its variables, every query goes through the chosen data source and uses only metrics
the operator and the portal export. tests/cluster/test_observability.py compares the
same queries with a real scrape."""

from __future__ import annotations

import json
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
DASHBOARD_FILE = REPO / "charts" / "deskfleet" / "files" / "dashboard.json"
DATASOURCE = "${datasource}"


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD_FILE.read_text(encoding="utf-8")))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])
    return out


def targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in panels(dashboard) for t in p.get("targets", [])]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return str(query["query"] if isinstance(query, dict) else query)


def test_dashboard_is_importable_json_with_its_identity() -> None:
    dashboard = load()
    assert dashboard["uid"] == "deskfleet-overview"
    assert dashboard["title"] == "deskfleet — remote workspace"
    assert dashboard["schemaVersion"] == 39
    assert dashboard.get("id") is None  # an import must not carry another instance's id


def test_dashboard_has_the_three_variables() -> None:
    found = variables(load())
    assert list(found)[:3] == ["datasource", "namespace", "pool"]
    datasource, namespace, pool = found["datasource"], found["namespace"], found["pool"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    assert variable_query(namespace) == "label_values(deskfleet_pool_hosts, namespace)"
    assert variable_query(pool) == (
        'label_values(deskfleet_pool_hosts{namespace=~"$namespace"}, pool)')
    for variable in (namespace, pool):
        assert variable["type"] == "query"
        assert variable["multi"] is True and variable["includeAll"] is True
        assert variable["datasource"]["uid"] == DATASOURCE


def test_every_panel_has_id_grid_position_and_description() -> None:
    all_panels = panels(load())
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid), panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel.get("description"), f"{panel['title']} has no description"


def test_rows_and_panels() -> None:
    dashboard = load()
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Capacity", "Scaling", "Rollouts", "Apps & policies", "Portal",
                    "Operator health"]
    titles = {p["title"]: p for p in panels(dashboard)}
    assert titles["Utilisation"]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    steps = titles["Utilisation"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.8, 0.9]
    assert len(titles["Sessions vs capacity"]["targets"]) == 2
    assert titles["Operator up"]["type"] == "stat"
    assert titles["Operator up"]["targets"][0]["expr"] == 'up{job="deskfleet"}'
    exprs = " ".join(t["expr"] for t in targets(dashboard))
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.95," in exprs
    assert "increase(deskfleet_pool_scaling_decisions_total" in exprs
    rollout = titles["Rollout: updated vs outdated hosts"]["targets"]
    assert 'state=~"updated|outdated"' in rollout[0]["expr"]
    assert "deskfleet_pool_outdated_hosts_past_deadline" in rollout[1]["expr"]


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    dashboard = load()
    for panel in panels(dashboard):
        if "targets" not in panel:
            continue
        assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE, panel["title"]
            assert target["datasource"]["type"] == "prometheus", panel["title"]


def test_queries_use_only_exported_metrics() -> None:
    dashboard = load()
    exprs = [t["expr"] for t in targets(dashboard)]
    exprs += [variable_query(v) for v in variables(dashboard).values()
              if v["type"] == "query"]
    assert exprs
    exported = set(METRIC_NAMES) | set(PORTAL_METRIC_NAMES)
    used: set[str] = set()
    for expr in exprs:
        names = set(re.findall(r"deskfleet_[a-z_]+", expr))
        assert names <= exported, f"{expr!r} queries {names - exported}"
        others = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr)) - exported
        assert others <= {"up"}, f"{expr!r} queries {others}"
        used |= names
    # Every exported family, the operator's and the portal's, has a place on the dashboard.
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert families == shown, f"not on the dashboard: {families - shown}"


def test_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every query (Grafana's variables replaced by plain values)."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: install Debian's prometheus package "
                    "(`apt-get install prometheus`; hack/setup.sh installs it)", pytrace=False)
    dashboard = load()
    exprs = [t["expr"] for t in targets(dashboard)]
    exprs += [re.sub(r"^label_values\((.*), *\w+\)$", r"\1", variable_query(v))
              for v in variables(dashboard).values() if v["type"] == "query"]
    plain = {"$__rate_interval": "2m", "$namespace": ".*", "$pool": ".*"}
    rules = []
    for i, expr in enumerate(exprs):
        for variable, value in plain.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    rule_file = tmp_path / "dashboard-queries.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([binary, "check", "rules", str(rule_file)], capture_output=True,
                            text=True, timeout=60, check=False)
    print(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr


def test_portal_row() -> None:
    """The front door: decisions by outcome and reason, denials by country, fail-closed
    refusals, decision latency p99, data age, launches waiting vs started."""
    dashboard = load()
    all_panels = panels(dashboard)
    titles = {p["title"]: p for p in all_panels}
    row = next(p for p in dashboard["panels"] if p["type"] == "row" and p["title"] == "Portal")
    after = [p for p in all_panels if p["gridPos"]["y"] > row["gridPos"]["y"]]
    end = min(p["gridPos"]["y"] for p in after if p["type"] == "row")
    in_row = {p["title"]: p for p in after if p["gridPos"]["y"] < end}

    def exprs(title: str) -> str:
        return " ".join(t["expr"] for t in in_row[title]["targets"])

    assert "by (decision, reason)" in exprs("Decisions by outcome and reason")
    denials = exprs("Denials by country (per 15 minutes)")
    assert 'decision="deny"' in denials and "by (country)" in denials
    assert "deskfleet_portal_fail_closed_total" in exprs("Fail-closed refusals")
    latency = exprs("Decision latency p50 / p99")
    assert "histogram_quantile(0.99," in latency
    assert "deskfleet_portal_decision_duration_seconds_bucket" in latency
    age = in_row["Policy data age"]
    assert "deskfleet_portal_data_age_seconds" in exprs("Policy data age")
    assert age["fieldConfig"]["defaults"]["unit"] == "s"
    # The red line is the chart's default portal.maxDataAgeSeconds.
    values = yaml.safe_load((REPO / "charts" / "deskfleet" / "values.yaml").read_text())
    steps = age["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == values["portal"]["maxDataAgeSeconds"]
    assert "by (namespace, pool, outcome)" in exprs("Launches: started vs waiting")
    replicas = exprs("Portal replicas")
    assert 'up{job="deskfleet-portal"}' in replicas and "deskfleet_portal_ready" in replicas
    assert titles["Portal replicas"]["type"] == "stat"
