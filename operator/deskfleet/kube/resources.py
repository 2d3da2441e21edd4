"""The Kubernetes kinds deskfleet reads and writes, and their REST paths.

A static table instead of discovery: the operator only ever touches these kinds, and
knowing them up front keeps a pass free of discovery requests (and documents exactly
what the RBAC must grant).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def path(self, namespace: str, name: str | None = None, subresource: str = "") -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        path = f"{prefix}/namespaces/{namespace}/{self.plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path

    def collection_path(self, namespace: str | None) -> str:
        """The list/watch path of one namespace, or of all of them (None)."""
        if namespace is not None:
            return self.path(namespace)
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{prefix}/{self.plural}"


CONFIGMAP = ResourceType("v1", "ConfigMap", "configmaps")
DEPLOYMENT = ResourceType("apps/v1", "Deployment", "deployments")
CHILD_TYPES: tuple[ResourceType, ...] = (
    ResourceType("v1", "ServiceAccount", "serviceaccounts"),
    ResourceType("rbac.authorization.k8s.io/v1", "Role", "roles"),
    ResourceType("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    CONFIGMAP,
    DEPLOYMENT,
    ResourceType("v1", "Service", "services"),
    ResourceType("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ResourceType("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ResourceType("networking.k8s.io/v1", "Ingress", "ingresses"),
    ResourceType("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
    # What a gateway flavour needs beside an HTTPRoute to ask the portal (render/
    # gateway_auth.py); watched only where their CRDs are installed.
    ResourceType("traefik.io/v1alpha1", "Middleware", "middlewares"),
    ResourceType("gateway.envoyproxy.io/v1alpha1", "SecurityPolicy", "securitypolicies"),
)
POD = ResourceType("v1", "Pod", "pods")
# What the operator does with what it renders and with its hosts: part of the table its
# ClusterRole in the chart must grant (controllers/registry.operator_rules, which adds
# deskfleet's own kinds; tests/unit/test_rbac.py compares the two).
CHILD_VERBS = ("get", "list", "watch", "create", "patch", "delete")  # apply, prune
POD_VERBS = ("get", "list", "watch", "patch", "delete")  # label hosts, remove drained ones

RENDERED_TYPES: dict[tuple[str, str], ResourceType] = {
    (t.api_version, t.kind): t for t in (*CHILD_TYPES, POD)
}


def type_of(manifest: dict[str, object]) -> ResourceType:
    """The REST type of something the operator renders (deskfleet's own kinds are in
    api/kinds.py)."""
    return RENDERED_TYPES[(str(manifest["apiVersion"]), str(manifest["kind"]))]
