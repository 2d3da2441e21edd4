"""Whether a policy's subjects and conditions hold for one request, and why.

Every check runs (none short-circuits), so an auditor sees all the reasons a policy
did not apply, not just the first. A condition left empty in the spec imposes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from ..api.accesspolicy import AccessPolicySpec, Conditions, Subjects, TimeWindow
from ..api.common import WEEKDAYS, in_weekly_window
from ..api.resource import Resource
from .model import Request

Policy = Resource[AccessPolicySpec]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Check = tuple[bool, str]

SUBJECTS, SOURCE, COUNTRY, MFA, TIME = "subjects", "source", "country", "mfa", "time"
"""The kinds of check a policy makes; a denied user is told which kind failed (never
which policy), e.g. "complete MFA" or "outside the allowed hours"."""


def bracket(items: Iterable[str]) -> str:
    return "[" + ", ".join(sorted(items)) + "]"


def format_days(days: Iterable[str]) -> str:
    """Mon..Fri -> "Mon-Fri"; a run of consecutive weekdays reads as a range."""
    idx = sorted({WEEKDAYS.index(d) for d in days})
    if len(idx) == 7:
        return "every day"
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{WEEKDAYS[idx[0]]}-{WEEKDAYS[idx[-1]]}"
    return ",".join(WEEKDAYS[i] for i in idx)


def format_window(window: TimeWindow) -> str:
    return f"{format_days(window.days)} {window.start}-{window.end}"


def in_window(window: TimeWindow, local: datetime) -> bool:
    """Start inclusive, end exclusive, on the local weekday, minutes floored."""
    return in_weekly_window(window.days, window.start, window.end, local)


@lru_cache(maxsize=65536)  # pure; the portal asks it several times a request
def normalise_ip(text: str) -> IpAddress:
    """Gateways on dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d; compare
    those as the IPv4 address they are, or IPv4 ranges would never match them."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _subjects(subjects: Subjects, request: Request) -> Check:
    if request.user in subjects.users:
        return True, f"user {request.user} listed"
    shared = sorted(request.groups.intersection(subjects.groups))
    if shared:
        noun = "group" if len(shared) == 1 else "groups"
        return True, f"{noun} {', '.join(shared)} listed"
    return False, (f"user {request.user} and groups {bracket(request.groups)}"
                   " not in subjects")


def _source(ranges: list[str], source_ip: str) -> Check | None:
    if not ranges:
        return None
    address = normalise_ip(source_ip)
    for cidr in sorted(ranges):
        if address in ipaddress.ip_network(cidr, strict=False):
            return True, f"source {source_ip} in {cidr}"
    return False, f"source {source_ip} not in {bracket(ranges)}"


def _country(countries: list[str], country: str | None) -> Check | None:
    if not countries:
        return None
    if country is None:
        # Unknown never satisfies a country list: allows that name countries fail closed.
        return False, f"country unknown, needs {bracket(countries)}"
    if country in countries:
        return True, f"country {country} in {bracket(countries)}"
    return False, f"country {country} not in {bracket(countries)}"


def _mfa(required: bool, done: bool) -> Check | None:
    if not required:
        return None
    return (True, "MFA done") if done else (False, "MFA required, not done")


def _time(conditions: Conditions, when: datetime) -> Check | None:
    if not conditions.time_windows:
        return None
    local = when.astimezone(ZoneInfo(conditions.time_zone))
    stamp = f"{WEEKDAYS[local.weekday()]} {local:%H:%M} {conditions.time_zone}"
    for window in conditions.time_windows:
        if in_window(window, local):
            return True, f"{stamp} within {format_window(window)}"
    windows = "; ".join(format_window(w) for w in conditions.time_windows)
    return False, f"{stamp} outside {windows}"


@lru_cache(maxsize=8192)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def check_kinds(policy: Policy, request: Request) -> list[tuple[str, bool]]:
    """Every check the policy makes of the request: (kind, holds), without the words.

    The portal asks this for each covering policy of every request, so it builds no text;
    `run_checks` says the same with the reasons (a property test holds them equal)."""
    cond, subjects = policy.spec.conditions, policy.spec.subjects
    out = [(SUBJECTS, request.user in subjects.users
            or not request.groups.isdisjoint(subjects.groups))]
    if cond.source_ranges:
        address = normalise_ip(request.source_ip)
        out.append((SOURCE, any(address in _network(c) for c in cond.source_ranges)))
    if cond.countries:
        out.append((COUNTRY, request.country is not None and request.country in cond.countries))
    if cond.require_mfa:
        out.append((MFA, request.mfa))
    if cond.time_windows:
        local = request.time.astimezone(ZoneInfo(cond.time_zone))
        out.append((TIME, any(in_window(w, local) for w in cond.time_windows)))
    return out


def run_checks(policy: Policy, request: Request) -> list[tuple[str, bool, str]]:
    """Every check the policy makes of the request: (kind, holds, why)."""
    cond = policy.spec.conditions
    checks = [
        (SUBJECTS, _subjects(policy.spec.subjects, request)),
        (SOURCE, _source(cond.source_ranges, request.source_ip)),
        (COUNTRY, _country(cond.countries, request.country)),
        (MFA, _mfa(cond.require_mfa, request.mfa)),
        (TIME, _time(cond, request.time)),
    ]
    return [(kind, *check) for kind, check in checks if check is not None]


def policy_applies(policy: Policy, request: Request) -> tuple[bool, list[str]]:
    """Whether the request is one of the policy's subjects and meets all its conditions.

    The reasons are the satisfied checks when it applies, the failed checks when not.
    Whether the policy covers the app is a separate question (`app_selected`).
    """
    checks = run_checks(policy, request)
    applies = all(ok for _, ok, _ in checks)
    return applies, [text for _, ok, text in checks if ok == applies]


def describe_conditions(cond: Conditions) -> list[str]:
    """The conditions of a policy as short phrases, for the reverse (who-can-open) view."""
    out = []
    if cond.source_ranges:
        out.append(f"from {', '.join(sorted(cond.source_ranges))}")
    if cond.countries:
        out.append(f"from countries {', '.join(sorted(cond.countries))}")
    if cond.require_mfa:
        out.append("MFA required")
    if cond.time_windows:
        windows = "; ".join(format_window(w) for w in cond.time_windows)
        out.append(f"{windows} ({cond.time_zone})")
    return out
