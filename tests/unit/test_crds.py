"""The CRDs are generated from the models: structural, and identical to what is committed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from deskfleet.api.crdgen import all_crds

REPO = Path(__file__).resolve().parents[2]


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        out.append((path, node))
        for k, v in node.items():
            out += walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += walk(v, f"{path}[{i}]")
    return out


def test_schemas_are_structural() -> None:
    for crd in all_crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in walk(schema):
            assert "$ref" not in node and "anyOf" not in node and "allOf" not in node, path
            if "properties" in node and path.split(".")[-1] != "properties":
                assert node.get("type") == "object", f"{path} has properties but no type"


def test_every_field_is_described() -> None:
    for crd in all_crds():
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for path, node in walk(spec):
            if path.endswith(".properties") or "type" not in node:
                continue
            parent = path.rsplit(".", 2)
            if len(parent) == 3 and parent[1] == "properties":
                assert node.get("description"), f"{crd['metadata']['name']}{path}: no description"


def test_names_short_names_and_category() -> None:
    names = {c["spec"]["names"]["kind"]: c["spec"]["names"] for c in all_crds()}
    assert names["SessionHostPool"]["shortNames"] == ["shp"]
    assert names["PublishedApp"]["shortNames"] == ["papp"]
    assert names["AccessPolicy"]["shortNames"] == ["apol"]
    assert all(n["categories"] == ["deskfleet"] for n in names.values())
    for crd in all_crds():
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert crd["spec"]["scope"] == "Namespaced"


def test_committed_crds_match_the_models() -> None:
    """Regenerate and compare: any edit to a model without `deskfleet crds` fails here."""
    proc = subprocess.run(
        [sys.executable, "-m", "deskfleet", "crds", "--check", "--out", "crds",
         "--out", "charts/deskfleet/crds"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for crd in all_crds():
        name = f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"
        assert yaml.safe_load((REPO / "crds" / name).read_text()) == crd


def test_check_detects_drift(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "deskfleet", "crds", "--out", str(tmp_path)],
                   check=True)
    victim = next(tmp_path.glob("*.yaml"))
    victim.write_text(victim.read_text() + "# edited by hand\n")
    proc = subprocess.run([sys.executable, "-m", "deskfleet", "crds", "--check", "--out",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1 and "drifted" in proc.stderr
