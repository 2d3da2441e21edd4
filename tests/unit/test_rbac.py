"""The operator's ClusterRole in the chart grants exactly what the one table of kinds
and verbs (kube/resources.py) says the operator does: no verb missing (a pass would fail
with 403 on a real cluster) and none extra (least privilege)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deskfleet.controllers.registry import operator_rules
from deskfleet.kube.resources import CHILD_TYPES

RBAC = Path(__file__).resolve().parents[2] / "charts/deskfleet/templates/rbac.yaml"
# Granted only when a value switches the feature on: (group, resource) -> (value, verbs).
OPTIONAL = {("", "secrets"): ("checkTlsSecrets", ("get",))}


def chart_rules() -> dict[tuple[str, str], tuple[str, ...]]:
    """The rules of the operator's ClusterRole, every `{{ if }}` block taken (template
    lines dropped: the rules themselves are plain YAML)."""
    text = "\n".join(line for line in RBAC.read_text().splitlines() if "{{" not in line)
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(text) if d]
    role = next(d for d in docs if d["kind"] == "ClusterRole" and any(
        "deskfleet.io" in r["apiGroups"] for r in d["rules"]))
    granted: dict[tuple[str, str], tuple[str, ...]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                key = (group, resource)
                assert key not in granted, f"{key} granted twice"
                granted[key] = tuple(sorted(rule["verbs"]))
    return granted


def test_the_cluster_role_grants_exactly_the_table() -> None:
    want = {k: tuple(sorted(v)) for k, v in operator_rules().items()}
    granted = chart_rules()
    optional = {k: tuple(sorted(v)) for k, (_, v) in OPTIONAL.items()}
    missing = {k: v for k, v in want.items() if granted.get(k) != v}
    extra = {k: v for k, v in granted.items() if k not in want and optional.get(k) != v}
    assert not missing, f"the chart does not grant what the operator does: {missing}"
    assert not extra, f"the chart grants what the operator never does: {extra}"


def test_the_table_covers_every_child_kind_and_the_optional_grants_are_gated() -> None:
    rules = operator_rules()
    assert all((t.group, t.plural) in rules for t in CHILD_TYPES)
    text = RBAC.read_text()
    for (_, resource), (value, _) in OPTIONAL.items():
        gate = text.index(f"if .Values.{value}")
        assert gate < text.index(f"resources: [{resource}]") < text.index("end", gate)
