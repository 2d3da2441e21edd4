"""A thin REST client over the official `kubernetes` package's ApiClient.

The typed APIs convert every response into model objects; the operator works on plain
dicts (what it renders, what the watch delivers), so it speaks JSON through the
ApiClient's authenticated connection pool directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from .resources import ResourceType, type_of

FIELD_MANAGER = "deskfleet"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}: {message}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def load_api_client(kubeconfig: str | None = None) -> k8s.ApiClient:
    """In-cluster credentials when running in a pod, else KUBECONFIG."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    return k8s.ApiClient(configuration)


class Kube:
    def __init__(self, api: k8s.ApiClient, field_manager: str = FIELD_MANAGER) -> None:
        self.api = api
        self.field_manager = field_manager

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                body: Any = None, content_type: str = "application/json",
                accept: str = "application/json") -> Any:
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
            if "yaml" in content_type:
                # Server-side apply bodies are YAML. The client would write JSON with
                # characters outside the BMP as \ud83c\udfe5-style surrogate escapes,
                # which the API server's YAML decoder refuses: send them as UTF-8.
                body = json.dumps(body, ensure_ascii=False).encode()
        method, url, headers, body, _ = self.api.param_serialize(
            method=method, resource_path=path, query_params=list((query or {}).items()),
            header_params=headers, body=body, auth_settings=["BearerToken"])
        try:
            response = self.api.call_api(method, url, header_params=headers, body=body,
                                         _request_timeout=(5, 60))
            data = response.read()
        except urllib3.exceptions.HTTPError as err:
            # No answer at all (API server restarting, network gone): an API error like
            # any other, which callers report and the work queue retries with backoff.
            raise KubeError(0, "Unreachable", f"{method} {path}: {err}") from err
        if response.status >= 400:
            try:
                status = json.loads(data)
                raise KubeError(response.status, status.get("reason", ""),
                                status.get("message", ""))
            except ValueError:
                raise KubeError(response.status, response.reason or "", data[:500].decode(
                    errors="replace")) from None
        return json.loads(data) if data else None

    def stream(self, path: str, query: dict[str, str], read_timeout: float
               ) -> Iterator[dict[str, Any]]:
        """A watch: one decoded event per line until the server ends the stream. A
        read that waits longer than `read_timeout` raises, so a silently dead
        connection cannot look like a quiet cluster."""
        method, url, headers, _, _ = self.api.param_serialize(
            method="GET", resource_path=path, query_params=list(query.items()),
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        try:
            response = self.api.call_api(method, url, header_params=headers,
                                         _request_timeout=(5, read_timeout)).response
        except urllib3.exceptions.HTTPError as err:
            raise KubeError(0, "Unreachable", f"watch {path}: {err}") from err
        try:
            if response.status >= 400:
                raise KubeError(response.status, response.reason or "",
                                response.read()[:500].decode(errors="replace"))
            for line in response:
                if line.strip():
                    yield json.loads(line)
        except urllib3.exceptions.HTTPError as err:
            raise KubeError(0, "Unreachable", f"watch {path}: {err}") from err
        finally:
            response.release_conn()

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("GET", rtype.path(namespace, name))
            return result
        except KubeError as err:
            if err.not_found:
                return None
            raise

    def get_metadata(self, rtype: ResourceType, namespace: str, name: str
                     ) -> dict[str, Any] | None:
        """The object's metadata only (PartialObjectMetadata): for kinds whose content
        the operator must never hold, such as Secrets."""
        try:
            result: dict[str, Any] = self.request("GET", rtype.path(namespace, name),
                                                  accept=METADATA_ONLY)
            return result
        except KubeError as err:
            if err.not_found:
                return None
            raise

    def list(self, rtype: ResourceType, namespace: str, label_selector: str = ""
             ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        items: list[dict[str, Any]] = self.request("GET", rtype.path(namespace),
                                                   query=query)["items"]
        return items

    def apply(self, manifest: dict[str, Any], *, field_manager: str | None = None,
              subresource: str = "", rtype: ResourceType | None = None) -> dict[str, Any]:
        """Server-side apply, forcing ownership: deskfleet is the source of truth for
        every field it sets, so a hand edit of one of them is overwritten. `rtype`: the
        manifest's REST type, when it is not one the operator renders (type_of)."""
        rtype = rtype or type_of(manifest)
        meta = manifest["metadata"]
        result: dict[str, Any] = self.request(
            "PATCH", rtype.path(meta["namespace"], meta["name"], subresource),
            query={"fieldManager": field_manager or self.field_manager, "force": "true",
                   "fieldValidation": "Strict"},
            body=manifest, content_type="application/apply-patch+yaml")
        return result

    def merge_patch(self, rtype: ResourceType, namespace: str, name: str,
                    patch: dict[str, Any], subresource: str = "", strict: bool = False
                    ) -> dict[str, Any]:
        """`strict`: the API server refuses fields the schema does not know rather
        than dropping them (fieldValidation=Strict)."""
        query = {"fieldManager": self.field_manager}
        if strict:
            query["fieldValidation"] = "Strict"
        result: dict[str, Any] = self.request(
            "PATCH", rtype.path(namespace, name, subresource), query=query, body=patch,
            content_type="application/merge-patch+json")
        return result

    def delete(self, rtype: ResourceType, namespace: str, name: str, uid: str | None = None
               ) -> bool:
        """Delete, only if it is still the object we saw (uid precondition)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", rtype.path(namespace, name), body=body)
            return True
        except KubeError as err:
            if err.not_found or err.conflict:
                return False
            raise
