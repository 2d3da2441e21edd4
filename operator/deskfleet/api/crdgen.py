"""Turn the pydantic models into CustomResourceDefinitions.

The models are the single source of truth: `deskfleet crds` writes `crds/` and the
chart's copies from here, and a test fails when the committed files drift.

pydantic emits JSON Schema (with `$ref`, `anyOf` for optionals, `additionalProperties:
false`, titles); Kubernetes wants a *structural* schema. The conversion inlines every
reference, collapses `X | None` to `X` (absence is how Kubernetes says "unset"), drops
what structural schemas forbid, and leaves unknown-field rejection to the API server's
strict field validation, which names the offending field.
"""

from __future__ import annotations

from typing import Any

from .common import GROUP, VERSION
from .kinds import KINDS, Kind


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"untyped anyOf cannot be structural: {node}")
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        return _structural({**options[0], **rest}, defs)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or key == "$defs":
            continue
        if key == "additionalProperties" and value is False:
            continue  # strict field validation rejects unknown fields, naming them
        if key == "default":
            default = _crd_default(value)
            if default is not None:
                out["default"] = default
            continue
        if key == "description" and isinstance(value, str):
            out[key] = " ".join(value.split())  # docstrings wrap; explain re-wraps
        elif key in ("properties",):
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _structural(value, defs)
    if out.get("type") == "object" and "properties" in out and not out.get("required"):
        out.pop("required", None)
    conditions = out.get("properties", {}).get("conditions", {})
    if conditions.get("type") == "array":
        conditions["x-kubernetes-list-type"] = "map"
        conditions["x-kubernetes-list-map-keys"] = ["type"]
    return out


def _crd_default(value: Any) -> Any:
    """Defaults the API server should fill in.

    Object defaults are written out in full: the API server checks a default against
    the object's CEL rules as it stands, without filling in nested defaults first.
    None and empty lists are left unset rather than stored as noise.
    """
    if value is None or value == []:
        return None
    if isinstance(value, dict):
        return {k: d for k, v in value.items() if (d := _crd_default(v)) is not None}
    return value


def schema_of(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    result: dict[str, Any] = _structural(raw, defs)
    return result


def crd_for(kind: Kind) -> dict[str, Any]:
    spec_schema = schema_of(kind.spec)
    status_schema = schema_of(kind.status)
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": kind.columns,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": kind.description,
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string", "description": "deskfleet.io/v1alpha1"},
                    "kind": {"type": "string", "description": kind.kind},
                    "metadata": {"type": "object"},
                    "spec": spec_schema,
                    "status": status_schema,
                },
            }
        },
    }
    if kind.selectable_fields:
        version["selectableFields"] = [{"jsonPath": p} for p in kind.selectable_fields]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "deskfleet"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": ["deskfleet"],
            },
            "versions": [version],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd_for(k) for k in KINDS]
