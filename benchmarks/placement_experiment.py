#!/usr/bin/env python3
"""Where a new session lands, and which signals the pool scales on: the placement and
signal tables of docs/autoscaling.md.

Runs the ordinary simulated weekday (seed 2026, no schedule phase) with deskfleet under
each of the pool's load-balancing modes (which hosts accept new sessions) and each
gateway placement (which accepting host a logon lands on), without and with forced
logoff after 60 minutes, beside the two clairvoyant references; then the same pool
without the demand signal, and counting TCP connections instead of the host's report.

    .venv/bin/python benchmarks/placement_experiment.py
"""

from __future__ import annotations

from datetime import timedelta

from deskfleet.api.sessionhostpool import SessionHostPoolSpec
from deskfleet.simulation.policies import DeskfleetPolicy
from deskfleet.simulation.pool import deskfleet_pool_dict, with_forced_logoff
from deskfleet.simulation.report import duration
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
    print()
    signals()


def signals() -> None:
    body = deskfleet_pool_dict()
    body["agent"]["sessionSource"] = "tcp"
    tcp = SessionHostPoolSpec.model_validate(body, by_alias=True)
    variants = [("the host's report, and the demand signal (the default)",
                 lambda: DeskfleetPolicy(pool("auto"))),
                ("the host's report, no demand signal",
                 lambda: DeskfleetPolicy(pool("auto"), use_demand=False)),
                ("the demand signal on gross launches (no sessions ending subtracted)",
                 lambda: DeskfleetPolicy(pool("auto"), net_rate=False)),
                ("TCP connections (disconnected sessions invisible)",
                 lambda: DeskfleetPolicy(tcp))]
    print("| day | deskfleet scaling on | host-hours | x bound | logons that waited | "
          "longest wait | sessions cut without notice |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for day, seed in (("current", DEFAULT_SEED), ("teleconsultation", 1)):
        workload = SCENARIOS[day].build(seed, 3000)
        for name, make in variants:
            result = simulate(workload, pool("auto"), SimOptions(seed=seed), [make])
            p = result.policies[0]
            print(f"| {day}, seed {seed} | {name} | {p.host_hours:,.1f} | "
                  f"{p.host_hours / result.clairvoyant_host_hours:.3f} | {p.waited:,} | "
                  f"{duration(p.wait_max) if p.waited else '-'} | {p.cut} |", flush=True)


if __name__ == "__main__":
    main()
