#!/usr/bin/env python3
"""Experiment behind docs/simulation.md's "Why deskfleet misses the 20% target".

Reruns the simulated hospital day with the deskfleet policy under other placements of
new sessions (which host a logon lands on), to see how much of the gap to the
clairvoyant bound placement can close. It swaps the simulator's placement rule in this
process only; the simulator itself (and `deskfleet simulate`) always spreads.

    .venv/bin/python benchmarks/placement_experiment.py
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from deskfleet.simulation import cluster as sim
from deskfleet.simulation.policies import DeskfleetPolicy
from deskfleet.simulation.pool import deskfleet_pool
from deskfleet.simulation.run import simulate

# Among the ready, serving hosts with a free slot, the one with the lowest key wins.
PLACEMENTS: dict[str, Callable[[sim.SimHost], tuple[float, ...]]] = {
    "spread (fewest sessions; the default)": lambda h: (len(h.sessions), h.created),
    "pack (most sessions)": lambda h: (-len(h.sessions), h.created),
    "newest host first": lambda h: (-h.created,),
    "oldest host first": lambda h: (h.created,),
    "host with the latest logon first": lambda h: (-getattr(h, "last_logon", -1.0),),
}


def placing_by(key: Callable[[sim.SimHost], tuple[float, ...]]) -> Callable[..., bool]:
    def place(self: sim.Cluster, session: int, arrival: float, length: float,
              now: float) -> bool:
        free = [h for h in self.hosts.values() if len(h.sessions) < self.per_host
                and h.ready_at <= now and h.draining_since is None]
        if not free:
            return False
        host = min(free, key=key)
        host.sessions.add(session)
        host.last_logon = now  # type: ignore[attr-defined]
        self._where[session] = (host.name, now + length)
        heapq.heappush(self._ends, (now + length, session))
        if now > arrival and self._measured(arrival):
            self.tally.waits.append(now - arrival)
        return True
    return place


def main() -> None:
    print("| placement | host-hours | vs clairvoyant | sessions cut | logons that waited |")
    print("|---|---:|---:|---:|---:|")
    original = sim.Cluster._place
    try:
        for name, key in PLACEMENTS.items():
            sim.Cluster._place = placing_by(key)  # type: ignore[method-assign]
            result = simulate(policies=[lambda: DeskfleetPolicy(deskfleet_pool())])
            p = result.policies[0]
            over = p.host_hours / result.clairvoyant_host_hours - 1
            print(f"| {name} | {p.host_hours:,.1f} | {over:+.1%} | {p.cut} | {p.waited} |")
    finally:
        sim.Cluster._place = original  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
