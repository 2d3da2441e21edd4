"""Rolling a pool onto a new revision without cutting a session. Pure.

A revision is one pod template of the pool's hosts (render/revision.py); each runs as
its own Deployment. One revision is *current*: its hosts are the pool's serving hosts,
sized by the autoscaler as always. Hosts of every other revision are *outdated*:

1. While no current host can take a logon (none is ready yet, or all are full), outdated
   hosts go on taking them: a rollout never makes a logon wait for a host to start.
2. As soon as a ready current host has a free slot, outdated hosts stop taking logons.
3. Once the ready current hosts hold the free slots the pool keeps for logons (its
   buffer and the demand reserve), or none is still starting, outdated hosts *drain*:
   their users get the update's notice — with a deadline if `update.drainDeadline` is
   set, or `urgentDeadline` in urgent mode — and they leave as any drained host does,
   when they report no session (disconnected ones included), or once logged off after
   the deadline.
4. An outdated host is put back into service only to spare logons a wait, as a draining
   host would be without a rollout: in a storm the current revision cannot take yet
   (hosts being added, none with a free slot), in a rollout with no deadline, and never
   one whose users were given a deadline; it drains again once the new hosts are up.
5. An outdated revision keeps only the hosts it has (a pod it lost is not replaced, one
   still to be created is not), and its Deployment is deleted once it has none.

Capacity: outdated hosts offer no free slot, but their sessions still count as the
pool's load, packed — so the current revision gets what the pool would have without a
rollout minus the hosts' worth of sessions staying on outdated ones (decide.py's
_Sizing), plus `maxSurge` hosts ahead of demand until the outdated hosts drain (enough
new hosts to take over at once; afterwards demand decides). The pool may exceed
`maxHosts` by that surge during a rollout, so a pool at its maximum can still roll.

A rollback is the spec reverting: the old template's revision becomes current again,
and its hosts — still there, maybe draining — are current hosts the autoscaler may put
back into service rather than start new ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..api.common import parse_duration
from ..api.sessionhostpool import SessionHostPoolSpec
from .drain import DrainPolicy


@dataclass(frozen=True)
class Revisions:
    """What the core knows of a pool's revisions besides its hosts."""

    current: str = ""  # the revision new hosts run (hosts of any other are outdated)
    # spec.replicas of each other revision's Deployment (as last written or seen)
    outdated: Mapping[str, int] = field(default_factory=dict)


def current_revision(wanted: str, live: Mapping[str, datetime], held: bool,
                     recorded: str | None) -> str:
    """The revision new hosts run.

    `wanted` is the spec's; `live` the revisions that have a Deployment, with its
    creation time; `recorded` the one the status names. Held (`update.paused`, or
    autoscaling paused), the current revision stays what it was: the recorded one while
    it runs, else the newest that runs; a pool with none starts with the spec's."""
    if not held:
        return wanted
    if recorded is not None and recorded in live:
        return recorded
    if live:
        return max(live, key=lambda r: (live[r], r))
    return wanted


def update_policy(spec: SessionHostPoolSpec, scale_in: DrainPolicy) -> DrainPolicy:
    """How outdated hosts drain: the update's notice, its deadline (the shorter of
    drainDeadline and, in urgent mode, urgentDeadline), the pool's logoffTimeout. A
    deadline a host got earlier from scale-in stands (forced logoff stays allowed)."""
    update = spec.update
    grace = parse_duration(update.drain_deadline) if update.drain_deadline else None
    urgent = parse_duration(update.urgent_deadline) if update.urgent else None
    if urgent is not None:
        grace = urgent if grace is None else min(grace, urgent)
    return DrainPolicy(
        grace=grace if grace is not None else scale_in.grace,
        force_logoff=grace is not None,
        notify=True,
        message=update.message,
        logoff_timeout=scale_in.logoff_timeout,
        force_allowed=grace is not None or scale_in.force_allowed,
        urgent=urgent)


def surge_hosts(spec: SessionHostPoolSpec, outdated: int) -> int:
    """New-revision hosts started ahead of demand, never more than the outdated hosts
    they replace (of those still serving); of all outdated hosts, how far the pool may
    exceed maxHosts meanwhile."""
    if outdated <= 0:
        return 0
    surge = spec.update.max_surge
    wanted = surge if isinstance(surge, int) else math.ceil(outdated * int(surge[:-1]) / 100)
    return min(wanted, outdated)
