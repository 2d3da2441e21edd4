"""Reconcile a SessionHostPool: render its children, apply what differs, scale it by
sessions, and report status."""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..api.common import parse_duration
from ..api.kinds import PUBLISHED_APP, SESSION_HOST_POOL
from ..api.parse import InvalidSpec, parse
from ..clock import format_time, parse_time, real_now
from ..conditions import Cond
from ..kube.client import Kube
from ..kube.compare import needs_apply
from ..metrics import (
    ROLLOUTS_COMPLETED,
    ROLLOUTS_STARTED,
    SCALING_DECISIONS,
    STATE,
    PoolMetrics,
)
from ..policy.enforcement import app_labels, app_session_config, valid_policies
from ..policy.selection import label_set
from ..render.configdata import DocumentTooLarge
from ..render.pool import Pool, build_pool_children, host_selector
from ..scaling.decide import Decision, Demand, Memory
from ..settings import Settings
from . import fanout
from .cache import APPS_BY_POOL, digested
from .children import sync_children
from .controller import Body, Controller, Job, policies_of
from .drain_report import report_drains
from .events import post_event
from .fanout import Delayed, Facts, Key
from .pass_result import PassResult
from .pool_demand import pool_demand
from .process import ProcessState, Rendered, RenderedChildren
from .revisions import Fleet, plan_fleet
from .revisions import host_counts as fleet_counts
from .rollout_report import (
    RolloutFacts,
    past_deadline,
    progressing,
    rollout_events,
    rollout_facts,
    rollout_fields,
)
from .scaling import observe, scale_pool
from .status import write_invalid, write_status

if TYPE_CHECKING:
    from .runtime import Runtime

KIND = SESSION_HOST_POOL.kind
HOSTS = f"{KIND}/hosts"  # what the watch last saw of a pool's hosts (fanout.FactsMemory)


@dataclass(frozen=True)
class PoolSnapshot:
    body: dict[str, Any]
    children: list[dict[str, Any]]
    pods: list[dict[str, Any]] = field(default_factory=list)
    apps: list[dict[str, Any]] = field(default_factory=list)  # the apps on this pool
    policies: list[dict[str, Any]] = field(default_factory=list)
    policies_version: Hashable | None = None  # see fanout.FactsMemory.version
    # The logon demand the portal counted (controllers/portal_stats.py), without the
    # host start-up and session end figures the pass adds; None when there is no signal,
    # and why not (None: not known, e.g. a pass run outside the operator).
    demand: Demand | None = None
    demand_signal: str | None = None


def pool_is_ready(children: list[dict[str, Any]]) -> bool:
    """A pool can take sessions when one of its Deployments (of any revision) has at
    least one ready host."""
    return any(c["kind"] == "Deployment" and
               (c.get("status") or {}).get("readyReplicas", 0) > 0 for c in children)


def _scaling_fields(decision: Decision, changed: bool, before: int) -> dict[str, Any]:
    """`before`: the hosts the pool's Deployments asked for; after: over every revision."""
    after = decision.replicas + sum(n for _, n in decision.outdated_replicas)
    fields: dict[str, Any] = {
        "desiredHosts": after,
        "sessions": decision.sessions,
        "capacity": decision.capacity,
        "utilizationPercent": round(100 * decision.sessions / decision.capacity)
        if decision.capacity else 0,
        "phase": decision.phase.name,
        "scalingReason": decision.reason,
        "surplusSince": format_time(decision.memory.surplus_since)
        if decision.memory.surplus_since else None,
    }
    if changed and decision.direction != "none":
        fields["lastScaling"] = {"time": format_time(real_now()),
                                 "direction": decision.direction, "fromHosts": before,
                                 "toHosts": after, "reason": decision.reason}
    # Otherwise left out: the status is merge-patched, so the last scaling stays as
    # written even when this pass read an older copy of the pool from the cache.
    return fields


