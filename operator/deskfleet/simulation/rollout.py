"""The patch day's policies: what a pool does when its image changes.

- deskfleet as it is (revision-aware pools, scaling/rollout.py): new hosts take every
  new logon, outdated ones drain and go when empty — without a deadline, with the
  update's drainDeadline, or urgently (a short notice);
- the plain Deployment rollout deskfleet did before: one Deployment whose template
  change rolls (RollingUpdate, maxSurge 25%, maxUnavailable 0) — new pods up to the
  replicas plus the surge, old pods deleted as new ones become ready, the idle first (pod
  deletion cost) and then the busy ones, whose sessions are cut — while the autoscaler,
  seeing more pods than replicas, drains and removes nothing;
- and, for reference, the same pool on the same day with no image change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from ..api.common import parse_duration
from ..api.sessionhostpool import SessionHostPoolSpec
from ..scaling.decide import Host
from .policies import Action, DeskfleetPolicy, HostState, Observation, Policy

PolicyMaker = Callable[[], Policy]
DEPLOYMENT_SURGE = 0.25  # the Deployment's maxSurge, as the pool's was rendered
PATCH_DEADLINES = ("2h", "8h")  # the update deadlines compared


def with_update(spec: SessionHostPoolSpec, **update: object) -> SessionHostPoolSpec:
    """The same pool with `spec.update` fields set (camelCase names)."""
    body = spec.wire()
    body["update"] = {**body.get("update", {}), **update}
    return SessionHostPoolSpec.model_validate(body, by_alias=True)


class DeploymentRollout(DeskfleetPolicy):
    """deskfleet before revision-aware pools: the autoscaler on one Deployment, and the
    Deployment controller's rolling update when its template changes."""

    def __init__(self, spec: SessionHostPoolSpec) -> None:
        super().__init__(spec, "plain Deployment rollout (maxSurge 25%)", one_revision=True)
        self.replicas: int | None = None  # the Deployment's, as the autoscaler wrote it

    def describe(self) -> list[str]:
        return [*super().describe()[:-1],
                "the autoscaler as before revision-aware pools: one Deployment, whose "
                "replicas it sets; more pods than replicas (a rolling update's surge) and "
                "it drains and removes nothing",
                "at an image change the Deployment controller rolls: new pods up to the "
                "replicas + 25%, and old pods deleted as new ones become ready (no "
                "unavailable pod), not-ready first, then idle before busy (pod deletion "
                "cost), then newest; sessions on a deleted host are cut"]

    def current_replicas(self, views: Sequence[Host], current: str) -> int:
        return self.replicas if self.replicas is not None else len(views)

    def step(self, now: datetime, hosts: Sequence[HostState], seen: Observation) -> Action:
        action = super().step(now, hosts, seen)
        self.replicas = wanted = action.replicas
        gone = set(action.remove)
        old = [h for h in hosts if h.revision != seen.revision and h.name not in gone]
        new = [h for h in hosts if h.revision == seen.revision and h.name not in gone]
        if not old:
            return action
        surge = math.ceil(wanted * DEPLOYMENT_SURGE)
        grow = max(len(new), min(wanted, wanted + surge - len(old)))
        available = sum(1 for h in [*old, *new] if h.ready)
        down = min(len(old), max(0, available - wanted))
        victims = sorted(old, key=lambda h: (h.ready, h.sessions > 0,
                                             -h.created_at.timestamp(), h.name))[:down]
        return replace(action, replicas=grow + len(old) - len(victims),
                       remove=(*action.remove, *(h.name for h in victims)))


def rollout_policies(spec: SessionHostPoolSpec, baselines: bool = True) -> list[PolicyMaker]:
    """Policies for a day with an image change: the reference without it and the plain
    Deployment rollout (unless `baselines` is off), then deskfleet without a deadline,
    with each of PATCH_DEADLINES, and urgent."""
    makers: list[PolicyMaker] = []
    if baselines:
        makers += [lambda: DeskfleetPolicy(spec, "deskfleet, no image change (reference)",
                                           one_revision=True),
                   lambda: DeploymentRollout(spec)]
    makers.append(lambda: DeskfleetPolicy(spec))
    makers += [_with_deadline(spec, deadline) for deadline in PATCH_DEADLINES]
    urgent = with_update(spec, urgent=True)
    makers.append(lambda: DeskfleetPolicy(
        urgent, f"deskfleet, urgent ({urgent.update.urgent_deadline} notice)"))
    return makers


def _with_deadline(spec: SessionHostPoolSpec, deadline: str) -> PolicyMaker:
    timed = with_update(spec, drainDeadline=deadline)
    return lambda: DeskfleetPolicy(timed, f"deskfleet, update deadline {deadline}")


def deadline_of(spec: SessionHostPoolSpec) -> timedelta | None:
    """How long after it drains an outdated host's users are logged off, if ever."""
    update = spec.update
    times = [parse_duration(update.drain_deadline)] if update.drain_deadline else []
    if update.urgent:
        times.append(parse_duration(update.urgent_deadline))
    return min(times) if times else None
