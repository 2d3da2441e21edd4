"""From a raw object (a watch event's body, a YAML document) to a typed Resource.

Admission already enforced the schema, so what fails here is what only the operator can
judge (a time zone that does not exist, 30 February) — or an object written while an
older CRD was installed. Either way the error names the field, and the caller reports it
in status rather than crashing.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .common import API_VERSION
from .kinds import BY_KIND
from .resource import Resource


class InvalidSpec(ValueError):
    """A spec the operator cannot act on; `problems` are `field.path: message` lines."""

    def __init__(self, kind: str, name: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{kind} {name}: " + "; ".join(problems))


def _path(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def describe(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        message = e["msg"].removeprefix("Value error, ")
        problems.append(f"{_path(e['loc'])}: {message}")
    return problems


# Validated specs by (kind, uid, generation). The API server bumps `generation` on every
# spec change (the CRDs have a status subresource), so the key names one spec exactly;
# a pass that reads 200 policies then validates none of them again. Specs are treated
# as immutable everywhere (builders copy what they render).
_SPECS: dict[tuple[str, str, int], Any] = {}
_SPECS_MAX = 50_000
# Only the kinds other objects' passes read: a pool by each pass of its apps, a policy by
# every app's and pool's pass. An app's spec is read by its own passes and the catalog's,
# and validating it again takes some 10 us; 10,000 of them kept took 20 MB.
_KEPT_KINDS = frozenset({"SessionHostPool", "AccessPolicy"})


def _validated_spec(kind: Any, kind_name: str, meta: dict[str, Any], raw: dict[str, Any]
                    ) -> Any:
    uid, generation = meta.get("uid"), meta.get("generation")
    key = (kind_name, uid, generation) if uid and generation and kind_name in _KEPT_KINDS \
        else None
    if key is not None and (cached := _SPECS.get(key)) is not None:
        return cached
    spec = kind.spec.model_validate(raw, by_alias=True)
    if key is not None:
        if len(_SPECS) >= _SPECS_MAX:
            _SPECS.clear()  # deleted objects' entries go too; the live ones refill
        _SPECS[key] = spec
    return spec


def parse(body: dict[str, Any]) -> Resource[Any]:
    kind_name = body.get("kind", "")
    if body.get("apiVersion") != API_VERSION or kind_name not in BY_KIND:
        raise InvalidSpec(kind_name or "object", body.get("metadata", {}).get("name", "?"),
                          [f"not a {API_VERSION} object"])
    kind = BY_KIND[kind_name]
    meta = body.get("metadata", {})
    name = meta.get("name", "")
    try:
        spec = _validated_spec(kind, kind_name, meta, body.get("spec") or {})
    except ValidationError as err:
        raise InvalidSpec(kind_name, name, describe(err)) from err
    return Resource(
        kind=kind_name,
        name=name,
        namespace=meta.get("namespace", "default"),
        uid=meta.get("uid", ""),
        spec=spec,
        generation=meta.get("generation", 1),
        labels=dict(meta.get("labels") or {}),
    )
