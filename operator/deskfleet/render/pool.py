"""SessionHostPool -> Deployment, Service, PodDisruptionBudget, NetworkPolicy, ConfigMap."""

from __future__ import annotations

import json
from typing import Any

from ..api.sessionhostpool import SessionHostPoolSpec
from ..settings import Settings
from .meta import ACCEPTING_LABEL, BUSY_LABEL, POOL_LABEL, Resource, without_none

Pool = Resource[SessionHostPoolSpec]

HOST_CONTAINER = "session-host"
CONFIG_MOUNT = "/etc/deskfleet"
AGENT_PORT = 15090


def host_config_name(pool_name: str) -> str:
    return f"{pool_name}-host-config"


def host_selector(pool_name: str) -> dict[str, str]:
    """Selects every host of the pool; the Deployment's immutable selector."""
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
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": pool.child_metadata(host_config_name(pool.name), **{POOL_LABEL: pool.name}),
        "data": {"host.json": json.dumps(host_config(pool, apps), indent=2, sort_keys=True)},
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


def build_deployment(pool: Pool) -> dict[str, Any]:
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
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": pool.child_metadata(pool.name, **{POOL_LABEL: pool.name}),
        "spec": {
            # No `replicas`: the autoscaler owns it under its own field manager, so a
            # render pass and a scaling pass never fight over the field.
            "selector": {"matchLabels": host_selector(pool.name)},
            "revisionHistoryLimit": 3,
            # Never take a host away to roll out a new one: surge, then retire.
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {"metadata": {"labels": template_labels}, "spec": pod_spec},
        },
    }


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
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": pool.child_metadata(pool.name, **{POOL_LABEL: pool.name}),
        "spec": {
            "podSelector": {"matchLabels": host_selector(pool.name)},
            "policyTypes": ["Ingress", "Egress"],
            # Default deny, then: sessions only from the gateway ...
            "ingress": [{"from": [gateway_peer],
                         "ports": [{"port": spec.session_port, "protocol": "TCP"}]}],
            # ... and out only to DNS and the declared backends: data stays server-side.
            "egress": egress,
        },
    }


def build_pool_children(
    pool: Pool, settings: Settings, apps: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every child a pool needs, in apply order (config before the hosts that mount it)."""
    return [
        build_config_map(pool, apps),
        build_deployment(pool),
        build_service(pool),
        build_pdb(pool),
        build_network_policy(pool, settings),
    ]
