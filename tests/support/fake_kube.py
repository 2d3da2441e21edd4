"""A fake of `deskfleet.kube.client.Kube` for unit tests of controller functions: an
in-memory store of objects by REST path, and every write recorded in order, so a test
can assert exactly what a function sent to the API server (and that it sent nothing).

It keeps only what the tests seed or the functions write; what it does with a request
is the API server's behaviour reduced to what the controllers rely on: `get` of a
missing object is None, a GET through `request` is a 404, POST of an existing name a
409, PUT a compare-and-swap on `resourceVersion`, merge patches merge (None removes),
server-side apply merges and counts a generation, `delete` honours a uid precondition.
A failure can be scripted per verb and path (`fail`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from deskfleet.api.kinds import BY_KIND as API_KINDS
from deskfleet.kube.client import FIELD_MANAGER, KubeError
from deskfleet.kube.resources import ResourceType
from deskfleet.kube.resources import type_of as rendered_type_of


def type_of(obj: dict[str, Any]) -> ResourceType:
    """Any object's REST type: deskfleet's own kinds, or what the operator renders."""
    own = API_KINDS.get(str(obj.get("kind")))
    if own and obj.get("apiVersion") == own.resource.api_version:
        return own.resource
    return rendered_type_of(obj)


@dataclass(frozen=True)
class Write:
    verb: str  # apply, merge_patch, delete, POST, PUT
    path: str
    body: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge, anything else replaces, None removes."""
    out = dict(into)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeKube:
    def __init__(self, *objects: dict[str, Any], field_manager: str = FIELD_MANAGER) -> None:
        self.field_manager = field_manager
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[Write] = []
        self.reads: list[tuple[str, str]] = []
        self._failures: dict[tuple[str, str], KubeError] = {}
        self._version = 0
        for obj in objects:
            self.put(obj)

    # --- test set-up --------------------------------------------------------------------

    def put(self, obj: dict[str, Any], path: str | None = None) -> dict[str, Any]:
        meta = obj["metadata"]
        path = path or type_of(obj).path(meta["namespace"], meta["name"])
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = self._next_version()
        self.objects[path] = stored
        return stored

    def fail(self, verb: str, path: str, status: int, reason: str = "", message: str = ""
             ) -> None:
        """The next `verb` on `path` raises KubeError(status); once."""
        self._failures[(verb, path)] = KubeError(status, reason, message or reason)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _raise_if_scripted(self, verb: str, path: str) -> None:
        if (err := self._failures.pop((verb, path), None)) is not None:
            raise err

    # --- reads ----------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        path = rtype.path(namespace, name)
        self.reads.append(("get", path))
        self._raise_if_scripted("get", path)
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    def get_metadata(self, rtype: ResourceType, namespace: str, name: str
                     ) -> dict[str, Any] | None:
        found = self.get(rtype, namespace, name)
        return {"metadata": found["metadata"]} if found is not None else None

    def list(self, rtype: ResourceType, namespace: str, label_selector: str = ""
             ) -> list[dict[str, Any]]:
        prefix = rtype.path(namespace) + "/"
        self.reads.append(("list", prefix))
        return [copy.deepcopy(o) for p, o in sorted(self.objects.items())
                if p.startswith(prefix)]

    # --- writes ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                body: Any = None, content_type: str = "application/json",
                accept: str = "application/json") -> Any:
        if method == "GET":
            self.reads.append(("GET", path))
            self._raise_if_scripted("GET", path)
            if path not in self.objects:
                raise KubeError(404, "NotFound", f"{path} not found")
            return copy.deepcopy(self.objects[path])
        self.writes.append(Write(method, path, copy.deepcopy(body), dict(query or {})))
        self._raise_if_scripted(method, path)
        if method == "POST":
            name = (body.get("metadata") or {}).get("name")
            if name is None:  # generateName (Events): stored under a made-up name
                name = f"{body['metadata'].get('generateName', '')}{self._version + 1}"
            target = f"{path}/{name}"
            if target in self.objects:
                raise KubeError(409, "AlreadyExists", f"{target} already exists")
            stored = _merge(body, {"metadata": {"name": name}})
            return copy.deepcopy(self.put(stored, target))
        if method == "PUT":
            stored = self.objects.get(path)
            if stored is None:
                raise KubeError(404, "NotFound", f"{path} not found")
            if (body.get("metadata") or {}).get("resourceVersion") != \
                    stored["metadata"]["resourceVersion"]:
                raise KubeError(409, "Conflict", "the object has been modified")
            return copy.deepcopy(self.put(body, path))
        return None

    def apply(self, manifest: dict[str, Any], *, field_manager: str | None = None,
              subresource: str = "") -> dict[str, Any]:
        meta = manifest["metadata"]
        path = type_of(manifest).path(meta["namespace"], meta["name"], subresource)
        self.writes.append(Write("apply", path, copy.deepcopy(manifest),
                                 {"fieldManager": field_manager or self.field_manager}))
        self._raise_if_scripted("apply", path)
        stored = _merge(self.objects.get(path) or {}, manifest)
        stored["metadata"]["generation"] = int(
            (self.objects.get(path) or {}).get("metadata", {}).get("generation") or 0) + 1
        return copy.deepcopy(self.put(stored, path))

    def merge_patch(self, rtype: ResourceType, namespace: str, name: str,
                    patch: dict[str, Any], subresource: str = "", strict: bool = False
                    ) -> dict[str, Any]:
        path = rtype.path(namespace, name, subresource)
        self.writes.append(Write("merge_patch", path, copy.deepcopy(patch),
                                 {"strict": strict} if strict else {}))
        self._raise_if_scripted("merge_patch", path)
        whole = rtype.path(namespace, name)
        if whole not in self.objects:
            return {}
        return copy.deepcopy(self.put(_merge(self.objects[whole], patch), whole))

    def delete(self, rtype: ResourceType, namespace: str, name: str, uid: str | None = None
               ) -> bool:
        path = rtype.path(namespace, name)
        self.writes.append(Write("delete", path, None, {"uid": uid} if uid else {}))
        self._raise_if_scripted("delete", path)
        stored = self.objects.get(path)
        if stored is None or (uid and stored["metadata"].get("uid") != uid):
            return False  # not found, or the uid precondition failed: as Kube.delete
        del self.objects[path]
        return True
