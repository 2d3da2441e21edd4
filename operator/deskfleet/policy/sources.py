"""Where `deskfleet explain` gets policies and apps: YAML files, or the live cluster.
Both feed the same evaluation core, so their answers agree by construction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..api.accesspolicy import AccessPolicySpec
from ..api.parse import InvalidSpec, parse
from ..api.resource import Resource
from ..manifests import ManifestError, load_paths


def from_files(paths: list[Path]) -> list[dict[str, Any]]:
    return [d for d in load_paths(paths) if str(d.get("apiVersion", "")).startswith(
        "deskfleet.io/")]


def from_cluster(namespace: str) -> list[dict[str, Any]]:
    from ..api.kinds import RESOURCES
    from ..kube.client import Kube, load_api_client

    kube = Kube(load_api_client())
    bodies: list[dict[str, Any]] = []
    for rtype in RESOURCES:
        if rtype.kind in ("AccessPolicy", "PublishedApp"):
            for item in kube.list(rtype, namespace):
                bodies.append({**item, "apiVersion": rtype.api_version, "kind": rtype.kind})
    return bodies


def split(bodies: list[dict[str, Any]], namespace: str | None
          ) -> tuple[list[Resource[AccessPolicySpec]], dict[str, dict[str, str]], str]:
    """Policies and {app: labels} of one namespace (the only one, if not given)."""
    namespaces = {b.get("metadata", {}).get("namespace", "default") for b in bodies}
    if namespace is None:
        if len(namespaces) > 1:
            raise ManifestError(f"several namespaces ({', '.join(sorted(namespaces))}): "
                                "choose one with -n")
        namespace = next(iter(namespaces), "default")
    policies, apps = [], {}
    for body in bodies:
        if body.get("metadata", {}).get("namespace", "default") != namespace:
            continue
        if body["kind"] == "AccessPolicy":
            try:
                policies.append(parse(body))
            except InvalidSpec as err:
                raise ManifestError(str(err)) from err
        elif body["kind"] == "PublishedApp":
            meta = body["metadata"]
            apps[meta["name"]] = dict(meta.get("labels") or {})
    return policies, apps, namespace
