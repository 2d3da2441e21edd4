"""The values access-policy evaluation reads and returns: plain frozen dataclasses.

They carry no behaviour beyond checking their own invariants, so an AccessDecision can be
compared, hashed, logged and turned into JSON without touching Kubernetes or pydantic.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any, Literal

Action = Literal["allow", "deny"]
Mode = Literal["enforce", "dryRun"]

_address = lru_cache(maxsize=65536)(ipaddress.ip_address)  # a request is made per decision

NO_POLICY_MATCHED = "no policy matched"
"""The phrase every AccessDecision without a deciding policy carries in its reason."""


@dataclass(frozen=True)
class Request:
    """One attempt to open an app, as the authenticating proxy sees it."""

    user: str
    groups: frozenset[str]
    source_ip: str
    country: str | None
    """ISO 3166-1 alpha-2 from the gateway's geo-IP; None when it could not tell."""
    mfa: bool
    time: datetime
    """Must be timezone-aware: time windows are written in a policy's own zone."""

    def __post_init__(self) -> None:
        # Fail here, with the value in the message, rather than deep inside a policy check.
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError(f"request time must be timezone-aware: {self.time.isoformat()}")
        _address(self.source_ip)  # a ValueError naming the address if it is none


@dataclass(frozen=True)
class Controls:
    """The effective session controls of an allowed request."""

    clipboard_to_host: bool
    clipboard_to_client: bool
    file_upload: bool
    file_download: bool
    printing: bool
    recording: bool
    watermark: bool
    idle_timeout_seconds: int | None = None
    max_session_seconds: int | None = None

    def wire(self) -> dict[str, Any]:
        """camelCase, as the gateway and the hosts' agent read it. Every key is always
        present; a null timeout means no limit, so readers never guess at a default."""
        return {
            "clipboardToHost": self.clipboard_to_host,
            "clipboardToClient": self.clipboard_to_client,
            "fileUpload": self.file_upload,
            "fileDownload": self.file_download,
            "printing": self.printing,
            "recording": self.recording,
            "watermark": self.watermark,
            "idleTimeoutSeconds": self.idle_timeout_seconds,
            "maxSessionSeconds": self.max_session_seconds,
        }


@dataclass(frozen=True)
class Match:
    """One policy that covers the app, and whether its subjects and conditions held.

    `reasons` explain the verdict: the satisfied conditions when it applies, only the
    failed ones when it does not (those are what an auditor needs to see).
    """

    policy: str
    action: Action
    priority: int
    mode: Mode
    applies: bool
    checked: tuple[str, ...] = ()
    """The kinds of check the policy made (conditions.SUBJECTS, SOURCE, ...)."""
    failed: tuple[str, ...] = ()
    """The kinds of check that failed: what user-facing hints are made of, as they must
    not reveal which policy said no."""
    explain: Callable[[], tuple[str, ...]] | None = field(default=None, compare=False,
                                                          repr=False)
    """Makes `reasons`: words cost more than the decision, and the portal's thousands of
    decisions a second need none; `deskfleet explain` and the audit ask for them."""

    @cached_property
    def reasons(self) -> tuple[str, ...]:
        return self.explain() if self.explain is not None else ()

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"


@dataclass(frozen=True)
class Outcome:
    """A verdict and what produced it; an AccessDecision holds the enforced one and, when
    dry-run policies cover the app, the one they would produce if enforced."""

    allowed: bool
    controls: Controls | None
    decided_by: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.allowed and (self.controls is None or not self.decided_by):
            raise ValueError("an allowed outcome needs controls and a deciding policy")
        if not self.allowed and self.controls is not None:
            raise ValueError("a denied outcome has no session controls")


@dataclass(frozen=True)
class AccessDecision:
    """The answer to "may this request open this app, with which controls, and why"."""

    app: str
    allowed: bool
    controls: Controls | None
    decided_by: tuple[str, ...]
    """The applying denies, or else the applying allows: priority desc, then name."""
    matches: tuple[Match, ...]
    """Every policy covering the app, dry-run included, in the same order."""
    reason: str
    dry_run: Outcome | None = None
    """The outcome with dry-run policies enforced too; None when none covers the app."""
    dry_run_would_change: bool = False
    """Enforcing the dry-run policies would change `allowed` or `controls`."""
    not_covering: tuple[str, ...] = field(default=())
    """Policies given that do not cover the app (names, sorted)."""

    def __post_init__(self) -> None:
        Outcome(self.allowed, self.controls, self.decided_by)  # the same invariants
        if not self.decided_by and NO_POLICY_MATCHED not in self.reason:
            raise ValueError(f"a decision without a deciding policy must say {NO_POLICY_MATCHED!r}")

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.allowed, self.controls, self.decided_by)


@dataclass(frozen=True)
class AccessRow:
    """One enforced allow in the reverse view: who it lets open the app, on what terms."""

    policy: str
    priority: int
    groups: tuple[str, ...]
    users: tuple[str, ...]
    conditions: tuple[str, ...]
    """Human-readable, e.g. "from countries GB", "MFA required"; empty = no conditions."""
    controls: dict[str, Any]
    """The session controls this policy sets (camelCase, unset ones omitted)."""
    overridable_by: tuple[str, ...]
    """Enforced denies covering the app that could hit some of these subjects, each
    with its own conditions, e.g. "deny-unexpected-country (from countries BY, KP, RU)"."""


@dataclass(frozen=True)
class RouteAccess:
    """Gateway-side enforcement of the access policies that grant an app.

    `open` is False when no enforced policy allows anyone: the route is then not rendered.
    """

    open: bool = True
    source_ranges: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = ()
    require_mfa: bool = False
