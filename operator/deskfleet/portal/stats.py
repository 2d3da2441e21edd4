"""What the operator reads from each portal replica (`GET /v1/stats` on the internal
port): logon demand per pool, for scaling out before sessions exist, and what dry-run
policies would have changed, for their status.

Counters are cumulative since the replica started; `replica` and `startedAt` let the
reader tell a restart (counters back to zero) from no traffic. Format version 1:

    {"version": 1, "replica": "<uuid>", "startedAt": "<RFC 3339>",
     "pools": {"<namespace>/<pool>": {"launches": n, "unserved": n, "waiting": n}},
     "policies": {"<namespace>/<policy>": {"evaluated": n, "wouldChange": n}}}

`launches`: distinct (user, app) launches (a user's repeats within LAUNCH_DEDUP_SECONDS
count once); `unserved`: of those, launches that found no ready host with a free slot;
`waiting`: users on the waiting page in the last WAITING_SECONDS (a gauge).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..policy import AccessDecision

LAUNCH_DEDUP_SECONDS = 120.0
WAITING_SECONDS = 60.0


@dataclass
class PoolDemand:
    launches: int = 0
    unserved: int = 0
    waiting: dict[str, float] = field(default_factory=dict)  # user -> last seen waiting


@dataclass
class DryRunCount:
    evaluated: int = 0
    would_change: int = 0


class Stats:
    def __init__(self) -> None:
        self.replica = str(uuid.uuid4())
        self.started_at = datetime.now(UTC)
        self.pools: dict[tuple[str, str], PoolDemand] = defaultdict(PoolDemand)
        self.policies: dict[tuple[str, str], DryRunCount] = defaultdict(DryRunCount)
        self._recent: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def launch(self, namespace: str, pool: str, app: str, user: str, served: bool,
               now: float) -> bool:
        """Count a launch unless the user launched the app moments ago; True if counted."""
        key = (namespace, app, user)
        last = self._recent.get(key)
        self._recent[key] = now
        self._recent.move_to_end(key)
        while len(self._recent) > 100_000:
            self._recent.popitem(last=False)
        demand = self.pools[(namespace, pool)]
        if served:
            demand.waiting.pop(user, None)
        else:
            demand.waiting[user] = now
        if last is not None and now - last < LAUNCH_DEDUP_SECONDS:
            return False
        demand.launches += 1
        if not served:
            demand.unserved += 1
        return True

    def dry_run(self, namespace: str, decision: AccessDecision) -> list[str]:
        """Count the request for each dry-run policy covering the app; the names of those
        whose enforcement would have changed it."""
        changed = []
        would = decision.dry_run_would_change and decision.dry_run is not None
        deciders = set(decision.dry_run.decided_by) if decision.dry_run else set()
        for match in decision.matches:
            if match.enforced:
                continue
            count = self.policies[(namespace, match.policy)]
            count.evaluated += 1
            if would and match.applies and match.policy in deciders:
                count.would_change += 1
                changed.append(match.policy)
        return changed

    def snapshot(self, now: float) -> dict[str, Any]:
        pools = {}
        for (namespace, pool), demand in sorted(self.pools.items()):
            for user in [u for u, t in demand.waiting.items() if now - t > WAITING_SECONDS]:
                del demand.waiting[user]
            pools[f"{namespace}/{pool}"] = {"launches": demand.launches,
                                            "unserved": demand.unserved,
                                            "waiting": len(demand.waiting)}
        return {
            "version": 1,
            "replica": self.replica,
            "startedAt": self.started_at.isoformat(),
            "pools": pools,
            "policies": {f"{ns}/{name}": {"evaluated": c.evaluated,
                                          "wouldChange": c.would_change}
                         for (ns, name), c in sorted(self.policies.items())},
        }
