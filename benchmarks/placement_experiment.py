#!/usr/bin/env python3
"""Where a new session lands, and what it costs: the placement table of
docs/autoscaling.md.

Runs the ordinary simulated weekday (seed 2026, no schedule phase) with deskfleet under
each of the pool's load-balancing modes (which hosts accept new sessions) and each
gateway placement (which accepting host a logon lands on), without and with forced
logoff after 60 minutes, and prints them beside the two clairvoyant references.

    .venv/bin/python benchmarks/placement_experiment.py
"""

from __future__ import annotations

from datetime import timedelta

from deskfleet.api.sessionhostpool import SessionHostPoolSpec
from deskfleet.simulation.policies import DeskfleetPolicy
from deskfleet.simulation.pool import deskfleet_pool_dict, with_forced_logoff
from deskfleet.simulation.run import DEFAULT_SEED, SimOptions, simulate
from deskfleet.simulation.scenarios import SCENARIOS

MODES = ("breadthFirst", "depthFirst", "auto")
PLACEMENTS = ("random", "least-loaded")


def pool(mode: str) -> SessionHostPoolSpec:
    body = deskfleet_pool_dict()
    body["scaling"]["loadBalancing"] = mode
    return SessionHostPoolSpec.model_validate(body, by_alias=True)


def main() -> None:
    workload = SCENARIOS["current"].build(DEFAULT_SEED, 3000)
    print("| loadBalancing | gateway placement | host-hours | x bound | with forced logoff "
          "after 60 min | x bound | logons that waited | sessions cut |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    bound = no_migration = 0.0
    for mode in MODES:
        spec = pool(mode)
        forced = with_forced_logoff(spec, timedelta(minutes=60))
        for placement in PLACEMENTS:
            options = SimOptions(placement=placement, seed=DEFAULT_SEED)
            result = simulate(workload, spec, options,
                              [lambda s=spec: DeskfleetPolicy(s),
                               lambda s=forced: DeskfleetPolicy(s, "forced")])
            bound, no_migration = result.clairvoyant_host_hours, result.no_migration_host_hours
            plain, grace = result.policies
            print(f"| {mode} | {placement} | {plain.host_hours:,.1f} | "
                  f"{plain.host_hours / bound:.3f} | {grace.host_hours:,.1f} | "
                  f"{grace.host_hours / bound:.3f} | {plain.waited} / {grace.waited} | "
                  f"{plain.cut} / {grace.cut} |", flush=True)
    print(f"| clairvoyant placement without migration | | {no_migration:,.1f} | "
          f"{no_migration / bound:.3f} | | | | |")
    print(f"| clairvoyant lower bound | | {bound:,.1f} | 1.000 | | | | |")


if __name__ == "__main__":
    main()
