"""SessionHostPool -> Deployment, Service, PodDisruptionBudget, NetworkPolicy, ConfigMap."""

from __future__ import annotations

from typing import Any

from ..api.sessionhostpool import SessionHostPoolSpec
from ..settings import Settings
from .configdata import encode_document
from .meta import ACCEPTING_LABEL, BUSY_LABEL, POOL_LABEL, Resource, without_none
from .revision import REVISION_LABEL, deployment_name, revision_of

Pool = Resource[SessionHostPoolSpec]

HOST_CONTAINER = "session-host"
CONFIG_MOUNT = "/etc/deskfleet"
HOST_CONFIG_KEY = "host.json"
AGENT_PORT = 15090
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
PODINFO_MOUNT = "/etc/deskfleet/podinfo"
DRAIN_MOUNT = "/run/deskfleet"  # agent -> host: draining, notice.json, logoff.json
HOST_REPORT_MOUNT = "/run/deskfleet-host"  # host -> agent: sessions.json
HOST_REPORT_FILE = f"{HOST_REPORT_MOUNT}/sessions.json"


def host_config_name(pool_name: str) -> str:
    return f"{pool_name}-host-config"


def host_selector(pool_name: str) -> dict[str, str]:
    """Selects every host of the pool, of every revision."""
    return {POOL_LABEL: pool_name}


