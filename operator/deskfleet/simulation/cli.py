"""`deskfleet simulate`: capacity planning from the command line.

Replay a hospital's own logon history (`--logons`) or built-in days (`--scenario`,
`--seeds`) against a pool manifest (`--pool`), and compare deskfleet with static peak
sizing, an HPA-style autoscaler and two clairvoyant references.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ..api.common import parse_duration
from ..api.sessionhostpool import SessionHostPoolSpec
from .history import HistoryError, load_history
from .plot import PlotUnavailable, plot
from .pool import STARTUP, PoolFileError, deskfleet_pool, load_pool
from .report import markdown, results_table, summary
from .run import DEFAULT_SEED, SimOptions, SimulationResult, default_policies, simulate
from .scenarios import DEFAULT_SCENARIO, SCENARIOS
from .workload import DEFAULT_STAFF, Workload


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a comma-separated list of integers: {text}") \
            from err
    if not seeds:
        raise argparse.ArgumentTypeError("at least one seed")
    return seeds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to simulate")
    source = what.add_mutually_exclusive_group()
    names = ", ".join(SCENARIOS)
    source.add_argument("--scenario", default=DEFAULT_SCENARIO,
                        choices=[*SCENARIOS, "all"], metavar="NAME",
                        help=f"a built-in day: {names}, or all (every day but patch-day, "
                        f"whose policies are rollouts; default {DEFAULT_SCENARIO})")
    source.add_argument("--logons", type=Path, metavar="CSV",
                        help="replay a logon history: one logon a row, columns start (ISO "
                        "8601 with offset), end or duration_minutes, and optionally "
                        "disconnect_minutes, app, user")
    what.add_argument("--pool", type=Path, metavar="YAML",
                      help="a SessionHostPool manifest to run (default: a generic pool "
                      "with no schedule phase, see docs/simulation.md)")
    seeds = what.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=DEFAULT_SEED,
                       help=f"random seed of the simulated day (default {DEFAULT_SEED})")
    seeds.add_argument("--seeds", type=_seeds, metavar="LIST",
                       help="several seeds, comma-separated, e.g. 1,2,3,4")
    what.add_argument("--staff", type=_positive, default=DEFAULT_STAFF,
                      help=f"staff of the trust; logon rates scale with it "
                      f"(default {DEFAULT_STAFF:,})")
    how = parser.add_argument_group("how the pool behaves")
    how.add_argument("--startup", type=_duration, default=STARTUP, metavar="DURATION",
                     help="host start-up, replica increase to Ready (default 4m)")
    how.add_argument("--startup-spread", type=_duration, default=timedelta(0),
                     metavar="DURATION",
                     help="each host's start-up varies uniformly by up to this (default 0s)")
    how.add_argument("--report-lag", type=_duration, default=timedelta(seconds=5),
                     metavar="DURATION",
                     help="from a change of a host's sessions to the operator seeing it "
                     "(default 5s)")
    how.add_argument("--placement", choices=["random", "least-loaded"], default="random",
                     help="which accepting host a logon lands on: random, as a Service "
                     "does (default), or the least loaded, as a least-connections gateway")
    how.add_argument("--force-logoff-after", type=_duration, metavar="DURATION",
                     help="also run the pool with forced logoff this long after the drain "
                     "notice, e.g. 60m")
    how.add_argument("--no-baselines", action="store_true",
                     help="run deskfleet only, not static sizing and the HPA-style baseline")
    out = parser.add_argument_group("output")
    out.add_argument("--out-dir", type=Path, default=Path("."),
                     help="where to write simulation.md and the PNG(s) (default: .)")
    out.add_argument("--no-plot", action="store_true", help="write no PNG")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, for the report."""
    parts = ["deskfleet", "simulate"]
    if args.logons:
        parts += ["--logons", str(args.logons)]
    elif args.scenario != DEFAULT_SCENARIO:
        parts += ["--scenario", args.scenario]
    if args.pool:
        parts += ["--pool", str(args.pool)]
    if args.seeds:
        parts += ["--seeds", ",".join(map(str, args.seeds))]
    elif args.seed != DEFAULT_SEED and not args.logons:
        parts += ["--seed", str(args.seed)]
    if args.staff != DEFAULT_STAFF:
        parts += ["--staff", str(args.staff)]
    for flag, value, default in (("--startup", args.startup, STARTUP),
                                 ("--startup-spread", args.startup_spread, timedelta(0)),
                                 ("--report-lag", args.report_lag, timedelta(seconds=5))):
        if value != default:
            parts += [flag, f"{int(value.total_seconds())}s"]
    if args.placement != "random":
        parts += ["--placement", args.placement]
    if args.force_logoff_after:
        parts += ["--force-logoff-after", f"{int(args.force_logoff_after.total_seconds() // 60)}m"]
    if args.no_baselines:
        parts.append("--no-baselines")
    return shlex.join(parts)


def _workloads(args: argparse.Namespace, spec: SessionHostPoolSpec) -> list[tuple[str, Workload]]:
    if args.logons:
        schedule = spec.scaling.schedule
        tz = ZoneInfo(schedule.time_zone) if schedule else None
        return [("history", load_history(args.logons, tz))]
    names = ([n for n, s in SCENARIOS.items() if not s.rollout] if args.scenario == "all"
             else [args.scenario])
    seeds = args.seeds or [args.seed]
    return [(name, SCENARIOS[name].build(seed, args.staff)) for name in names for seed in seeds]


def _draw(result: SimulationResult, path: Path) -> str | None:
    """Draw the PNG; its name, or None (and why, on stderr) if it cannot be drawn."""
    try:
        plot(result, path)
    except PlotUnavailable as err:
        print(f"note: {err}", file=sys.stderr)
        return None
    return path.name


def run_cli(args: argparse.Namespace) -> int:
    try:
        spec = load_pool(args.pool) if args.pool else deskfleet_pool()
        workloads = _workloads(args, spec)
    except (PoolFileError, HistoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = command_line(args)
    results = []
    for name, workload in workloads:
        # The day's seed also drives placement and start-up randomness: one day, one
        # set of figures, whichever command ran it.
        options = SimOptions(startup=args.startup, startup_spread=args.startup_spread,
                             report_lag=args.report_lag, placement=args.placement,
                             seed=args.seed if args.logons else workload.seed)
        policies = default_policies(workload, spec, args.force_logoff_after,
                                    baselines=not args.no_baselines)
        results.append(simulate(workload, spec, options, policies, scenario=name))
        print(f"simulated {name}" + ("" if args.logons else f", seed {workload.seed}"),
              file=sys.stderr)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    page = args.out_dir / "simulation.md"
    if len(results) == 1:
        result = results[0]
        picture = None if args.no_plot else _draw(result, args.out_dir / "simulation.png")
        page.write_text(markdown(result, command, picture))
        sys.stdout.write(results_table(result) + "\n")
    else:
        pictures = []
        for name in dict.fromkeys(r.scenario for r in results):  # each scenario's first seed
            first = next(r for r in results if r.scenario == name)
            drawn = None if args.no_plot else _draw(first, args.out_dir / f"simulation-{name}.png")
            if drawn:
                pictures.append(f"![{name}, seed {first.seed}]({drawn})")
        text = summary(results, command)
        page.write_text("# Simulated scenarios\n\n" + text + "\n" + "\n\n".join(pictures)
                        + ("\n" if pictures else ""))
        sys.stdout.write(text)
    sys.stdout.flush()
    print(f"wrote {page}", file=sys.stderr)
    return 0

