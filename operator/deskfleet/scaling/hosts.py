"""A host as the scaling core sees it, and what its report is worth. Pure.

Everything here comes from the pod: its readiness and age, the agent's last report, and
the drain annotations the operator itself wrote (so an operator restart loses nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


@dataclass(frozen=True)
class Host:
    name: str
    created_at: datetime
    ready: bool
    sessions: int | None = None  # the agent's last report (all that count as load)
    reported_at: datetime | None = None
    draining_since: datetime | None = None
    disconnected: int | None = None  # of `sessions`, users disconnected (host reports)
    drain_message: str | None = None  # the notice its users were given, if any
    logoff_deadline: datetime | None = None  # announced in the notice; None: no forced logoff
    logoff_requested_at: datetime | None = None  # when the host was told to log users off
    revision: str = ""  # the pod template it runs (render/revision.py)

    def fresh(self, now: datetime, max_age_seconds: float) -> bool:
        return (self.sessions is not None and self.reported_at is not None
                and (now - self.reported_at).total_seconds() <= max_age_seconds)

    @property
    def draining(self) -> bool:
        return self.draining_since is not None


class Signal(Enum):
    """How much the core may trust a host's session count."""

    STARTING = "starting"  # not ready: no session can be on it
    FRESH = "fresh"
    NEW = "new"  # ready, no report yet, younger than signalMaxAge: just started, empty
    UNKNOWN = "unknown"  # ready, never reported, older than that: an agent that never ran
    STALE = "stale"  # reported once, not lately: an agent that stopped


def signal(host: Host, now: datetime, max_age_seconds: float) -> Signal:
    if not host.ready:
        return Signal.STARTING
    if host.fresh(now, max_age_seconds):
        return Signal.FRESH
    if host.reported_at is None:
        age = (now - host.created_at).total_seconds()
        return Signal.NEW if age <= max_age_seconds else Signal.UNKNOWN
    return Signal.STALE


def load(host: Host, trust: Signal, per_host: int) -> int:
    """Sessions the host is counted with when sizing the pool.

    An agent that stopped reporting counts its host as full: missing data errs towards
    capacity. One that never reported counts it as empty (and its host stays, protected
    from scale-in): assuming such hosts full made pools whose agents never ran grow
    without bound, each new silent host calling for the next.
    """
    if trust is Signal.FRESH:
        return host.sessions or 0
    if trust is Signal.STALE:
        return per_host
    return 0


def accepts(host: Host, per_host: int) -> bool:
    """Whether a new session may land on the host at all (serving, with a free slot)."""
    if host.draining:
        return False
    return host.sessions is None or host.sessions < per_host