def _desired_children(pool: Pool, settings: Settings, apps: dict[str, Any],
                      live: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """The pool's children, and why the host config could not be rendered, if so. Then
    the hosts keep the config they have and the rest goes on: a pool must still scale
    for the logon storm while someone trims its grants."""
    try:
        return build_pool_children(pool, settings, apps), None
    except DocumentTooLarge as err:
        kept = [c for c in live if c["kind"] == "ConfigMap"]
        rest = [c for c in build_pool_children(pool, settings) if c["kind"] != "ConfigMap"]
        return kept + rest, str(err)


def _kept_bytes(children: list[dict[str, Any]]) -> int:
    """What a kept rendering holds, roughly: its documents are digests."""
    return 1024 * len(children)


def _rendered(pool: Pool, settings: Settings, snap: PoolSnapshot,
              kept_rendered: RenderedChildren | None = None
              ) -> tuple[list[dict[str, Any]], str | None]:
    """The pool's children, from `kept_rendered` (ProcessState.rendered) while their
    inputs are the same and the live children are what it holds. A pool is passed every
    scaling period and on every change of its hosts, but its children change only with
    its spec, its apps' names and labels, and the policies: at 500 pools rendering alone
    took most of a core. What is kept holds the host config's digest, not the document
    (up to 900 KiB a pool, 64 MiB at 500 pools): a pass that must write renders again."""
    policies = valid_policies(snap.policies, snap.policies_version)
    key = (pool.uid, pool.name, pool.namespace, snap.body["metadata"].get("generation"),
           tuple((a["metadata"]["name"], label_set(app_labels(a)))
                 for a in snap.apps))
    slot = (pool.namespace, pool.name)
    kept = kept_rendered.get(slot) if kept_rendered is not None else None
    if kept is not None and kept.key == key and kept.policies is policies:
        # Only the ConfigMaps hold digests: they must be live as kept, or the sync would
        # have no document to apply. The rest the sync compares and applies as usual.
        live = {c["metadata"]["name"]: c for c in snap.children if c["kind"] == "ConfigMap"}
        if not any(needs_apply(c, live.get(c["metadata"]["name"]))
                   for c in kept.children if c["kind"] == "ConfigMap"):
            return kept.children, None
    apps = {a["metadata"]["name"]: app_session_config(policies, a["metadata"]["name"],
                                                      app_labels(a))
            for a in snap.apps}
    children, error = _desired_children(pool, settings, apps, snap.children)
    if error is None and kept_rendered is not None:
        # kept only when it does not depend on the live children
        held = [digested(c) for c in children]
        kept_rendered.put(slot, Rendered(key, policies, held, _kept_bytes(held)))
    return children, error


DEMAND_SIGNAL_ON = "launches seen by the portal"


def _scale(kube: Kube, process: ProcessState, pool: Pool, snap: PoolSnapshot, fleet: Fleet,
           desired: int, ready: int, fields: dict[str, Any]
           ) -> tuple[Decision, RolloutFacts]:
    """Ask the core, act on its decision, and put what it found in `fields`."""
    spec = pool.spec
    seen = observe(snap.pods)
    key = f"{pool.namespace}/{pool.name}"
    status = snap.body.get("status") or {}
    # The last figure measured, kept in status: a pool at zero hosts after an operator
    # restart has no host left to measure, and the estimate may be far off.
    startup = process.startup.observe(key, seen.pods, seen.real) or _number(
        status.get("startupSeconds"))
    max_age = parse_duration(spec.scaling.signal_max_age).total_seconds()
    ended = process.session_ends.observe(key, seen.hosts, seen.now, max_age, time.monotonic())
    demand = None if snap.demand is None else replace(
        snap.demand, startup_seconds=startup, ended_per_minute=ended)
    memory = Memory(surplus_since=parse_time(status.get("surplusSince")))
    scaled = scale_pool(kube, spec, fleet, seen, memory, demand, process.replicas)
    decision = scaled.decision
    fields.update(_scaling_fields(decision, scaled.changed, desired))
    draining = sum(1 for h in seen.hosts if h.draining)
    fields.update({
        "drainingHosts": draining,
        "disconnectedSessions": decision.disconnected,
        "unknownHosts": len(decision.unknown),
        "loggingOffHosts": len(decision.logoff),
        "startupSeconds": round(startup) if startup is not None else None,
    })
    facts = rollout_facts(fleet, decision, seen)
    fields.update(rollout_fields(facts, status, format_time(seen.real)))
    total = decision.replicas + sum(n for _, n in decision.outdated_replicas)
    oldest = parse_time((facts.oldest or {}).get("createdAt"))
    STATE.set_pool(pool.namespace, pool.name, PoolMetrics(
        desired=total, ready=ready, draining=draining,
        sessions=decision.sessions, capacity=decision.capacity,
        phase=decision.phase.name, healthy=ready > 0, stale_hosts=len(decision.stale),
        disconnected=decision.disconnected, unknown_hosts=len(decision.unknown),
        logging_off=len(decision.logoff), startup_seconds=startup,
        revision=facts.revision, updated=facts.updated, outdated=facts.outdated,
        past_deadline=len(facts.past_deadline),
        oldest_outdated_created=oldest.timestamp() if oldest else None))
    if scaled.changed and decision.direction != "none":
        SCALING_DECISIONS.labels(pool.namespace, pool.name, decision.direction).inc()
        post_event(kube, snap.body, "Normal",
                   "ScaledUp" if decision.direction == "up" else "ScaledDown",
                   decision.reason, process.events)
    report_drains(kube, snap.body, spec, scaled, process.events)
    fields["desiredHosts"] = total
    return decision, facts


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _ready_condition(ready: int, desired: int) -> Cond:
    if ready:
        return Cond("Ready", True, "HostsReady", f"{ready} of {desired} hosts ready")
    if desired == 0:  # by design (minHosts 0, no demand): the next launch starts a host
        return Cond("Ready", False, "ScaledToZero",
                    "no host is needed now; the next launch starts one")
    return Cond("Ready", False, "NoHostsReady", f"0 of {desired} hosts ready")


def _degraded_condition(decision: Decision | None, facts: RolloutFacts | None,
                        pool: Pool) -> Cond:
    unknown = decision.unknown if decision else ()
    silent = len(unknown)
    late = past_deadline(facts, pool.spec.scaling.drain.logoff_timeout) if facts else None
    if silent and pool.spec.agent.enabled:
        return Cond("Degraded", True, "AgentsSilent", (
            f"{silent} ready host(s) never reported sessions ({', '.join(unknown[:5])}"
            f"{', ...' if silent > 5 else ''}): they are kept, but count as empty, so the "
            f"pool grows no further than its floor and buffer for them; see the "
            f"deskfleet-agent container's logs" + (f"; and {late}" if late else "")))
    if late:
        return Cond("Degraded", True, "RolloutPastDeadline", late[0].upper() + late[1:])
    return Cond("Degraded", False, "AsExpected", "")


def reconcile_pool(kube: Kube, settings: Settings, snap: PoolSnapshot,
                   process: ProcessState | None = None) -> PassResult:
    """`process`: what the operator process remembers between passes (the Runtime's);
    None for a pass on its own, which remembers nothing."""
    process = ProcessState() if process is None else process
    body = snap.body
    try:
        pool = parse(body)
    except InvalidSpec as err:
        # Keep what runs: an invalid edit must not take clinicians' hosts away.
        write_invalid(kube, body, err, process=process)
        return PassResult()

    children, config_error = _rendered(pool, settings, snap, process.rendered)
    status = body.get("status") or {}
    # One Deployment per revision: the sync sees the current one; the others are the
    # scaling shell's, kept while their hosts hold sessions (revisions.py).
    fleet, desired_children, live = plan_fleet(pool, children, snap.children,
                                               status.get("revision"))
    result = sync_children(kube, desired_children, live, owner=body, gone=process.gone)
    if result.owner_gone:
        return PassResult(owner_gone=True)
    if config_error:
        result.errors.append(config_error)
    desired, ready = fleet_counts(fleet)
    fields: dict[str, Any] = {
        "desiredHosts": desired,
        "readyHosts": ready,
        "selector": ",".join(f"{k}={v}" for k, v in host_selector(pool.name).items()),
    }
    decision: Decision | None = None
    facts: RolloutFacts | None = None
    if fleet.deployments and not result.errors:
        decision, facts = _scale(kube, process, pool, snap, fleet, desired, ready, fields)
        desired = fields["desiredHosts"]
    fields["hosts"] = f"{ready}/{desired}"
    if snap.demand_signal is not None:
        fields["demandSignal"] = snap.demand_signal or DEMAND_SIGNAL_ON

    if result.errors:
        conds = [Cond("Ready", False, "ApplyFailed", "; ".join(result.errors)),
                 Cond("Progressing", False, "ApplyFailed", ""),
                 Cond("Degraded", True, "ApplyFailed", "; ".join(result.errors))]
    else:
        # Level, not edge: "this pass applied something" would flip back on the next
        # pass and cost a status write every time anything changed.
        moving = (progressing(facts, ready, desired) if facts else
                  Cond("Progressing", ready < desired,
                       "HostsStarting" if ready < desired else "Stable",
                       f"{desired - ready} hosts starting" if ready < desired else ""))
        conds = [_ready_condition(ready, desired), moving,
                 _degraded_condition(decision, facts, pool)]
    write_status(kube, body, fields, conds, process=process)
    if facts is not None:
        _report_rollout(kube, process, body, status, fields, facts)
    return PassResult(result.errors, requeue_after=settings.scaling_period_seconds)


def _report_rollout(kube: Kube, process: ProcessState, body: dict[str, Any],
                    before: dict[str, Any],
                    after: dict[str, Any], facts: RolloutFacts) -> None:
    meta = body["metadata"]
    for event in rollout_events(before, after, facts):
        if event.reason == "RolloutStarted":
            ROLLOUTS_STARTED.labels(meta["namespace"], meta["name"]).inc()
        if event.reason == "RolloutComplete":
            ROLLOUTS_COMPLETED.labels(meta["namespace"], meta["name"]).inc()
        post_event(kube, body, event.type, event.reason, event.message, process.events)


# -- the declaration ------------------------------------------------------------------------

def _apps_of_pool(rt: Runtime, namespace: str, name: str) -> list[str]:
    return sorted(set(rt.cache.lookup(APPS_BY_POOL, (namespace, name))))


def _keys(rt: Runtime, key: Key, old: Facts | None, new: Facts | None
          ) -> list[Key | Delayed]:
    _, namespace, name = key
    apps = _apps_of_pool(rt, namespace, name) if rt.cache.bound else []
    return fanout.pool_keys(namespace, name, old, new, apps)


def _snapshot(rt: Runtime, namespace: str, name: str, body: Body | None) -> Job:
    assert body is not None and rt.kube is not None
    apps = [a for a in (rt.cache.get(PUBLISHED_APP.kind, namespace, n)
                        for n in _apps_of_pool(rt, namespace, name)) if a is not None]
    demand, signal = pool_demand(namespace, name)
    policies, version = policies_of(rt, namespace)
    snap = PoolSnapshot(body, rt.cache.children(namespace, KIND, name),
                        rt.cache.pods(namespace, name), apps, policies, version,
                        demand=demand, demand_signal=signal)
    kube, settings, process = rt.kube, rt.settings, rt.process
    return lambda: reconcile_pool(kube, settings, snap, process)


def _child_keys(rt: Runtime, key: Key) -> list[Key | Delayed]:
    """The pool, and its apps when whether it has a ready host changed: a route opens
    as the first host turns ready, without waiting for the pool's pass to write its
    status and that write's event to reach the apps."""
    _, namespace, name = key
    ready = pool_is_ready(rt.cache.children(namespace, KIND, name))
    before = rt.facts.swap((HOSTS, namespace, name), {"ready": ready})
    if before is None or before["ready"] == ready:
        return [key]
    return [key, *((PUBLISHED_APP.kind, namespace, a)
                   for a in _apps_of_pool(rt, namespace, name))]


def _forget(rt: Runtime, namespace: str, name: str) -> None:
    rt.process.forget_pool(namespace, name)
    rt.facts.swap((HOSTS, namespace, name), None)


CONTROLLER = Controller(
    kind=KIND, plural=SESSION_HOST_POOL.plural, snapshot=_snapshot,
    facts=fanout.pool_event_facts, keys=_keys, owns_children=True, child_keys=_child_keys,
    forget=_forget)
