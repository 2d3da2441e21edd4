"""The pools the simulation runs, and the settings of the autoscalers compared on them.

The default pool is what a platform engineer would write for the trust's clinical
desktops with no knowledge of the day ahead: no schedule phase, a small buffer, and the
demand signal to meet storms. It is built through the real API model, as is a pool read
from a manifest (`--pool`), so the simulation runs exactly the spec the operator would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..api.sessionhostpool import SessionHostPoolSpec

SESSIONS_PER_HOST = 8
STARTUP = timedelta(minutes=4)  # from the replica increase until the host is ready
STEP = timedelta(seconds=30)  # how often every autoscaler runs
MIN_HOSTS, MAX_HOSTS = 1, 300
STATIC_HEADROOM = 0.10  # static peak sizing: the day's peak plus 10%


@dataclass(frozen=True)
class HpaSettings:
    target: float = 0.70  # sessions / slots, standing in for CPU utilisation
    tolerance: float = 0.10  # the HPA's default: no change within 10% of the target
    scale_down_window: timedelta = timedelta(minutes=5)
    min_hosts: int = MIN_HOSTS
    max_hosts: int = MAX_HOSTS


def deskfleet_pool_dict() -> dict[str, Any]:
    """The pool as it would appear in the manifest's `spec` (camelCase)."""
    return {
        "image": "registry.northgate.example/desktops/clinical-xrdp:2026.11",
        "protocol": "rdp",
        "sessionsPerHost": SESSIONS_PER_HOST,
        "agent": {"sessionSource": "host"},
        "scaling": {
            "minHosts": MIN_HOSTS,
            "maxHosts": MAX_HOSTS,
            "bufferSessions": 8,
            "scaleInDelay": "10m",
            "maxScaleOutStep": 30,
            "maxScaleInStep": 5,
            "loadBalancing": "auto",
            "demand": {"marginPercent": 50, "startupEstimate": "4m"},
            "drain": {"maxWait": "10h", "forceLogoff": False},
        },
    }


def deskfleet_pool() -> SessionHostPoolSpec:
    return SessionHostPoolSpec.model_validate(deskfleet_pool_dict(), by_alias=True)


def with_forced_logoff(spec: SessionHostPoolSpec, grace: timedelta) -> SessionHostPoolSpec:
    """The same pool, logging users off `grace` after the drain notice."""
    body = spec.wire()
    minutes = int(grace.total_seconds() // 60)
    body["scaling"]["drain"] = {**body["scaling"].get("drain", {}), "forceLogoff": True,
                                "maxWait": f"{minutes}m"}
    return SessionHostPoolSpec.model_validate(body, by_alias=True)


class PoolFileError(ValueError):
    pass


def load_pool(path: Path) -> SessionHostPoolSpec:
    """The spec of the SessionHostPool in a manifest file (the first, if several)."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as err:
        raise PoolFileError(f"{path}: cannot read it: {err}") from err
    pools = [d for d in docs if isinstance(d, dict) and d.get("kind") == "SessionHostPool"]
    if not pools:
        raise PoolFileError(f"{path}: no SessionHostPool in it")
    try:
        return SessionHostPoolSpec.model_validate(pools[0].get("spec") or {}, by_alias=True)
    except ValidationError as err:
        problems = "; ".join(f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in err.errors())
        raise PoolFileError(f"{path}: not a valid SessionHostPool: {problems}") from err


def describe_pool(spec: SessionHostPoolSpec) -> list[str]:
    """The pool's scaling settings in words, for the report."""
    s = spec.scaling
    buffer = (f"bufferSessions {s.buffer_sessions}" if s.buffer_sessions is not None else
              f"bufferPercent {s.buffer_percent}" if s.buffer_percent is not None else
              "buffer default")
    counted = ("the host (disconnected ones included)" if spec.agent.session_source == "host"
               else "TCP connections (disconnected ones invisible)")
    lines = [
        f"sessionsPerHost {spec.sessions_per_host}, minHosts {s.min_hosts}, maxHosts "
        f"{s.max_hosts}, {buffer}, scaleInDelay {s.scale_in_delay}, "
        f"maxScaleOutStep {s.max_scale_out_step}, maxScaleInStep {s.max_scale_in_step}, "
        f"loadBalancing {s.load_balancing}, demand margin {s.demand.margin_percent}%",
        f"drain maxWait {s.drain.max_wait}, forceLogoff {str(s.drain.force_logoff).lower()}"
        f", logoffTimeout {s.drain.logoff_timeout}; sessions counted by {counted}",
    ]
    if s.schedule is not None:
        for p in s.schedule.phases:
            extra = [f"minHosts {p.min_hosts}" if p.min_hosts is not None else "",
                     f"bufferSessions {p.buffer_sessions}"
                     if p.buffer_sessions is not None else "",
                     f"bufferPercent {p.buffer_percent}" if p.buffer_percent is not None else ""]
            lines.append(f"phase `{p.name}` ({p.type}, {','.join(p.days)} {p.start}-{p.end} "
                         f"{s.schedule.time_zone}): " + ", ".join(e for e in extra if e))
    else:
        lines.append("no schedule phase")
    return lines
