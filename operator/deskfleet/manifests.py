"""Reading and writing YAML manifests, with errors that name the file and document."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


class ManifestError(ValueError):
    """A manifest that cannot be read or is not a deskfleet object."""


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Multi-line strings (catalog JSON, configs) stay readable as block scalars.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_all(objects: Iterable[dict[str, Any]]) -> str:
    return yaml.dump_all(list(objects), Dumper=_Dumper, sort_keys=False,
                         default_flow_style=False, explicit_start=True)


def load_paths(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every document in the files (directories are read recursively, *.yaml/*.yml)."""
    objects: list[dict[str, Any]] = []
    for path in paths:
        files = (sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
                 if path.is_dir() else [path])
        for file in files:
            try:
                docs = list(yaml.safe_load_all(file.read_text()))
            except (OSError, yaml.YAMLError) as err:
                raise ManifestError(f"{file}: {err}") from err
            for index, doc in enumerate(docs):
                if doc is None:
                    continue
                if not isinstance(doc, dict) or "kind" not in doc:
                    raise ManifestError(f"{file} document {index + 1}: not a Kubernetes object")
                objects.append(doc)
    return objects
