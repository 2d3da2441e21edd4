#!/usr/bin/env python3
"""How long `deskfleet simulate` takes to replay a 10,000-logon history, on one core.

Writes a seeded history of consecutive ordinary weekdays of a 3,000-staff trust (the
first 10,000 logons, with their disconnected tails), then times the whole command —
process start, reading and checking the CSV, every policy and both clairvoyant
references, the Markdown — pinned to one CPU, a few times.

    .venv/bin/python benchmarks/simulate_replay.py [--logons 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from deskfleet.simulation.workload import WEEKDAY, Session, generate_day

FIRST_DAY = date(2026, 11, 23)  # a Monday


def history(logons: int) -> list[Session]:
    sessions: list[Session] = []
    day = FIRST_DAY
    while len(sessions) < logons:
        if day.weekday() < 5:
            w = generate_day(WEEKDAY, seed=day.toordinal(), day=day)
            sessions += [s for s in w.sessions if w.day_start <= s.arrival < w.day_end]
        day += timedelta(days=1)
    return sessions[:logons]


def write_csv(sessions: list[Session], path: Path) -> None:
    with path.open("w") as out:
        out.write("start,duration_minutes,disconnect_minutes\n")
        for s in sessions:
            out.write(f"{s.arrival.isoformat()},{s.duration.total_seconds() / 60:.2f},"
                      f"{s.disconnected.total_seconds() / 60:.2f}\n")


def one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logons", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    deskfleet = Path(sys.executable).with_name("deskfleet")
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "history.csv"
        sessions = history(args.logons)
        write_csv(sessions, csv)
        days = (sessions[-1].arrival - sessions[0].arrival).total_seconds() / 86400
        print(f"history: {len(sessions):,} logons over {days:.1f} days ({csv.stat().st_size:,} "
              f"bytes)")
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([str(deskfleet), "simulate", "--logons", str(csv), "--no-plot",
                            "--out-dir", tmp], check=True, preexec_fn=one_core,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            timings.append(time.perf_counter() - started)
        print((Path(tmp) / "simulation.md").read_text().split("\n\n")[2])
    print(f"replay of {len(sessions):,} logons on one core: min {min(timings):.1f} s, "
          f"median {statistics.median(timings):.1f} s, max {max(timings):.1f} s "
          f"({args.runs} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
