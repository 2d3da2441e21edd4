"""`deskfleet simulate`: the hospital-day benchmark from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .report import table, write
from .run import DEFAULT_SEED, simulate
from .workload import DEFAULT_STAFF


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed of the simulated day (default {DEFAULT_SEED})")
    parser.add_argument("--staff", type=_positive, default=DEFAULT_STAFF,
                        help=f"staff of the trust; logon rates scale with it "
                        f"(default {DEFAULT_STAFF:,})")
    parser.add_argument("--out-dir", type=Path, default=Path("."),
                        help="where to write simulation.md and simulation.png "
                        "(default: the current directory)")


def run_cli(args: argparse.Namespace) -> int:
    result = simulate(seed=args.seed, staff=args.staff)
    page, picture = write(result, args.out_dir)
    sys.stdout.write(table(result) + "\n")
    sys.stdout.flush()
    print(f"wrote {page} and {picture}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deskfleet simulate",
        description="Simulate a hospital day and compare autoscaling policies.")
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))
