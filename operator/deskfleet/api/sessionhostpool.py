"""SessionHostPool: a fleet of identical session hosts that users' sessions land on."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, WithJsonSchema

from .common import (
    Cidr,
    Condition,
    Date,
    DnsLabel,
    Duration,
    Model,
    ObjectName,
    Port,
    Quantity,
    TimeOfDay,
    TimeZoneName,
    Weekday,
)

Protocol = Literal["rdp", "vnc", "ssh", "http"]

# The port each protocol listens on unless the pool says otherwise.
DEFAULT_PORTS: dict[str, int] = {"rdp": 3389, "vnc": 5900, "ssh": 22, "http": 8080}

# Free-form Kubernetes objects we pass through to the pod spec unchanged; their own
# schema is the API server's business once they land in the Deployment.
_K8S_OBJECT = WithJsonSchema(
    {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
)


class KeyRef(Model):
    """A key in a Secret or ConfigMap in the pool's namespace."""

    name: ObjectName
    """The object's name."""
    key: Annotated[str, Field(min_length=1, max_length=253)]
    """The key within the object."""


class EnvSource(Model):
    """Where an environment variable's value comes from, instead of a literal."""

    secret_key_ref: KeyRef | None = None
    """A key of a Secret."""
    config_map_key_ref: KeyRef | None = None
    """A key of a ConfigMap."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
         "message": "set exactly one of secretKeyRef and configMapKeyRef"}
    ]


class EnvVar(Model):
    """An environment variable for the session-host container."""

    name: Annotated[str, Field(min_length=1, max_length=256,
                               pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")]
    """The variable's name."""
    value: str | None = None
    """A literal value."""
    value_from: EnvSource | None = None
    """Take the value from a Secret or ConfigMap instead."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "!(has(self.value) && has(self.valueFrom))",
         "message": "set value or valueFrom, not both"}
    ]


class Resources(Model):
    """Compute resources of one session host."""

    requests: dict[str, Quantity] | None = None
    """What the scheduler reserves, e.g. `{cpu: "2", memory: 8Gi}`."""
    limits: dict[str, Quantity] | None = None
    """The most a host may use."""


class Placement(Model):
    """Where session hosts may run."""

    node_selector: dict[str, str] | None = None
    """Node labels a host's node must carry."""
    tolerations: Annotated[list[dict[str, Any]], Field(max_length=32), WithJsonSchema(
        {"type": "array", "maxItems": 32,
         "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    )] | None = None
    """Kubernetes tolerations, passed to the pods as written."""
    affinity: Annotated[dict[str, Any], _K8S_OBJECT] | None = None
    """A Kubernetes affinity, passed to the pods as written."""
    priority_class_name: ObjectName | None = None
    """The PriorityClass of the hosts."""


class BackendPort(Model):
    """A port that hosts may open on a backend."""

    port: Port
    """The port number."""
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    """The transport protocol."""


class Backend(Model):
    """A network the hosts may reach; all else is denied, so data stays on the server side."""

    name: DnsLabel | None = None
    """A name for people, e.g. `ehr-database`."""
    cidr: Cidr
    """The backend's network."""
    ports: Annotated[list[BackendPort], Field(min_length=1, max_length=32)]
    """The ports hosts may open on it."""


LoadBalancing = Literal["breadthFirst", "depthFirst", "auto"]

NoticeMessage = Annotated[str, Field(max_length=512, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]
"""A notice for users: plain text, newlines allowed, no other control characters."""


class Drain(Model):
    """How scale-in retires a host without cutting anyone's session."""

    max_wait: Duration = "8h"
    """The drain grace. With forceLogoff, the deadline given to the host's users in the
    notice when the drain starts: they are logged off once it has passed. Without it,
    informational: a draining host then waits for its sessions however long they last."""
    force_logoff: bool = False
    """Log the remaining users off once maxWait has passed, after a notice with the
    deadline delivered into their sessions at the start of the drain. Off by default: a
    draining host with sessions is then kept until they end."""
    notify_users: bool = True
    """Show the message to the users of a draining host even without a forced logoff.
    (A forced logoff always notifies.)"""
    message: NoticeMessage = (
        "This session host is being retired. Please save your work; your next logon "
        "will land on another host."
    )
    """The notice shown to users of a draining host; the deadline, if any, is shown
    with it."""
    logoff_timeout: Duration = "10m"
    """How long a host may take to log its users off once asked to; after that it is
    removed even if it still reports sessions."""


class PhaseDrain(Model):
    """A schedule phase's own drain settings; unset fields keep the pool's."""

    max_wait: Duration | None = None
    """The drain grace during the phase (see the pool's drain.maxWait)."""
    force_logoff: bool | None = None
    """Whether hosts drained during the phase log their users off after maxWait."""
    message: NoticeMessage | None = None
    """The notice for hosts drained during the phase."""


class DemandSettings(Model):
    """Scale-out ahead of the logons the gateway sees, not only the sessions that exist."""

    margin_percent: Annotated[int, Field(ge=0, le=500)] = 50
    """Headroom on the recent logon rate: keep free the slots for the logons expected
    while a new host starts, plus this much."""
    startup_estimate: Duration = "5m"
    """A host's start-up time (creation to Ready) until the operator has measured it."""


class SchedulePhase(Model):
    """A period of the week in which the pool needs a different floor or buffer."""

    name: DnsLabel
    """The phase's name, shown in status, e.g. `morning-peak`."""
    type: Literal["rampUp", "peak", "rampDown", "offPeak"] = "peak"
    """What kind of period this is; informational, reported in status and metrics."""
    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)] = [
        "Mon", "Tue", "Wed", "Thu", "Fri"]
    """The weekdays on which the phase applies."""
    start: TimeOfDay
    """Local start time, `HH:MM`, inclusive."""
    end: TimeOfDay
    """Local end time, `HH:MM`, exclusive; `24:00` for the end of the day."""
    min_hosts: Annotated[int, Field(ge=0, le=10000)] | None = None
    """The floor during the phase (never above the pool's maxHosts)."""
    buffer_sessions: Annotated[int, Field(ge=0, le=100000)] | None = None
    """Free session slots to keep ready during the phase."""
    buffer_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    """Free slots as a percentage of active sessions during the phase."""
    drain: PhaseDrain | None = None
    """Drain grace, forced logoff and notice for hosts drained during the phase."""
    load_balancing: LoadBalancing | None = None
    """Which hosts take new sessions during the phase (see the pool's loadBalancing)."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "self.start < self.end", "message": "start must be before end",
         "fieldPath": ".start"},
        {"rule": "!(has(self.bufferSessions) && has(self.bufferPercent))",
         "message": "set bufferSessions or bufferPercent, not both"},
    ]


class Schedule(Model):
    """When the pool needs more (or less) capacity, in the pool's local time."""

    time_zone: TimeZoneName = "UTC"
    """The IANA time zone the phases and holidays are written in."""
    phases: Annotated[list[SchedulePhase], Field(max_length=16)] = []
    """Phases of the week; outside every phase the pool's own minHosts and buffer apply."""
    holidays: Annotated[list[Date], Field(max_length=366)] = []
    """Dates treated as off-peak all day: no phase applies on them."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.phases)"
            " || self.phases.all(a, self.phases.exists_one(b, b.name == a.name))",
            "message": "phase names must be unique",
            "fieldPath": ".phases",
        },
        {
            "rule": "!has(self.phases) || self.phases.all(a, self.phases.all(b, a.name == b.name"
            " || !a.days.exists(d, d in b.days) || a.end <= b.start || b.end <= a.start))",
            "message": "phases that share a weekday must not overlap in time",
            "fieldPath": ".phases",
        },
    ]


class Scaling(Model):
    """Session-aware autoscaling: the signal is sessions, not CPU."""

    min_hosts: Annotated[int, Field(ge=0, le=10000)] = 1
    """The fewest hosts, whatever the load."""
    max_hosts: Annotated[int, Field(ge=1, le=10000)] = 10
    """The most hosts, whatever the load."""
    buffer_sessions: Annotated[int, Field(ge=0, le=100000)] | None = None
    """Free session slots to keep ready for new logons (default 2 slots when neither
    this nor bufferPercent is set)."""
    buffer_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    """Free slots as a percentage of active sessions."""
    scale_in_delay: Duration = "10m"
    """Stabilisation window: capacity must have been surplus this long before scale-in."""
    max_scale_out_step: Annotated[int, Field(ge=1, le=1000)] = 10
    """The most hosts added in one step."""
    max_scale_in_step: Annotated[int, Field(ge=1, le=1000)] = 2
    """The most hosts put to drain in one step."""
    schedule: Schedule | None = None
    """Phases of the week and holidays."""
    drain: Drain = Drain()
    """How hosts are retired."""
    paused: bool = False
    """Stop autoscaling and leave the replica count alone (like KEDA's pause)."""
    signal_max_age: Duration = "2m"
    """A host whose session report is older than this counts as unknown: the pool never
    scales in on missing data."""
    load_balancing: LoadBalancing = "breadthFirst"
    """Which hosts take new sessions: `breadthFirst` every host with a free slot (logons
    spread); `depthFirst` only as few of the fullest hosts as hold the buffer (the
    others empty sooner and scale in); `auto` depth-first while the pool has surplus
    hosts, breadth-first otherwise."""
    demand: DemandSettings = DemandSettings()
    """How logons the gateway sees (launches, logons that found no free slot) drive
    scale-out ahead of sessions."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "self.minHosts <= self.maxHosts", "message": "minHosts must not exceed maxHosts",
         "fieldPath": ".minHosts"},
        {"rule": "!(has(self.bufferSessions) && has(self.bufferPercent))",
         "message": "set bufferSessions or bufferPercent, not both"},
        {"rule": "!has(self.schedule) || !has(self.schedule.phases)"
                 " || self.schedule.phases.all(p, !has(p.minHosts)"
                 " || p.minHosts <= self.maxHosts)",
         "message": "a schedule phase's minHosts must not exceed maxHosts",
         "fieldPath": ".schedule.phases"},
    ]


class Agent(Model):
    """The session-counting sidecar that runs beside each host."""

    enabled: bool = True
    """Run the agent. Without it the pool has no session signal: it holds its host count,
    grows only to the floor (minHosts or the schedule phase's) and never scales in."""
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Override the agent image (defaults to the operator's own image)."""
    session_source: Literal["tcp", "host"] = "tcp"
    """Where the agent learns the host's sessions. `tcp`: established connections on the
    session port — for stateless web apps; a remote-desktop session whose user is
    disconnected has none and looks gone. `host`: the host's own report, disconnected
    sessions included (docs/session-contract.md)."""
    host_report_url: Annotated[str, Field(
        max_length=256,
        pattern=r"^http://(127\.0\.0\.1|localhost|\[::1\]):[0-9]{1,5}(/[^\s?#]*)?$",
    )] | None = None
    """With sessionSource `host`: read the report from this endpoint on the pod's
    loopback instead of the shared file, e.g. `http://127.0.0.1:4001/sessions`."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "!has(self.hostReportUrl) || self.sessionSource == 'host'",
         "message": "hostReportUrl needs sessionSource: host", "fieldPath": ".hostReportUrl"},
    ]


_SURGE_PERCENT = r"^([1-9][0-9]?|100)%$"


_SURGE_MESSAGE = "maxSurge must be 1 to 1000 hosts, or a percentage from 1% to 100%"


def _check_surge(value: int | str) -> int | str:
    if isinstance(value, int) and not 1 <= value <= 1000:
        raise ValueError(_SURGE_MESSAGE)
    if isinstance(value, str) and not re.fullmatch(_SURGE_PERCENT, value):
        raise ValueError(_SURGE_MESSAGE)
    return value


Surge = Annotated[int | str, AfterValidator(_check_surge), WithJsonSchema({
    "x-kubernetes-int-or-string": True,
    "description": "A number of hosts (1-1000) or a percentage such as `25%`."})]


class Update(Model):
    """How a change that restarts hosts (image, command, env, resources, placement, the
    agent) rolls out without cutting anyone's session: hosts of the new revision take
    every new logon; hosts of older revisions stop taking logons, keep their sessions,
    and leave once they report none (docs/operations.md, "Patching")."""

    max_surge: Surge = "25%"
    """New-revision hosts started ahead of demand while outdated hosts remain, so that
    users who log off an outdated host find an updated one ready; also how far above
    maxHosts the pool may go meanwhile. A number of hosts, or a percentage of the
    outdated hosts (rounded up)."""
    drain_deadline: Duration | None = None
    """Log the users still on an outdated host off this long after it stopped taking
    logons: they are told the deadline in a notice when it stops, and the host is asked
    to log them off once it has passed. Unset: outdated hosts stay until their last
    session ends, however long that takes."""
    urgent: bool = False
    """A critical fix: every outdated host's users are logged off at most urgentDeadline
    after they are told (an earlier announced deadline stands; a later one is brought
    forward, with a new notice)."""
    urgent_deadline: Duration = "15m"
    """The notice users of outdated hosts get in urgent mode."""
    message: NoticeMessage = (
        "This desktop is being updated. Please save your work and log off when you can; "
        "your next logon will land on an updated host."
    )
    """The notice shown in the sessions of an outdated host; the deadline, if any, is
    shown with it."""
    paused: bool = False
    """Hold new revisions: a change that restarts hosts waits (the hosts keep the
    revision they run) until this is false again. A rollout already under way goes on;
    to stop one, revert the change (rollback)."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "!has(self.maxSurge) || (type(self.maxSurge) == int"
                 " ? (self.maxSurge >= 1 && self.maxSurge <= 1000)"
                 f" : self.maxSurge.matches('{_SURGE_PERCENT}'))",
         "message": _SURGE_MESSAGE, "fieldPath": ".maxSurge"},
    ]


class SessionHostPoolSpec(Model):
    """The desired state of a pool of session hosts."""

    image: Annotated[str, Field(min_length=1, max_length=512)]
    """The session-host image: a desktop or app-streaming server."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """When the kubelet pulls the image."""
    image_pull_secrets: Annotated[list[ObjectName], Field(max_length=16)] = []
    """Secrets holding registry credentials."""
    command: Annotated[list[str], Field(max_length=64)] | None = None
    """Override the image's entrypoint."""
    args: Annotated[list[str], Field(max_length=256)] | None = None
    """Arguments to the entrypoint."""
    env: Annotated[list[EnvVar], Field(max_length=256)] = []
    """Environment variables of the session-host container."""
    resources: Resources | None = None
    """Compute resources of one host."""
    protocol: Protocol = "rdp"
    """The session protocol the hosts speak: rdp, vnc, ssh or http."""
    port: Port | None = None
    """The session port (defaults by protocol: rdp 3389, vnc 5900, ssh 22, http 8080)."""
    sessions_per_host: Annotated[int, Field(ge=1, le=500)] = 1
    """How many concurrent sessions one host takes."""
    placement: Placement | None = None
    """Node selection, tolerations, affinity and priority."""
    backends: Annotated[list[Backend], Field(max_length=64)] = []
    """Networks the hosts may reach (besides DNS); all other egress is denied."""
    scaling: Scaling = Scaling()
    """Session-aware autoscaling."""
    agent: Agent = Agent()
    """The session-counting sidecar."""
    update: Update = Update()
    """How a change that restarts hosts rolls out: without cutting sessions, with an
    optional deadline, urgently, or held."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "!has(self.port) || self.port != 15090",
         "message": "port 15090 is reserved for the deskfleet agent", "fieldPath": ".port"},
    ]

    @property
    def session_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.protocol]


class LastScaling(Model):
    """The autoscaler's last decision."""

    time: str
    """When it was taken (RFC 3339)."""
    direction: Literal["up", "down", "none"]
    """Whether hosts were added, drained, or neither."""
    from_hosts: int
    """The host count before."""
    to_hosts: int
    """The host count after."""
    reason: str
    """Why, in words."""


class OutdatedHost(Model):
    """The outdated host that has been waiting longest for its sessions to end."""

    name: str
    """The host (pod)."""
    created_at: str
    """When it was created (RFC 3339): its age."""
    draining_since: str | None = None
    """When it stopped taking logons."""
    deadline: str | None = None
    """When its users are logged off, if a deadline was announced."""


class RolloutStatus(Model):
    """Where the pool's rollout to its current revision stands."""

    started_at: str | None = None
    """When the current revision became current."""
    outdated_revisions: list[str] = []
    """Revisions whose hosts are still draining."""
    oldest_outdated_host: OutdatedHost | None = None
    """The outdated host that has been waiting longest."""
    past_deadline_hosts: int | None = None
    """Outdated hosts whose deadline has passed (their users are being logged off)."""
    pending_revision: str | None = None
    """A revision held back by spec.update.paused."""


class SessionHostPoolStatus(Model):
    """The observed state of a pool."""

    observed_generation: int | None = None
    """The spec generation this status describes."""
    conditions: list[Condition] = []
    """Ready, Progressing and Degraded."""
    desired_hosts: int | None = None
    """Hosts the autoscaler wants."""
    ready_hosts: int | None = None
    """Hosts ready to take sessions."""
    draining_hosts: int | None = None
    """Hosts being retired."""
    hosts: str | None = None
    """`ready/desired`, for `kubectl get`."""
    sessions: int | None = None
    """Sessions across the pool, disconnected ones included."""
    disconnected_sessions: int | None = None
    """Of those, sessions whose user is disconnected (hosts that report them)."""
    unknown_hosts: int | None = None
    """Ready hosts whose agent has never reported: kept, but not counted as load."""
    logging_off_hosts: int | None = None
    """Draining hosts whose users are being logged off after the notice's deadline."""
    startup_seconds: int | None = None
    """Measured host start-up (creation to Ready): the 90th percentile of the last 20
    hosts that started; it sizes the free slots kept for logons on their way."""
    demand_signal: str | None = None
    """Whether scale-out sees the logons the gateway sees (launches counted by the
    portal), and if not, why: then it sees only sessions that already exist."""
    capacity: int | None = None
    """Session slots on ready, non-draining hosts."""
    utilization_percent: int | None = None
    """Sessions as a percentage of capacity."""
    phase: str | None = None
    """The schedule phase in force (`base` outside every phase, `holiday` on holidays)."""
    selector: str | None = None
    """The label selector of the pool's hosts."""
    last_scaling: LastScaling | None = None
    """The last scaling decision."""
    scaling_reason: str | None = None
    """Why the pool has the hosts it has, as of the last pass."""
    surplus_since: str | None = None
    """When the current surplus of capacity began; scale-in waits scaleInDelay from it."""
    revision: str | None = None
    """The current revision: a hash of the hosts' pod template. Hosts of other revisions
    are outdated."""
    updated_hosts: int | None = None
    """Hosts of the current revision."""
    outdated_hosts: int | None = None
    """Hosts of older revisions, waiting for their sessions to end."""
    updated: str | None = None
    """`updated/all` hosts, for `kubectl get`."""
    rollout: RolloutStatus | None = None
    """The rollout under way, if any."""
