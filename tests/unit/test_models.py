"""The models offline: examples parse, and the bad-input catalogue is refused offline too
(the same field named) wherever the rule is not a CEL rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskfleet.api.common import parse_duration
from deskfleet.api.parse import InvalidSpec, parse
from deskfleet.manifests import load_paths

from ..bad_inputs import CASES, Case

REPO = Path(__file__).resolve().parents[2]


def test_every_example_parses() -> None:
    docs = [d for d in load_paths([REPO / "examples"]) if d["apiVersion"].startswith("deskfleet")]
    kinds = sorted(parse(d).kind for d in docs)
    assert kinds.count("SessionHostPool") == 3
    assert kinds.count("PublishedApp") == 12
    assert kinds.count("AccessPolicy") == 5


OFFLINE = [c for c in CASES if (not c.cel and c.where != "operator") or
           (c.where == "operator" and c.reason == "InvalidSpec")]


@pytest.mark.parametrize("case", OFFLINE, ids=lambda c: c.id)
def test_bad_input_is_refused_offline(case: Case) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse(case.with_name("bad", "default"))
    assert any(p.startswith(case.field) for p in err.value.problems), err.value.problems


def test_defaults_follow_the_protocol() -> None:
    body = {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
            "metadata": {"name": "p"}, "spec": {"image": "x", "protocol": "vnc"}}
    pool = parse(body)
    assert pool.spec.session_port == 5900
    assert pool.spec.scaling.min_hosts == 1 and pool.spec.scaling.drain.force_logoff is False


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("1h30m", 5400),
                                               ("8h", 28800)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "10", "1d", "10 m", "-5s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
