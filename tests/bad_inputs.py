"""A catalogue of bad inputs: each is a valid base object with one thing broken, the
field the error must name, and where it must be caught.

`admission`: the API server refuses it, naming the field.
`operator`: only the operator can judge it; it is accepted, then reported in status.
`cel`: caught by a CEL rule (the offline models don't evaluate CEL; the cluster does).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

DELETE = object()


def pool(**spec: Any) -> dict[str, Any]:
    base = {"image": "registry.example/desktop:1", "protocol": "rdp", "sessionsPerHost": 4,
            "scaling": {"minHosts": 1, "maxHosts": 5}}
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
            "metadata": {"name": "bad"}, "spec": {**base, **spec}}


def app(**spec: Any) -> dict[str, Any]:
    base = {"displayName": "EPR", "poolRef": {"name": "ehr"},
            "gateway": {"host": "workspace.example.org", "path": "/epr"}}
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "PublishedApp",
            "metadata": {"name": "bad"}, "spec": {**base, **spec}}


def policy(**spec: Any) -> dict[str, Any]:
    base = {"subjects": {"groups": ["clinicians"]}, "apps": {"names": ["epr"]}}
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
            "metadata": {"name": "bad"}, "spec": {**base, **spec}}


@dataclass(frozen=True)
class Case:
    id: str
    body: dict[str, Any]
    field: str  # the path the error must name
    where: str = "admission"  # or "operator"
    cel: bool = False
    reason: str = ""  # for operator cases: the status reason

    def with_name(self, name: str, namespace: str) -> dict[str, Any]:
        body = copy.deepcopy(self.body)
        body["metadata"] = {"name": name, "namespace": namespace}
        return body


def without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


PHASE = {"name": "peak", "start": "08:00", "end": "17:00"}

CASES: list[Case] = [
    # --- SessionHostPool -------------------------------------------------------------
    Case("pool-missing-image", without(pool(), "spec", "image"), "spec.image"),
    Case("pool-empty-image", pool(image=""), "spec.image"),
    Case("pool-unknown-protocol", pool(protocol="spice"), "spec.protocol"),
    Case("pool-port-too-high", pool(port=70000), "spec.port"),
    Case("pool-port-zero", pool(port=0), "spec.port"),
    Case("pool-port-wrong-type", pool(port="rdp"), "spec.port"),
    Case("pool-port-reserved-for-agent", pool(port=15090), "spec.port", cel=True),
    Case("pool-zero-sessions-per-host", pool(sessionsPerHost=0), "spec.sessionsPerHost"),
    Case("pool-sessions-wrong-type", pool(sessionsPerHost="many"), "spec.sessionsPerHost"),
    Case("pool-min-above-max", pool(scaling={"minHosts": 5, "maxHosts": 2}),
         "spec.scaling.minHosts", cel=True),
    Case("pool-negative-min", pool(scaling={"minHosts": -1}), "spec.scaling.minHosts"),
    Case("pool-zero-max", pool(scaling={"minHosts": 0, "maxHosts": 0}), "spec.scaling.maxHosts"),
    Case("pool-buffer-percent-over-100", pool(scaling={"bufferPercent": 150}),
         "spec.scaling.bufferPercent"),
    Case("pool-both-buffers", pool(scaling={"bufferPercent": 10, "bufferSessions": 4}),
         "spec.scaling", cel=True),
    Case("pool-bad-scale-in-delay", pool(scaling={"scaleInDelay": "10 minutes"}),
         "spec.scaling.scaleInDelay"),
    Case("pool-bad-drain-wait", pool(scaling={"drain": {"maxWait": "forever"}}),
         "spec.scaling.drain.maxWait"),
    Case("pool-malformed-time-zone", pool(scaling={"schedule": {"timeZone": "Not A Zone!"}}),
         "spec.scaling.schedule.timeZone"),
    Case("pool-phase-bad-time", pool(scaling={"schedule": {"phases": [
        {**PHASE, "start": "25:00"}]}}), "spec.scaling.schedule.phases[0].start"),
    Case("pool-phase-start-after-end", pool(scaling={"schedule": {"phases": [
        {**PHASE, "start": "18:00"}]}}), "spec.scaling.schedule.phases[0].start", cel=True),
    Case("pool-overlapping-phases", pool(scaling={"schedule": {"phases": [
        PHASE, {**PHASE, "name": "late", "start": "16:00", "end": "20:00"}]}}),
        "spec.scaling.schedule.phases", cel=True),
    Case("pool-duplicate-phase-names", pool(scaling={"schedule": {"phases": [
        PHASE, {**PHASE, "start": "18:00", "end": "20:00"}]}}),
        "spec.scaling.schedule.phases", cel=True),
    Case("pool-phase-unknown-day", pool(scaling={"schedule": {"phases": [
        {**PHASE, "days": ["Funday"]}]}}), "spec.scaling.schedule.phases[0].days[0]"),
    Case("pool-phase-min-above-max", pool(scaling={"maxHosts": 3, "schedule": {"phases": [
        {**PHASE, "minHosts": 9}]}}), "spec.scaling.schedule.phases", cel=True),
    Case("pool-malformed-holiday", pool(scaling={"schedule": {"holidays": ["2026-13-01"]}}),
         "spec.scaling.schedule.holidays[0]"),
    Case("pool-bad-cidr-octet", pool(backends=[{"cidr": "10.0.0.300/8", "ports": [{"port": 1}]}]),
         "spec.backends[0].cidr"),
    Case("pool-bad-cidr-text", pool(backends=[{"cidr": "ehr-db", "ports": [{"port": 1}]}]),
         "spec.backends[0].cidr"),
    Case("pool-backend-without-ports", pool(backends=[{"cidr": "10.0.0.0/8", "ports": []}]),
         "spec.backends[0].ports"),
    Case("pool-backend-bad-protocol", pool(backends=[{"cidr": "10.0.0.0/8", "ports": [
        {"port": 443, "protocol": "ICMP"}]}]), "spec.backends[0].ports[0].protocol"),
    Case("pool-unknown-field", pool(replicas=3), "spec.replicas"),
    Case("pool-unknown-nested-field", pool(scaling={"minHost": 3}), "spec.scaling.minHost"),
    Case("pool-bad-pull-policy", pool(imagePullPolicy="Sometimes"), "spec.imagePullPolicy"),
    Case("pool-env-two-sources", pool(env=[{"name": "A", "valueFrom": {
        "secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}}]),
        "spec.env[0].valueFrom", cel=True),
    Case("pool-env-bad-name", pool(env=[{"name": "1 BAD", "value": "x"}]), "spec.env[0].name"),
    Case("pool-bad-quantity", pool(resources={"requests": {"cpu": "lots"}}),
         "spec.resources.requests.cpu"),
    # Only the operator has a time-zone database and a calendar.
    Case("pool-nonexistent-time-zone", pool(scaling={"schedule": {"timeZone": "Mars/Olympus"}}),
         "spec.scaling.schedule.timeZone", where="operator", reason="InvalidSpec"),
    Case("pool-nonexistent-date", pool(scaling={"schedule": {"holidays": ["2026-02-30"]}}),
         "spec.scaling.schedule.holidays[0]", where="operator", reason="InvalidSpec"),
    # --- PublishedApp ----------------------------------------------------------------
    Case("app-missing-display-name", without(app(), "spec", "displayName"), "spec.displayName"),
    Case("app-missing-pool-ref", without(app(), "spec", "poolRef"), "spec.poolRef"),
    Case("app-bad-host", app(gateway={"host": "Not_A_Host"}), "spec.gateway.host"),
    Case("app-relative-path", app(gateway={"host": "a.example", "path": "epr"}),
         "spec.gateway.path"),
    Case("app-timeout-too-short", app(gateway={"host": "a.example", "timeoutSeconds": 10}),
         "spec.gateway.timeoutSeconds"),
    Case("app-command-and-path", app(launch={"command": "x", "path": "/epr/x"}),
         "spec.launch", cel=True),
    Case("app-parent-ref-and-ingress-class", app(gateway={
        "host": "a.example", "ingressClassName": "nginx", "parentRef": {"name": "gw"}}),
        "spec.gateway.ingressClassName", cel=True),
    Case("app-insecure-icon", app(icon="http://example.org/icon.png"), "spec.icon"),
    Case("app-launch-path-outside-route", app(launch={"path": "/other"}),
         "spec.launch.path", cel=True),
    Case("app-missing-pool", app(poolRef={"name": "no-such-pool"}), "spec.poolRef",
         where="operator", reason="PoolNotFound"),
    # Paths every gateway reads the same way: no traversal, no encodings, no empties.
    Case("app-path-dot-dot", app(gateway={"host": "a.example", "path": "/epr/../admin"}),
         "spec.gateway.path"),
    Case("app-path-ends-in-dot-dot", app(gateway={"host": "a.example", "path": "/epr/.."}),
         "spec.gateway.path"),
    Case("app-path-dot-segment", app(gateway={"host": "a.example", "path": "/./epr"}),
         "spec.gateway.path"),
    Case("app-path-empty-segment", app(gateway={"host": "a.example", "path": "//epr"}),
         "spec.gateway.path"),
    Case("app-path-encoded-dots", app(gateway={"host": "a.example", "path": "/epr/%2e%2e/x"}),
         "spec.gateway.path", cel=True),
    Case("app-path-encoded-slash", app(gateway={"host": "a.example", "path": "/epr%2Fx"}),
         "spec.gateway.path", cel=True),
    Case("app-path-backslash", app(gateway={"host": "a.example", "path": "/epr\\..\\x"}),
         "spec.gateway.path", cel=True),
    Case("app-path-semicolon", app(gateway={"host": "a.example", "path": "/epr/..;/x"}),
         "spec.gateway.path", cel=True),
    Case("app-path-quote", app(gateway={"host": "a.example", "path": "/epr'"}),
         "spec.gateway.path", cel=True),
    Case("app-launch-path-dot-dot", app(launch={"path": "/epr/../admin"}),
         "spec.launch.path"),
    Case("app-launch-path-sibling-prefix", app(launch={"path": "/eprx/start"}),
         "spec.launch.path", cel=True),
    # A host is one URL users open.
    Case("app-wildcard-host", app(gateway={"host": "*.example.org", "path": "/epr"}),
         "spec.gateway.host"),
    Case("app-ip-host", app(gateway={"host": "10.20.30.40", "path": "/epr"}),
         "spec.gateway.host"),
    # Text on the landing page: one line, no control characters, no bidi overrides.
    Case("app-newline-in-display-name", app(displayName="EPR\nClick here"),
         "spec.displayName", cel=True),
    Case("app-tab-in-description", app(description="Records\tand results"),
         "spec.description", cel=True),
    Case("app-bidi-override-in-category", app(category="Clin\u202eical"),
         "spec.category", cel=True),
    Case("app-escape-in-command", app(launch={"command": "epr.exe\x1b[2J"}),
         "spec.launch.command", cel=True),
    # Icons: https URLs and inline raster images only.
    Case("app-svg-data-icon", app(
        icon="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIi8+"),
        "spec.icon", cel=True),
    Case("app-svg-markup-icon", app(icon="data:image/svg+xml,<svg onload=alert(1)>"),
         "spec.icon", cel=True),
    Case("app-icon-breaks-out-of-attribute", app(
        icon='https://icons.example/x.png" onerror="alert(1)'), "spec.icon", cel=True),
    Case("app-icon-not-base64", app(icon="data:image/png,rawbytes"), "spec.icon", cel=True),
    # --- AccessPolicy ----------------------------------------------------------------
    Case("policy-empty-subjects", policy(subjects={}), "spec.subjects", cel=True),
    Case("policy-no-apps", policy(apps={}), "spec.apps", cel=True),
    Case("policy-unknown-action", policy(action="maybe"), "spec.action"),
    Case("policy-priority-out-of-range", policy(priority=5000), "spec.priority"),
    Case("policy-bad-source-range", policy(conditions={"sourceRanges": ["999.1.1.1/33"]}),
         "spec.conditions.sourceRanges[0]"),
    Case("policy-unknown-country", policy(conditions={"countries": ["XX"]}),
         "spec.conditions.countries[0]"),
    Case("policy-lowercase-country", policy(conditions={"countries": ["gb"]}),
         "spec.conditions.countries[0]"),
    Case("policy-unknown-mode", policy(mode="audit"), "spec.mode"),
    Case("policy-window-end-before-start", policy(conditions={"timeWindows": [
        {"start": "18:00", "end": "08:00"}]}), "spec.conditions.timeWindows[0].start", cel=True),
    Case("policy-bad-idle-timeout", policy(sessionControls={"idleTimeout": "30 mins"}),
         "spec.sessionControls.idleTimeout"),
    Case("policy-mfa-wrong-type", policy(conditions={"requireMFA": "yes"}),
         "spec.conditions.requireMFA"),
    Case("policy-clipboard-wrong-type", policy(sessionControls={"clipboardToHost": "sometimes"}),
         "spec.sessionControls.clipboardToHost"),
    Case("policy-selector-in-without-values", policy(apps={"selector": {"matchExpressions": [
        {"key": "tier", "operator": "In"}]}}), "spec.apps.selector.matchExpressions[0]",
        cel=True),
]

ADMISSION = [c for c in CASES if c.where == "admission"]
OPERATOR = [c for c in CASES if c.where == "operator"]
