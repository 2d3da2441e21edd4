"""PublishedApp: one application on the landing page, routed to a SessionHostPool."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from .common import (
    Condition,
    DnsLabel,
    HostName,
    IconRef,
    Model,
    ObjectName,
    PlainText,
    UrlPath,
)


class PoolRef(Model):
    """The SessionHostPool, in the same namespace, that runs the app."""

    name: ObjectName
    """The pool's name."""


class Launch(Model):
    """How the app starts once a session lands on a host."""

    command: Annotated[PlainText, Field(min_length=1, max_length=1024)] | None = None
    """A RemoteApp-style program to start instead of a full desktop."""
    arguments: Annotated[PlainText, Field(max_length=4096)] | None = None
    """Arguments for the command."""
    path: UrlPath | None = None
    """For a web app: the path on the host to open."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "!(has(self.command) && has(self.path))",
         "message": "set command (a RemoteApp) or path (a web app), not both"},
        {"rule": "!has(self.arguments) || has(self.command)",
         "message": "arguments need a command", "fieldPath": ".arguments"},
    ]


class ParentRef(Model):
    """A Gateway API Gateway the app's HTTPRoute attaches to."""

    name: ObjectName
    """The Gateway's name."""
    namespace: DnsLabel | None = None
    """The Gateway's namespace (defaults to the app's)."""
    section_name: DnsLabel | None = None
    """A listener of the Gateway."""


class Gateway(Model):
    """How the gateway exposes the app."""

    host: HostName
    """The host name users open, e.g. `workspace.example-hospital.org` (no wildcard: an
    app is one URL). Two apps with the same host and path: the one created first keeps
    the route, the other has none (both say so in status)."""
    path: UrlPath = "/"
    """The path prefix of the app under the host."""
    tls_secret_name: ObjectName | None = None
    """A TLS Secret for the host; without it the route serves plain HTTP. An Ingress
    uses it (a Secret that does not exist is reported); an HTTPRoute's TLS is the
    Gateway listener's, so there it only makes the URL https."""
    ingress_class_name: ObjectName | None = None
    """The IngressClass of the Ingress (the cluster default when unset)."""
    parent_ref: ParentRef | None = None
    """Render a Gateway API HTTPRoute attached to this Gateway instead of an Ingress."""
    timeout_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    """Idle timeout of the session's WebSocket; gateways' 60 s defaults cut remote
    sessions, an hour is the norm."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "!(has(self.parentRef) && has(self.ingressClassName))",
         "message": "ingressClassName applies to an Ingress; a parentRef renders an HTTPRoute",
         "fieldPath": ".ingressClassName"},
    ]


class PublishedAppSpec(Model):
    """The desired state of a published application."""

    display_name: Annotated[PlainText, Field(min_length=1, max_length=128)]
    """The name users see on the landing page."""
    description: Annotated[PlainText, Field(max_length=1024)] = ""
    """A line of help text."""
    icon: IconRef | None = None
    """The app's icon: an https URL, or a base64 data: URI of a PNG, JPEG, GIF or WebP
    image (not SVG, which can carry scripts)."""
    category: Annotated[PlainText, Field(max_length=64)] = "General"
    """The landing page section the app is listed under."""
    pool_ref: PoolRef
    """The pool the app runs on."""
    launch: Launch = Launch()
    """How the app starts; a full desktop when empty."""
    gateway: Gateway
    """How users reach the app."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "!has(self.launch) || !has(self.launch.path)"
                 " || self.launch.path == self.gateway.path"
                 " || self.launch.path.startsWith(self.gateway.path.endsWith('/')"
                 " ? self.gateway.path : self.gateway.path + '/')",
         "message": "launch.path must lie under gateway.path (the gateway does not rewrite "
                    "paths)", "fieldPath": ".launch.path"},
    ]


class PublishedAppStatus(Model):
    """The observed state of a published application."""

    observed_generation: int | None = None
    """The spec generation this status describes."""
    conditions: list[Condition] = []
    """Ready, Progressing and Degraded."""
    url: str | None = None
    """The URL users open."""
    pool_ready: bool | None = None
    """Whether the app's pool has hosts ready to take sessions."""
    allowed_by: list[str] = []
    """The AccessPolicies (enforced, action allow) that grant the app to someone."""
    route: str | None = None
    """The kind and name of the route serving the app, when it is open."""
