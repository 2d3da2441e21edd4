#!/usr/bin/env python3
"""The soak on the real test bed: for --minutes, operator SIGKILLs at random points of
rollouts, scale-ins, policy changes and deletions, API server and etcd restarts, and
hypothesis-generated specs through the API server over running objects; then the checks
(no orphans, no duplicates, no cut session, no running child torn down by an invalid
spec, bounded operator memory, no error loop). See tests/support/soak.py.

    .venv/bin/python benchmarks/soak.py --minutes 30 --dir /tmp/tb-soak

Uses the test bed in --dir (started if it does not run; left running), never
KUBECONFIG's cluster: it restarts the bed's API server and etcd. Prints its report as it
goes (`[soak] ...`), writes report.json and the operator's log to --workdir, and exits 1
if a check failed that is not a known, written-down failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import open_bed  # noqa: E402
from tests.support.soak import Soak, SoakConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="how long the chaos runs (set-up and checks come on top)")
    parser.add_argument("--dir", default=str(REPO / ".testbed"), help="the test bed's dir")
    parser.add_argument("--workdir", default="",
                        help="where the log, the hosts' files and report.json go")
    parser.add_argument("--kills", type=int, help="operator SIGKILLs (3.5 a minute)")
    parser.add_argument("--fuzz", type=int, help="fuzzed specs at least (35 a minute)")
    parser.add_argument("--apiserver-restarts", type=int, help="(one per 6 minutes)")
    parser.add_argument("--etcd-restarts", type=int, help="(one per 6 minutes)")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--kill-share", type=float, default=0.6,
                        help="share of the time with kills; one operator lives the rest")
    parser.add_argument("--no-session-rollouts", action="store_true",
                        help="roll out only pools whose hosts carry no sessions")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces")
    args = parser.parse_args()
    os.environ.pop("KUBECONFIG", None)  # the bed's own, never another cluster
    workdir = Path(args.workdir or f"/tmp/deskfleet-soak-{time.strftime('%Y%m%d-%H%M%S')}")
    config = SoakConfig(minutes=args.minutes, kills=args.kills, fuzz=args.fuzz,
                        apiserver_restarts=args.apiserver_restarts,
                        etcd_restarts=args.etcd_restarts, seed=args.seed,
                        kill_share=args.kill_share,
                        session_rollouts=not args.no_session_rollouts, keep=args.keep)
    bed = open_bed(Path(args.dir).resolve())
    report = Soak(bed, config, workdir).run()
    failed = report.failed()
    print(f"[soak] {'FAILED: ' + ', '.join(c.name for c in failed) if failed else 'passed'}"
          f" (report: {workdir / 'report.json'}, operator log: {workdir / 'operator.log'})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
