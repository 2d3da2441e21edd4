"""The three kinds: their names, models and how `kubectl get` shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..kube.resources import ResourceType
from .accesspolicy import AccessPolicySpec, AccessPolicyStatus
from .common import API_VERSION, GROUP, Model
from .publishedapp import PublishedAppSpec, PublishedAppStatus
from .sessionhostpool import SessionHostPoolSpec, SessionHostPoolStatus

READY_COLUMN = {
    "name": "Ready", "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    "description": "Whether the object is fully in effect.",
}
AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_name: str
    description: str
    spec: type[Model]
    status: type[Model]
    columns: list[dict[str, Any]]
    selectable_fields: list[str] = field(default_factory=list)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def resource(self) -> ResourceType:
        """Its REST paths."""
        return ResourceType(API_VERSION, self.kind, self.plural)


SESSION_HOST_POOL = Kind(
    kind="SessionHostPool",
    plural="sessionhostpools",
    short_name="shp",
    description="A fleet of identical session hosts (desktop or app-streaming servers) that "
    "users' remote sessions land on, scaled by sessions rather than CPU.",
    spec=SessionHostPoolSpec,
    status=SessionHostPoolStatus,
    columns=[
        {"name": "Hosts", "type": "string", "jsonPath": ".status.hosts",
         "description": "Ready hosts / desired hosts."},
        {"name": "Updated", "type": "string", "jsonPath": ".status.updated",
         "description": "Hosts of the current revision / all hosts: below 100%, a "
         "rollout is waiting for sessions on outdated hosts to end."},
        {"name": "Sessions", "type": "integer", "jsonPath": ".status.sessions"},
        {"name": "Capacity", "type": "integer", "jsonPath": ".status.capacity"},
        {"name": "Util%", "type": "integer", "jsonPath": ".status.utilizationPercent"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        READY_COLUMN,
        AGE_COLUMN,
        {"name": "Revision", "type": "string", "jsonPath": ".status.revision",
         "priority": 1, "description": "The current revision of the hosts' template."},
    ],
)

PUBLISHED_APP = Kind(
    kind="PublishedApp",
    plural="publishedapps",
    short_name="papp",
    description="An application on the landing page: a gateway route to a SessionHostPool "
    "and an entry in the namespace's catalog.",
    spec=PublishedAppSpec,
    status=PublishedAppStatus,
    columns=[
        {"name": "Pool", "type": "string", "jsonPath": ".spec.poolRef.name"},
        {"name": "URL", "type": "string", "jsonPath": ".status.url"},
        READY_COLUMN,
        AGE_COLUMN,
    ],
    selectable_fields=[".spec.poolRef.name"],
)

ACCESS_POLICY = Kind(
    kind="AccessPolicy",
    plural="accesspolicies",
    short_name="apol",
    description="Who may open which published apps, from where, with MFA or not, at what "
    "hours, and with which data controls.",
    spec=AccessPolicySpec,
    status=AccessPolicyStatus,
    columns=[
        {"name": "Action", "type": "string", "jsonPath": ".spec.action"},
        {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority"},
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Apps", "type": "integer", "jsonPath": ".status.appsMatched",
         "description": "How many apps the policy covers."},
        READY_COLUMN,
        AGE_COLUMN,
    ],
    selectable_fields=[".spec.action", ".spec.mode"],
)

KINDS: tuple[Kind, ...] = (SESSION_HOST_POOL, PUBLISHED_APP, ACCESS_POLICY)
BY_KIND: dict[str, Kind] = {k.kind: k for k in KINDS}
RESOURCES: tuple[ResourceType, ...] = tuple(k.resource for k in KINDS)
