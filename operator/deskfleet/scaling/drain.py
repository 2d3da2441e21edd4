"""Retiring a host: the notice, the deadline, the logoff, and when the pod may go. Pure.

A draining host takes no new sessions. Its users are told (a notice delivered into their
sessions through the agent). Without a forced logoff it stays until its last session
ends. With one, the notice carries a deadline — the drain grace after the drain began,
or after forced logoff came into force for a host already draining — and once it has
passed the host is asked to log everyone off. The pod is removed only when the host
reports no session, or when it has had `logoffTimeout` to log them off.

The deadline is written on the pod when it is given and read back from there: it never
moves later, an operator restart loses none, and a schedule phase that ends does not
take back what users were told. Only a pool that no longer allows forced logoff at all
(in its drain settings, any phase or its update settings) withdraws announced deadlines
— the way to stop one. One thing brings a deadline forward: an urgent rollout (a
critical fix) caps every outdated host's deadline at `urgent` from the moment it is in
force, so its users still get at least that much notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api.common import parse_duration
from ..api.sessionhostpool import SessionHostPoolSpec
from .hosts import Host
from .schedule import PhaseView

# Endpoint changes take a moment to reach the gateway; a drained host's "empty" report
# counts only once it is this much younger than the drain.
DRAIN_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class DrainPolicy:
    """The pool's drain settings with the phase's over them."""

    grace: timedelta
    force_logoff: bool
    notify: bool
    message: str
    logoff_timeout: timedelta
    force_allowed: bool  # does the pool allow forced logoff at all, in any phase?
    urgent: timedelta | None = None  # an urgent rollout: no deadline later than now + this


@dataclass(frozen=True)
class Notice:
    """What a draining host's users are told."""

    host: str
    message: str
    deadline: datetime | None  # None: no forced logoff; they finish at their own pace


def drain_policy(spec: SessionHostPoolSpec, phase: PhaseView) -> DrainPolicy:
    drain = spec.scaling.drain
    over = phase.drain
    schedule = spec.scaling.schedule
    phases_force = any(p.drain is not None and p.drain.force_logoff
                       for p in (schedule.phases if schedule else []))
    force = over.force_logoff if over and over.force_logoff is not None else drain.force_logoff
    return DrainPolicy(
        grace=parse_duration(over.max_wait if over and over.max_wait else drain.max_wait),
        force_logoff=force,
        notify=drain.notify_users,
        message=over.message if over and over.message else drain.message,
        logoff_timeout=parse_duration(drain.logoff_timeout),
        force_allowed=drain.force_logoff or phases_force)


def deadline(host: Host, policy: DrainPolicy, now: datetime) -> datetime | None:
    """The host's logoff deadline as of now: the announced one stands; a draining host
    without one gets one if forced logoff is in force now."""
    if not policy.force_allowed:
        return None
    if host.logoff_deadline is not None:
        if policy.urgent is not None and host.logoff_deadline > now + policy.urgent:
            return now + policy.urgent  # brought forward, with a new notice
        return host.logoff_deadline
    return now + policy.grace if policy.force_logoff else None


def notice(host: Host, policy: DrainPolicy, when: datetime | None) -> Notice | None:
    """The notice a draining host shows, given its deadline; None if it shows none."""
    if when is None and not policy.notify and host.drain_message is None:
        return None
    return Notice(host.name, host.drain_message or policy.message, when)


def removable(host: Host, now: datetime, max_age_seconds: float,
              policy: DrainPolicy) -> bool:
    """May the (draining) host's pod be deleted now without cutting a session that was
    not told, and asked to leave, in time?"""
    assert host.draining_since is not None
    if host.fresh(now, max_age_seconds) and host.sessions == 0:
        assert host.reported_at is not None
        return (host.reported_at - host.draining_since).total_seconds() >= DRAIN_GRACE_SECONDS
    if not host.ready and host.reported_at is None:
        return True  # never became ready, never reported: no session was ever on it
    asked = host.logoff_requested_at
    return (policy.force_allowed and host.logoff_deadline is not None and asked is not None
            and now >= max(asked, host.logoff_deadline) + policy.logoff_timeout)
