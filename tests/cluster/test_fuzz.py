"""Bad-input fuzzing through the real API server and a real operator.

Hypothesis mutates valid specs (a field set to a value of another type or out of range,
a field removed, an unknown field added) and applies them over running objects. Every
input must either be refused at admission with a message that names the field, or be
accepted and reported in the object's status; an accepted spec that only the operator
can judge invalid must not take down what was running. At the end the operator is alive,
logged no traceback (the `operator` fixture), and writes nothing in a quiet window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from ..conftest import Bed, Operator, example_docs
from ..support.fuzzing import OBJECTS, Fuzzer, cases, fuzz_one, without_agents
from ..support.metrics import samples

EXAMPLES_PER_KIND = 40


def operator_writes(bed: Bed) -> float:
    """The API server's count of the writes only the operator makes here: status patches
    of deskfleet objects, applies of their children, and Events."""
    count = 0.0
    for labels, value in samples(bed.metrics(), "apiserver_request_total"):
        verb, resource = labels.get("verb"), labels.get("resource", "")
        sub = labels.get("subresource", "")
        ours = ((verb == "PATCH" and sub == "status" and resource in
                 ("sessionhostpools", "publishedapps", "accesspolicies"))
                or (verb == "APPLY" and sub == "" and resource in (
                    "deployments", "services", "configmaps", "ingresses", "httproutes",
                    "networkpolicies", "poddisruptionbudgets"))
                or (verb == "POST" and resource == "events"))
        if ours:
            count += value
    return count


@pytest.fixture
def fuzzer(bed: Bed, namespace: str, operator: Operator) -> Iterator[Fuzzer]:
    f = Fuzzer(bed, namespace, without_agents(example_docs(namespace)))
    bed.apply([d for d in f.docs.values()])
    f.wait_ready(OBJECTS)
    yield f


PROFILE = settings(max_examples=EXAMPLES_PER_KIND, deadline=None, derandomize=True,
                   database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                         HealthCheck.too_slow])


def test_fuzzed_specs_are_refused_by_field_or_reported(
        fuzzer: Fuzzer, bed: Bed, namespace: str, operator: Operator,
        capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    for kind, name, guarded in cases(bed, namespace):
        fuzz_one(fuzzer, kind, name, guarded, PROFILE)()

    # Everything back to valid: it all returns to Ready, and then the operator is quiet.
    fuzzer.restore()
    fuzzer.wait_ready(OBJECTS)
    time.sleep(3)  # let the last passes (and their Events) land
    before = operator_writes(bed)
    time.sleep(5)
    quiet = operator_writes(bed) - before
    assert operator.proc and operator.proc.poll() is None, "the operator exited"
    t = fuzzer.tally
    with capsys.disabled():
        print(f"\n[fuzz] inputs: {t.tried}, rejected at admission: {t.rejected}, accepted and "
              f"Ready: {t.accepted_ready}, accepted and reported not Ready: "
              f"{t.accepted_not_ready} ({t.judged_invalid} judged invalid by the operator; "
              f"reasons {t.reasons}), children checked intact: {t.checked}, operator writes "
              f"in the 5 s quiet window: {quiet:.0f}, {time.monotonic() - started:.0f}s")
    assert t.tried >= EXAMPLES_PER_KIND * 2
    assert t.rejected and t.accepted_ready + t.accepted_not_ready
    assert quiet == 0, f"{quiet} operator writes after everything settled"
