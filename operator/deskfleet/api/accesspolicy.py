"""AccessPolicy: who may open which apps, from where, and with which data controls."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .common import (
    Cidr,
    Condition,
    CountryCode,
    Duration,
    LabelSelector,
    Model,
    ObjectName,
    TimeOfDay,
    TimeZoneName,
    Weekday,
)


class Subjects(Model):
    """Who the policy is about. A request matches when its user is listed or it is a
    member of a listed group."""

    groups: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]],
                      Field(max_length=256)] = []
    """Directory groups, as the authenticating proxy reports them."""
    users: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]],
                     Field(max_length=1024)] = []
    """User names or e-mail addresses, as the authenticating proxy reports them."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "(has(self.groups) ? size(self.groups) : 0)"
                 " + (has(self.users) ? size(self.users) : 0) > 0",
         "message": "name at least one group or user"},
    ]


class AppSelection(Model):
    """Which PublishedApps in the namespace the policy covers."""

    names: Annotated[list[ObjectName], Field(max_length=1024)] = []
    """Apps by name."""
    selector: LabelSelector | None = None
    """Apps by label; an empty selector `{}` covers every app in the namespace."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "(has(self.names) && size(self.names) > 0) || has(self.selector)",
         "message": "name apps or give a selector (an empty selector covers all apps)"},
    ]


class TimeWindow(Model):
    """A weekly window of local time in which the policy applies."""

    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)] = [
        "Mon", "Tue", "Wed", "Thu", "Fri"]
    """The weekdays of the window."""
    start: TimeOfDay
    """Local start, `HH:MM`, inclusive."""
    end: TimeOfDay
    """Local end, `HH:MM`, exclusive; `24:00` for the end of the day."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "self.start < self.end", "message": "start must be before end",
         "fieldPath": ".start"},
    ]


class Conditions(Model):
    """Further conditions a request must meet. All that are set must hold."""

    source_ranges: Annotated[list[Cidr], Field(max_length=256)] = []
    """Client networks the request must come from; any when empty."""
    countries: Annotated[list[CountryCode], Field(max_length=250)] = []
    """Countries (from the gateway's geo-IP) the request must come from; any when empty."""
    require_mfa: bool = Field(default=False, alias="requireMFA")
    """The user must have completed multi-factor authentication."""
    time_windows: Annotated[list[TimeWindow], Field(max_length=32)] = []
    """Weekly windows the request must fall in; any time when empty."""
    time_zone: TimeZoneName = "UTC"
    """The IANA time zone the windows are written in."""


class SessionControls(Model):
    """Data controls applied to sessions the policy grants. Unset fields leave the
    decision to other policies or to the secure defaults (see docs/access-policy.md)."""

    clipboard_to_host: bool | None = None
    """Allow pasting from the user's device into the session."""
    clipboard_to_client: bool | None = None
    """Allow copying out of the session onto the user's device."""
    file_upload: bool | None = None
    """Allow uploading files into the session."""
    file_download: bool | None = None
    """Allow downloading files out of the session."""
    printing: bool | None = None
    """Allow printing to the user's local printer."""
    recording: bool | None = None
    """Record the session."""
    watermark: bool | None = None
    """Overlay the user's identity on the screen."""
    idle_timeout: Duration | None = None
    """Disconnect after this long without input."""
    max_session_duration: Duration | None = None
    """End the session after this long."""


class AccessPolicySpec(Model):
    """The desired state of an access policy."""

    subjects: Subjects
    """Who the policy is about."""
    apps: AppSelection
    """Which apps it covers."""
    action: Literal["allow", "deny"] = "allow"
    """Grant or refuse access. A matching deny always beats any allow."""
    priority: Annotated[int, Field(ge=0, le=1000)] = 100
    """Higher first when policies are listed and when their controls are reported;
    it never lets an allow beat a deny."""
    conditions: Conditions = Conditions()
    """Network, country, MFA and time conditions."""
    session_controls: SessionControls = SessionControls()
    """Data controls for the sessions this policy grants (ignored for deny)."""
    mode: Literal["enforce", "dryRun"] = "enforce"
    """`dryRun` evaluates and reports the policy but never changes a decision."""


class DryRunReport(Model):
    """What a dry-run policy would have done to real requests, as the portal saw them."""

    since: str
    """When the operator began counting (RFC 3339); the counts cover the time since."""
    requests_evaluated: int
    """Requests to apps the policy covers."""
    would_have_changed: int
    """Of those, requests whose decision or session controls the policy would have
    changed had it been enforced."""


class AccessPolicyStatus(Model):
    """The observed state of an access policy."""

    observed_generation: int | None = None
    """The spec generation this status describes."""
    conditions: list[Condition] = []
    """Ready and Degraded (e.g. it selects nothing, or conflicts with another policy)."""
    matched_apps: list[str] = []
    """The apps the policy covers."""
    apps_matched: int | None = None
    """How many apps the policy covers."""
    in_effect: bool | None = None
    """Whether the policy is enforced (false in dry-run)."""
    dry_run: DryRunReport | None = None
    """For a dryRun policy: how many real requests it would have changed (from the
    portal's decisions; absent until the portal has evaluated one)."""
