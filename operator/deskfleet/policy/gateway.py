"""What a static gateway route can enforce for one app, and the reverse "who can open it".

A route is a coarse outer fence: it can refuse source networks, admit only some groups
and users through the authenticating proxy, and demand MFA where the proxy checks it.
It cannot express time windows, countries, per-group conditions or denies; those are
enforced per request at the proxy / landing page from `evaluate`. So the fence is
built to be never narrower than the policies: every request `evaluate` allows must get
through it (tests/unit/test_policy_properties.py checks this), even though some requests
that pass it are then refused by `evaluate`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from ..api.accesspolicy import AccessPolicySpec, Subjects
from ..api.resource import Resource
from .conditions import describe_conditions
from .model import AccessRow, RouteAccess
from .selection import covering

Policy = Resource[AccessPolicySpec]


def _enforced(policies: Iterable[Policy], app_name: str, app_labels: Mapping[str, str],
              action: str) -> list[Policy]:
    return [p for p in covering(policies, app_name, app_labels)
            if p.spec.mode == "enforce" and p.spec.action == action]


def _networks(cidrs: Iterable[str]) -> tuple[str, ...]:
    """Canonical (10.1.2.3/8 -> 10.0.0.0/8), deduplicated, IPv4 before IPv6, by address."""
    nets = {ipaddress.ip_network(c, strict=False) for c in cidrs}
    ordered = sorted(nets, key=lambda n: (n.version, int(n.network_address), n.prefixlen))
    return tuple(str(n) for n in ordered)


def route_access(policies: Iterable[Policy], app_name: str,
                 app_labels: Mapping[str, str]) -> RouteAccess:
    """The gateway-side enforcement for one app, from the enforced allows covering it.

    - open: at least one enforced allow covers the app (else the route is not rendered);
    - allowed_groups / allowed_users: the union of their subjects;
    - source_ranges: the union of their sourceRanges, or none at all when any of them
      leaves sourceRanges empty (that policy admits every network, so must the route);
    - require_mfa: only when every one of them requires MFA.
    Time windows, countries and denies are left to the proxy (see module docstring).
    """
    allows = _enforced(policies, app_name, app_labels, "allow")
    if not allows:
        return RouteAccess(open=False)
    ranges: tuple[str, ...] = ()
    if all(p.spec.conditions.source_ranges for p in allows):
        ranges = _networks(c for p in allows for c in p.spec.conditions.source_ranges)
    return RouteAccess(
        open=True,
        source_ranges=ranges,
        allowed_groups=tuple(sorted({g for p in allows for g in p.spec.subjects.groups})),
        allowed_users=tuple(sorted({u for p in allows for u in p.spec.subjects.users})),
        require_mfa=all(p.spec.conditions.require_mfa for p in allows),
    )


def could_override(deny: Subjects, allow: Subjects) -> bool:
    """Whether a deny may hit some subject of an allow. Group membership is not known
    until a request arrives and a person is in many groups: a deny naming any group may
    hit anyone the allow admits (its users, or members of its groups, who may also be in
    the deny's groups); a deny naming users may hit the allow's groups' members. Only a
    deny of users against an allow of users alone is decided by the names."""
    return bool(
        deny.groups
        or set(deny.users) & set(allow.users)
        or (deny.users and allow.groups)
    )


def _deny_label(deny: Policy) -> str:
    conditions = describe_conditions(deny.spec.conditions)
    return f"{deny.name} ({'; '.join(conditions)})" if conditions else f"{deny.name} (always)"


def who_can_open(policies: Sequence[Policy], app_name: str,
                 app_labels: Mapping[str, str]) -> list[AccessRow]:
    """One row per enforced allow covering the app (priority desc, then name): who it
    admits, on which conditions, with which controls, and which enforced denies could
    still refuse them. Dry-run policies grant nothing, so they have no row."""
    denies = _enforced(policies, app_name, app_labels, "deny")
    rows = []
    for allow in _enforced(policies, app_name, app_labels, "allow"):
        subjects = allow.spec.subjects
        rows.append(AccessRow(
            policy=allow.name,
            priority=allow.spec.priority,
            groups=tuple(sorted(subjects.groups)),
            users=tuple(sorted(subjects.users)),
            conditions=tuple(describe_conditions(allow.spec.conditions)),
            controls=allow.spec.session_controls.wire(),
            overridable_by=tuple(_deny_label(d) for d in denies
                                 if could_override(d.spec.subjects, subjects)),
        ))
    return rows