def host_config(pool: Pool, apps: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the hosts' agent reads: the session port, capacity, drain behaviour and the
    session controls of each app that runs on the pool (filled in by access policies)."""
    spec = pool.spec
    return {
        "pool": pool.name,
        "protocol": spec.protocol,
        "port": spec.session_port,
        "sessionsPerHost": spec.sessions_per_host,
        "drain": spec.scaling.drain.wire(),
        "apps": apps or {},
    }


def build_config_map(pool: Pool, apps: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mounted at CONFIG_MOUNT: `host.json`, or `host.json.gz` when a pool's apps carry
    so many grants that it does not fit readable (see `configdata`). Raises
    DocumentTooLarge when it does not fit even compressed."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": pool.child_metadata(host_config_name(pool.name), **{POOL_LABEL: pool.name}),
        **encode_document(
            HOST_CONFIG_KEY, host_config(pool, apps),
            f"the host config of pool {pool.name} ({len(apps or {})} apps)",
            "spread its apps over more pools, or grant them to fewer policies"),
    }


def _restricted_container_security() -> dict[str, Any]:
    # The "restricted" Pod Security Standard, so pools run in namespaces that enforce it.
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(spec: SessionHostPoolSpec) -> list[dict[str, Any]]:
    return [e.wire() for e in spec.env]


def build_host_container(spec: SessionHostPoolSpec) -> dict[str, Any]:
    probe = {"tcpSocket": {"port": "session"}}
    return without_none({
        "name": HOST_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": spec.command,
        "args": spec.args,
        "env": _env(spec),
        "ports": [{"name": "session", "containerPort": spec.session_port, "protocol": "TCP"}],
        "resources": spec.resources.wire() if spec.resources else None,
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 2},
        # Generous liveness: restarting a host cuts every session on it.
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "periodSeconds": 20,
                          "failureThreshold": 6},
        "securityContext": _restricted_container_security(),
        "volumeMounts": [{"name": "host-config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
    })


def agent_name(pool_name: str) -> str:
    return f"{pool_name}-agent"


def _agent_args(spec: SessionHostPoolSpec) -> list[str]:
    args = ["agent", "--port", str(spec.session_port), "--metrics-port", str(AGENT_PORT)]
    # TCP pools keep exactly the arguments they always had: no rollout on upgrade.
    if spec.agent.session_source == "host":
        args += ["--session-source", "host", "--host-report-file", HOST_REPORT_FILE]
        if spec.agent.host_report_url:
            args += ["--host-report-url", spec.agent.host_report_url]
    return args


def build_agent_container(pool: Pool, settings: Settings) -> dict[str, Any]:
    def field(path: str) -> dict[str, Any]:
        return {"valueFrom": {"fieldRef": {"fieldPath": path}}}

    mounts = [
        {"name": "agent-token", "mountPath": TOKEN_MOUNT, "readOnly": True},
        {"name": "podinfo", "mountPath": PODINFO_MOUNT, "readOnly": True},
        {"name": "drain-notice", "mountPath": DRAIN_MOUNT},
    ]
    if pool.spec.agent.session_source == "host":
        mounts.append({"name": "host-report", "mountPath": HOST_REPORT_MOUNT,
                       "readOnly": True})
    return {
        "name": "deskfleet-agent",
        "image": pool.spec.agent.image or settings.operator_image,
        "imagePullPolicy": "IfNotPresent",
        "args": _agent_args(pool.spec),
        "env": [{"name": "POD_NAME", **field("metadata.name")},
                {"name": "POD_NAMESPACE", **field("metadata.namespace")}],
        "ports": [{"name": "agent-metrics", "containerPort": AGENT_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": "agent-metrics"},
                           "periodSeconds": 10},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                      "limits": {"memory": "96Mi"}},
        "securityContext": {**_restricted_container_security(), "readOnlyRootFilesystem": True},
        "volumeMounts": mounts,
    }


def _agent_volumes(spec: SessionHostPoolSpec) -> list[dict[str, Any]]:
    # Each direction of the session contract has its own volume, writable by its writer
    # only: the host cannot forge a drain notice, the agent cannot forge sessions.
    report = ([{"name": "host-report", "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}}]
              if spec.agent.session_source == "host" else [])
    return [
        # Only the agent container mounts this token; the session host has none.
        {"name": "agent-token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "fieldPath": "metadata.namespace"}}]}},
        ]}},
        {"name": "podinfo", "downwardAPI": {"items": [
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}},
        {"name": "drain-notice", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        *report,
    ]


def build_agent_rbac(pool: Pool) -> list[dict[str, Any]]:
    """The agent may patch pods in its namespace and nothing else (RBAC cannot name the
    agent's own pod; the chart's ValidatingAdmissionPolicy narrows it to exactly that)."""
    name = agent_name(pool.name)
    labels = {POOL_LABEL: pool.name}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": pool.child_metadata(name, **labels),
         "automountServiceAccountToken": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": pool.child_metadata(name, **labels),
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": pool.child_metadata(name, **labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": pool.namespace}]},
    ]


def build_deployment(pool: Pool, settings: Settings) -> dict[str, Any]:
    """The Deployment of the pool's current revision (render/revision.py): named and
    selected by a hash of its pod template, so that template never changes and a change
    of the hosts makes a new Deployment beside the old one, never a rolling update."""
    template = _pod_template(pool, settings)
    revision = revision_of(template)
    template["metadata"]["labels"][REVISION_LABEL] = revision
    selector = {**host_selector(pool.name), REVISION_LABEL: revision}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": pool.child_metadata(deployment_name(pool.name, revision),
                                        **{POOL_LABEL: pool.name, REVISION_LABEL: revision}),
        "spec": {
            # No `replicas`: the autoscaler owns it under its own field manager, so a
            # render pass and a scaling pass never fight over the field.
            "selector": {"matchLabels": selector},
            "revisionHistoryLimit": 3,
            # The template never changes (it names the Deployment); should another writer
            # change it, never take a host away to roll out a new one.
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": template,
        },
    }


def _pod_template(pool: Pool, settings: Settings) -> dict[str, Any]:
    spec = pool.spec
    placement = spec.placement
    template_labels = {**pool.child_labels(), POOL_LABEL: pool.name, ACCEPTING_LABEL: "true"}
    pod_spec = without_none({
        # Hosts never talk to the API server; the agent (when present) gets its own token.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 30,
        "imagePullSecrets": [{"name": s} for s in spec.image_pull_secrets],
        "nodeSelector": placement.node_selector if placement else None,
        "tolerations": placement.tolerations if placement else None,
        "affinity": placement.affinity if placement else None,
        "priorityClassName": placement.priority_class_name if placement else None,
        "containers": [build_host_container(spec)],
    })
    pod_spec["volumes"] = [
        {"name": "host-config", "configMap": {"name": host_config_name(pool.name)}}
    ]
    if spec.agent.enabled:
        pod_spec["serviceAccountName"] = agent_name(pool.name)
        host_mounts = pod_spec["containers"][0]["volumeMounts"]
        host_mounts.append({"name": "drain-notice", "mountPath": DRAIN_MOUNT, "readOnly": True})
        if spec.agent.session_source == "host":
            host_mounts.append({"name": "host-report", "mountPath": HOST_REPORT_MOUNT})
        pod_spec["containers"].append(build_agent_container(pool, settings))
        pod_spec["volumes"] += _agent_volumes(spec)
    return {"metadata": {"labels": template_labels}, "spec": pod_spec}


def build_service(pool: Pool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": pool.child_metadata(pool.name, **{POOL_LABEL: pool.name}),
        "spec": {
            "type": "ClusterIP",
            # Only hosts with a free slot that are not draining receive new sessions;
            # established sessions keep their connection to whichever host they are on.
            "selector": {POOL_LABEL: pool.name, ACCEPTING_LABEL: "true"},
            "ports": [{"name": "session", "port": pool.spec.session_port,
                       "targetPort": "session", "protocol": "TCP"}],
        },
    }


def build_pdb(pool: Pool) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": pool.child_metadata(pool.name, **{POOL_LABEL: pool.name}),
        "spec": {
            # Only hosts that carry sessions are protected from voluntary evictions
            # (node drains); empty hosts may go, so cluster maintenance is not blocked.
            "selector": {"matchLabels": {POOL_LABEL: pool.name, BUSY_LABEL: "true"}},
            "maxUnavailable": 0,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def build_network_policy(pool: Pool, settings: Settings) -> dict[str, Any]:
    spec = pool.spec
    gateway_peer: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": dict(settings.gateway_namespace_labels)},
    }
    if settings.gateway_pod_labels:
        gateway_peer["podSelector"] = {"matchLabels": dict(settings.gateway_pod_labels)}
    egress: list[dict[str, Any]] = [{
        "to": [{"namespaceSelector": {"matchLabels": dict(settings.dns_namespace_labels)}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }]
    egress += [
        {"to": [{"ipBlock": {"cidr": b.cidr}}],
         "ports": [{"port": p.port, "protocol": p.protocol} for p in b.ports]}
        for b in spec.backends
    ]
    ingress: list[dict[str, Any]] = [{"from": [gateway_peer],
                                      "ports": [{"port": spec.session_port, "protocol": "TCP"}]}]
    if spec.agent.enabled:
        ingress.append({
            "from": [{"namespaceSelector": {
                "matchLabels": dict(settings.monitoring_namespace_labels)}}],
            "ports": [{"port": AGENT_PORT, "protocol": "TCP"}]})
        if settings.api_server_cidrs:
            egress.append({"to": [{"ipBlock": {"cidr": c}} for c in settings.api_server_cidrs],
                           "ports": [{"port": 443, "protocol": "TCP"},
                                     {"port": 6443, "protocol": "TCP"}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": pool.child_metadata(pool.name, **{POOL_LABEL: pool.name}),
        "spec": {
            "podSelector": {"matchLabels": host_selector(pool.name)},
            "policyTypes": ["Ingress", "Egress"],
            # Default deny, then: sessions only from the gateway (and agent metrics only
            # from monitoring) ...
            "ingress": ingress,
            # ... and out only to DNS and the declared backends: data stays server-side.
            "egress": egress,
        },
    }


def build_pool_children(
    pool: Pool, settings: Settings, apps: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every child a pool needs, in apply order (config before the hosts that mount it)."""
    rbac = build_agent_rbac(pool) if pool.spec.agent.enabled else []
    return [
        *rbac,
        build_config_map(pool, apps),
        build_deployment(pool, settings),
        build_service(pool),
        build_pdb(pool),
        build_network_policy(pool, settings),
    ]
