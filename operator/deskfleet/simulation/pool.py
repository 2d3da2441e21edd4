"""The settings of the simulated pool and of the autoscalers compared on it.

The deskfleet pool is what a platform engineer would write for the trust's clinical
desktops (compare examples/10-pools.yaml); it is built through the real API model, so
the simulation runs exactly the spec the operator would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..api.sessionhostpool import SessionHostPoolSpec

SESSIONS_PER_HOST = 8
STARTUP = timedelta(minutes=4)  # from the replica increase until the host is ready
STEP = timedelta(seconds=30)  # how often every autoscaler runs
MIN_HOSTS, MAX_HOSTS = 2, 200


@dataclass(frozen=True)
class HpaSettings:
    target: float = 0.70  # sessions / slots, standing in for CPU utilisation
    tolerance: float = 0.10  # the HPA's default: no change within 10% of the target
    scale_down_window: timedelta = timedelta(minutes=5)
    min_hosts: int = MIN_HOSTS
    max_hosts: int = MAX_HOSTS


STATIC_HEADROOM = 0.10  # static peak sizing: the day's peak plus 10%


def deskfleet_pool_dict() -> dict[str, Any]:
    """The pool as it would appear in the manifest's `spec` (camelCase)."""
    return {
        "image": "registry.northgate.example/desktops/clinical-xrdp:2026.11",
        "protocol": "rdp",
        "sessionsPerHost": SESSIONS_PER_HOST,
        "scaling": {
            "minHosts": MIN_HOSTS,
            "maxHosts": MAX_HOSTS,
            "bufferSessions": 24,
            "scaleInDelay": "10m",
            "maxScaleOutStep": 20,
            "maxScaleInStep": 5,
            "schedule": {
                "timeZone": "Europe/London",
                "phases": [
                    {"name": "logon-storm", "type": "rampUp",
                     "days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                     "start": "06:45", "end": "09:30", "minHosts": 40,
                     "bufferSessions": 64},
                ],
                "holidays": ["2026-12-25", "2026-12-26", "2027-01-01"],
            },
            "drain": {"maxWait": "10h", "forceLogoff": False},
        },
    }


def deskfleet_pool() -> SessionHostPoolSpec:
    return SessionHostPoolSpec.model_validate(deskfleet_pool_dict(), by_alias=True)


def describe_pool(spec: SessionHostPoolSpec) -> list[str]:
    """The pool's scaling settings in words, for the report."""
    s = spec.scaling
    lines = [
        f"sessionsPerHost {spec.sessions_per_host}, minHosts {s.min_hosts}, maxHosts "
        f"{s.max_hosts}, bufferSessions {s.buffer_sessions}, scaleInDelay {s.scale_in_delay}, "
        f"maxScaleOutStep {s.max_scale_out_step}, maxScaleInStep {s.max_scale_in_step}, "
        f"drain maxWait {s.drain.max_wait}, forceLogoff {str(s.drain.force_logoff).lower()}",
    ]
    if s.schedule is not None:
        for p in s.schedule.phases:
            extra = [f"minHosts {p.min_hosts}" if p.min_hosts is not None else "",
                     f"bufferSessions {p.buffer_sessions}"
                     if p.buffer_sessions is not None else "",
                     f"bufferPercent {p.buffer_percent}" if p.buffer_percent is not None else ""]
            lines.append(f"phase `{p.name}` ({p.type}, {','.join(p.days)} {p.start}-{p.end} "
                         f"{s.schedule.time_zone}): " + ", ".join(e for e in extra if e))
    return lines
