"""Tell people where a pool's rollout stands: status, conditions and Events. Pure.

Everything here is computed from what a pass saw (the fleet of revisions, the hosts'
pods, the decision) and the status it read: times are the cluster's own (the pods'
creation and annotations), so an unchanged rollout writes an unchanged status. Events
are edges between the status read and the status written: a rollout started (the
revision changed), its first deadline passed, it completed (no outdated host left), a
new revision held back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..agent.annotations import DRAINING_ANNOTATION, LOGOFF_DEADLINE_ANNOTATION
from ..conditions import Cond
from ..scaling.decide import Decision
from .revisions import Fleet
from .scaling import Observed

LEGACY_NAME = "legacy"  # how status names the Deployment pools had before revisions


def _name(revision: str) -> str:
    return revision or LEGACY_NAME


@dataclass(frozen=True)
class RolloutFacts:
    """What the status, the conditions, the Events and the metrics say of a rollout."""

    revision: str
    updated: int  # hosts of the current revision
    outdated: int
    past_deadline: tuple[str, ...]
    pending: str | None  # held back by update.paused
    oldest: dict[str, Any] | None  # the oldest outdated host: name, createdAt, ...
    revisions: tuple[str, ...] = ()  # the outdated revisions still running

    @property
    def total(self) -> int:
        return self.updated + self.outdated


def rollout_facts(fleet: Fleet, decision: Decision, seen: Observed) -> RolloutFacts:
    outdated = set(decision.outdated)
    pods = [p for p in seen.pods if p["metadata"]["name"] in outdated]
    oldest = None
    if pods:
        first = min(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "",
                                         p["metadata"]["name"]))
        meta = first["metadata"]
        ann = meta.get("annotations") or {}
        oldest = {"name": meta["name"], "createdAt": meta.get("creationTimestamp") or "",
                  "drainingSince": ann.get(DRAINING_ANNOTATION),
                  "deadline": ann.get(LOGOFF_DEADLINE_ANNOTATION)}
        oldest = {k: v for k, v in oldest.items() if v is not None}
    revisions = {h.revision for h in seen.hosts if h.name in outdated} | {
        r for r in fleet.deployments if r != fleet.current}
    return RolloutFacts(fleet.current, len(seen.hosts) - len(outdated), len(outdated),
                        decision.past_deadline, fleet.pending, oldest,
                        tuple(sorted(_name(r) for r in revisions)))


def rollout_fields(facts: RolloutFacts, before: dict[str, Any], now: str) -> dict[str, Any]:
    """The status fields; `before` is the status as read, `now` the cluster's time."""
    rollout: dict[str, Any] | None = None
    if facts.outdated or facts.pending:
        kept = before.get("rollout") or {}
        started = (kept.get("startedAt") if before.get("revision") == facts.revision
                   else None) or now
        rollout = {"startedAt": started,
                   "outdatedRevisions": list(facts.revisions),
                   "oldestOutdatedHost": facts.oldest,
                   "pastDeadlineHosts": len(facts.past_deadline),
                   "pendingRevision": facts.pending}
        rollout = {k: v for k, v in rollout.items() if v is not None}
    return {"revision": facts.revision, "updatedHosts": facts.updated,
            "outdatedHosts": facts.outdated, "updated": f"{facts.updated}/{facts.total}",
            "rollout": rollout}


def progressing(facts: RolloutFacts, ready: int, desired: int) -> Cond:
    """Level, not edge: a rollout is progressing while outdated hosts remain."""
    if facts.outdated:
        oldest = facts.oldest or {}
        since = oldest.get("drainingSince") or oldest.get("createdAt")
        deadline = oldest.get("deadline")
        text = (f"{facts.updated} of {facts.total} hosts run revision {facts.revision}; "
                f"{facts.outdated} outdated host(s) take no new logons and leave when their "
                f"sessions end; the oldest, {oldest.get('name')}, since {since}")
        text += f", its users logged off at {deadline}" if deadline else ", no deadline"
        if facts.pending:
            text += f"; revision {facts.pending} is held (spec.update.paused)"
        return Cond("Progressing", True, "RollingOut", text)
    if facts.pending:
        return Cond("Progressing", None, "RolloutPaused",
                    f"revision {facts.pending} waits: spec.update.paused (or "
                    f"spec.scaling.paused) holds it; every host runs revision "
                    f"{facts.revision}")
    if ready < desired:
        return Cond("Progressing", True, "HostsStarting", f"{desired - ready} hosts starting")
    return Cond("Progressing", False, "Stable", "")


def past_deadline(facts: RolloutFacts, logoff_timeout: str) -> str | None:
    """Why the pool is degraded by its rollout, if it is."""
    if not facts.past_deadline:
        return None
    names = ", ".join(facts.past_deadline[:5]) + (", ..." if len(facts.past_deadline) > 5
                                                    else "")
    return (f"{len(facts.past_deadline)} outdated host(s) are past the deadline their users "
            f"were given ({names}): they are being logged off, and each goes once it "
            f"reports no session or {logoff_timeout} (drain.logoffTimeout) after it was "
            f"asked")


@dataclass(frozen=True)
class RolloutEvent:
    type: str
    reason: str
    message: str


def rollout_events(before: dict[str, Any], after: dict[str, Any],
                   facts: RolloutFacts) -> list[RolloutEvent]:
    """The Events of the transitions between the status read and the one written."""
    events: list[RolloutEvent] = []
    was, now = before.get("revision"), after["revision"]
    kept = before.get("rollout") or {}
    if was is not None and was != now:
        events.append(RolloutEvent("Normal", "RolloutStarted", (
            f"revision {now} replaces {was}: {facts.outdated} outdated host(s) stop taking "
            f"logons once an updated host can, and leave when their sessions end")))
    if facts.past_deadline and not kept.get("pastDeadlineHosts"):
        events.append(RolloutEvent("Warning", "RolloutDeadlinePassed", (
            f"{len(facts.past_deadline)} outdated host(s) still have sessions at their "
            f"deadline: their users are being logged off")))
    if facts.pending and kept.get("pendingRevision") != facts.pending:
        events.append(RolloutEvent("Normal", "RolloutPaused", (
            f"revision {facts.pending} is held by spec.update.paused; the hosts stay on "
            f"revision {now}")))
    finished = (before.get("outdatedHosts") or (was is not None and was != now))
    if finished and not facts.outdated:
        events.append(RolloutEvent("Normal", "RolloutComplete", (
            f"every host ({facts.updated}) runs revision {now}")))
    return events
