"""`deskfleet simulate` as a capacity-planning tool: replaying a logon history (refused
whole, row by row, when any row is bad), a pool manifest, several seeds and scenarios,
and a clear word instead of a traceback when matplotlib is missing."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deskfleet.simulation import add_arguments, run_cli
from deskfleet.simulation.history import HistoryError, history_workload, parse_history

GOOD = """start,end,duration_minutes,disconnect_minutes,app,user
2026-11-24T07:55:00+00:00,,45,,epr,alice
2026-11-24T08:00:00Z,2026-11-24T10:30:00Z,,20,,bob

2026-11-24T08:01:00+00:00,,30.5,0,pacs,
"""


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_a_history_is_read_with_its_optional_columns() -> None:
    sessions = parse_history(GOOD)
    assert [s.duration for s in sessions] == [timedelta(minutes=45), timedelta(hours=2.5),
                                              timedelta(minutes=30.5)]
    assert sessions[1].disconnected == timedelta(minutes=20)
    assert (sessions[0].app, sessions[0].user, sessions[2].user) == ("epr", "alice", None)
    w = history_workload(sessions)
    assert (w.day_start, w.day_end) == (datetime(2026, 11, 24, tzinfo=UTC),
                                        datetime(2026, 11, 25, tzinfo=UTC))


def test_every_bad_row_is_named_and_nothing_is_returned() -> None:
    text = ("start,end,duration_minutes,disconnect_minutes\n"
            "2026-11-24T08:00:00Z,,30,\n"          # row 2: fine
            "2026-11-24T08:00:00,,30,\n"           # row 3: no offset
            "2026-11-24T09:00:00Z,2026-11-24T08:00:00Z,,\n"  # row 4: ends before it starts
            "2026-11-24T09:00:00Z,2026-11-24T10:00:00Z,60,\n"  # row 5: both
            "2026-11-24T09:00:00Z,,,\n"            # row 6: neither
            "2026-11-24T09:00:00Z,,10,11\n"        # row 7: disconnected longer than it lasted
            "2026-11-24T09:00:00Z,,ten,\n"         # row 8: not a number
            "2026-11-24T09:00:00Z,,20,,extra\n"    # row 9: a cell too many
            "2026-11-24T09:00:00Z,,99999,\n")      # row 10: a week and more
    with pytest.raises(HistoryError) as caught:
        parse_history(text, "h.csv")
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [f"row {n}" for n in range(3, 11)]
    assert "no UTC offset" in problems[0] and "exactly one" in problems[2]
    assert str(caught.value).startswith("h.csv: 8 problem(s), nothing simulated")


@pytest.mark.parametrize(("header", "why"), [
    ("", "no header"), ("begin,duration_minutes", "needs start"),
    ("start,duration_minutes,ward", r"unknown column\(s\) ward")])
def test_a_header_that_cannot_be_read_is_refused(header: str, why: str) -> None:
    with pytest.raises(HistoryError, match=why):
        parse_history(header + "\n")


def test_the_cli_refuses_a_bad_file_and_writes_nothing(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "h.csv"
    bad.write_text("start,duration_minutes\n2026-11-24T08:00:00Z,30\nyesterday,30\n")
    out = tmp_path / "out"
    assert run_cli(args("--logons", str(bad), "--out-dir", str(out))) == 2
    assert "row 3: start 'yesterday' is not an ISO 8601 time" in capsys.readouterr().err
    assert not out.exists()


def test_the_cli_refuses_a_pool_that_is_not_one(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text("kind: SessionHostPool\nspec:\n  image: x\n  scaling: {minHosts: -1}\n")
    assert run_cli(args("--pool", str(pool), "--out-dir", str(tmp_path))) == 2
    assert "spec.scaling.minHosts" in capsys.readouterr().err


def test_a_history_replays_against_a_pool_manifest(tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text(GOOD)
    pool = tmp_path / "pool.yaml"
    pool.write_text("apiVersion: deskfleet.io/v1alpha1\nkind: SessionHostPool\n"
                    "metadata: {name: p}\nspec:\n  image: x\n  sessionsPerHost: 2\n"
                    "  scaling: {minHosts: 0, maxHosts: 4}\n")
    out = tmp_path / "out"
    assert run_cli(args("--logons", str(history), "--pool", str(pool), "--out-dir",
                        str(out), "--force-logoff-after", "60m")) == 0
    page = (out / "simulation.md").read_text()
    assert f"`deskfleet simulate --logons {history} --pool {pool} --force-logoff-after 60m`" \
        in page
    assert "| deskfleet, forced logoff after 60 min |" in page
    assert "3 logons" in page and "Hosts of 2 slots" in page
    assert (out / "simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_simulate_names_the_extra_to_install(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    history = tmp_path / "h.csv"
    history.write_text(GOOD)
    assert run_cli(args("--logons", str(history), "--out-dir", str(tmp_path),
                        "--no-baselines")) == 0
    err = capsys.readouterr().err
    assert "pip install 'deskfleet[plot]'" in err and "Traceback" not in err
    assert "simulation.png" not in (tmp_path / "simulation.md").read_text()
    assert not (tmp_path / "simulation.png").exists()


def test_several_seeds_make_a_summary(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(args("--scenario", "night-shift", "--seeds", "1,2", "--staff", "300",
                        "--no-baselines", "--no-plot", "--out-dir", str(tmp_path))) == 0
    text = capsys.readouterr().out
    assert text.count("| night-shift |") == 2
    assert "checks over 2 runs" in text or "checks **missed**" in text
    assert (tmp_path / "simulation.md").read_text().startswith("# Simulated scenarios")


@pytest.mark.parametrize("bad", [["--seeds", "1,x"], ["--startup", "4 minutes"],
                                 ["--scenario", "strike-day"], ["--seed", "1", "--seeds", "2"],
                                 ["--scenario", "teleconsultation", "--logons", "h.csv"]])
def test_options_are_checked(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        args(*bad)


def test_options_have_their_defaults() -> None:
    a = args()
    assert (a.scenario, a.seed, a.placement, a.startup, a.report_lag) == (
        "current", 2026, "random", timedelta(minutes=4), timedelta(seconds=5))
    b = args("--startup-spread", "1m", "--placement", "least-loaded", "--seeds", "1,2,3,4")
    assert (b.startup_spread, b.placement, b.seeds) == (timedelta(minutes=1), "least-loaded",
                                                        [1, 2, 3, 4])
