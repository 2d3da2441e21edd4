"""Bad-input fuzzing through the real API server over running objects, shared by
tests/cluster/test_fuzz.py and the soak (tests/support/soak.py).

Hypothesis mutates valid specs (a field set to a value of another type or out of range,
a field removed, an unknown field added, values only the operator can judge). Every
input must either be refused at admission with a message that names the field, or be
accepted and reported in the object's status; an accepted spec that only the operator
can judge invalid must not take down what was running (`TornDown`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from deskfleet.api.kinds import BY_KIND as API_KINDS
from deskfleet.kube.client import Kube, KubeError, load_api_client

from .process import wait_until
from .revisions import current_deployment

VALUES = st.one_of(
    st.integers(min_value=-10**6, max_value=10**7),
    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=24), st.booleans(),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.just({}), st.just({"x": 1}), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "Mars/Olympus", "2026-02-30", "25:61", "10.0.0.0/33", "-5m",
                     "forever", "ZZ", "UTC", "0.0.0.0/0", "rdp", "vnc", "1h30m"]),
)
# The example hospital's objects fuzzed (tests/conftest.py example_docs).
POOL, APP, POLICY = "clinical-desktop", "desktop", "clinicians-home-mfa"
OBJECTS = [("SessionHostPool", POOL), ("PublishedApp", APP), ("AccessPolicy", POLICY)]
# Reasons with which the operator reports a spec it cannot act on, or a poolRef that
# stopped resolving (docs/design.md, "Routes"): what ran before stays.
KEEPS_WHAT_RUNS = ("InvalidSpec", "PoolNotFound", "PoolInOtherNamespace")


def leaf_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in leaf_paths(v, (*prefix, k))] or [prefix]
    if isinstance(obj, list) and obj:
        return [p for i, v in enumerate(obj) for p in leaf_paths(v, (*prefix, i))]
    return [prefix]


@dataclass(frozen=True)
class Mutation:
    path: tuple[Any, ...]
    action: str  # "set", "remove" or "unknown"
    value: Any = None

    def apply(self, spec: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(spec)
        parent = out
        for part in self.path[:-1]:
            parent = parent[part]
        last = self.path[-1]
        if self.action == "remove":
            del parent[last]
        elif self.action == "unknown":
            target = parent[last] if isinstance(parent[last], dict) else parent
            target["notAField"] = self.value
        else:
            parent[last] = self.value
        return out

    def names(self) -> set[str]:
        """Field names the refusal may cite (the field, its parents, or a new key)."""
        parts = {str(p) for p in self.path if isinstance(p, str)}
        return parts | ({"notAField"} if self.action == "unknown" else set())


def mutations(spec: dict[str, Any]) -> st.SearchStrategy[list[Mutation]]:
    paths = [p for p in leaf_paths(spec) if p]
    one = st.one_of(
        st.builds(Mutation, st.sampled_from(paths), st.just("set"), VALUES),
        st.builds(Mutation, st.sampled_from(paths), st.just("remove")),
        st.builds(Mutation, st.sampled_from(paths), st.just("unknown"), VALUES),
    )
    # What only the operator can judge (admission cannot), where the spec has the field.
    judged = [Mutation(path, "set", value) for path, value in (
        (("scaling", "schedule", "timeZone"), "Mars/Olympus"),
        (("scaling", "schedule", "holidays"), ["2026-02-30"]),
        (("poolRef", "name"), "no-such-pool"),
    ) if path in paths]
    if judged:
        one = st.one_of(one, st.sampled_from(judged))
    return st.lists(one, min_size=1, max_size=2)


@dataclass
class Tally:
    tried: int = 0
    rejected: int = 0
    accepted_ready: int = 0
    accepted_not_ready: int = 0
    judged_invalid: int = 0
    checked: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class TornDown(AssertionError):
    """A running child was replaced or deleted after a spec the operator judged invalid."""


class Transient(Exception):
    """The API server could not answer (it or etcd is restarting): not a verdict on the
    input, which was not counted."""


def ready_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The Ready condition, once the status is for the object's current generation."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)


def _transient(err: KubeError) -> bool:
    return err.status == 0 or err.status in (429, 503, 504) or (
        err.status == 500 and ("etcdserver" in str(err) or "timeout" in str(err).lower()))


class Fuzzer:
    """Applies mutated specs of `docs` (running in `namespace`) and checks the outcome.
    `bed` is the tests' Bed (get by kind and name, its kubeconfig)."""

    def __init__(self, bed: Any, namespace: str, docs: list[dict[str, Any]],
                 status_timeout: float = 20) -> None:
        self.bed, self.namespace = bed, namespace
        self.kube = Kube(load_api_client(bed.kubeconfig), field_manager="test")
        self.docs = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        self.status_timeout = status_timeout
        self.tally = Tally()

    def base(self, kind: str, name: str) -> dict[str, Any]:
        return self.docs[(kind, name)]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = self.bed.get(kind, name, self.namespace)
        assert found, f"{kind} {name} is gone"
        return found

    def try_spec(self, kind: str, name: str, spec: dict[str, Any], names: set[str],
                 guarded: list[tuple[str, str]]) -> None:
        """Apply a spec over the running object and check what became of it."""
        base = self.base(kind, name)
        # (A valid edit may close a route on purpose, e.g. a policy that now allows no
        # one: only what exists before an edit the operator finds invalid is guarded.)
        before = {g: (self.bed.get(*g, self.namespace) or {}).get("metadata", {}).get("uid")
                  for g in guarded}
        try:
            self.kube.apply({**base, "spec": spec}, rtype=API_KINDS[kind].resource)
        except KubeError as err:
            if _transient(err):
                raise Transient(str(err)) from err
            self.tally.tried += 1
            # A value of the wrong type never reaches validation under server-side apply:
            # the API server answers 500 "failed to create typed patch object" (an
            # upstream quirk), still naming the field.
            assert err.status in (400, 422) or (
                err.status == 500 and "failed to create typed patch object" in str(err)), (
                f"{err.status}: {err}")
            message = str(err)
            assert "spec" in message and any(re.search(rf"\b{re.escape(n)}\b", message)
                                              for n in names), (
                f"refusal does not name the field ({sorted(names)}): {message}")
            self.tally.rejected += 1
            return
        self.tally.tried += 1
        ready = wait_until(lambda: ready_condition(self.get(kind, name)),
                           timeout=self.status_timeout,
                           what=f"{kind} {name} status for the accepted spec {spec}")
        reason = ready.get("reason", "")
        self.tally.reasons[reason] = self.tally.reasons.get(reason, 0) + 1
        if ready["status"] == "True":
            self.tally.accepted_ready += 1
            return
        self.tally.accepted_not_ready += 1
        if reason in KEEPS_WHAT_RUNS:
            self.tally.judged_invalid += 1
            assert "spec." in ready.get("message", ""), ready
            for (child_kind, child), uid in before.items():
                if uid is None:
                    continue
                self.tally.checked += 1
                now = self.bed.get(child_kind, child, self.namespace)
                if now is None or now["metadata"]["uid"] != uid:
                    raise TornDown(f"{child_kind}/{child} was "
                                   f"{'deleted' if now is None else 'replaced'} after an "
                                   f"invalid {kind} spec ({reason}: {ready.get('message')}): "
                                   f"{spec}")

    def wait_ready(self, objects: list[tuple[str, str]], timeout: float = 60) -> None:
        for kind, name in objects:
            try:
                wait_until(lambda k=kind, n=name: (r := ready_condition(self.get(k, n)))
                           and r["status"] == "True", timeout=timeout,
                           what=f"{kind} {name} Ready")
            except AssertionError as err:
                raise AssertionError(f"{err}: {self.get(kind, name).get('status')}") from None

    def restore(self) -> None:
        for (kind, _), doc in self.docs.items():
            if kind in ("SessionHostPool", "PublishedApp", "AccessPolicy"):
                self.kube.apply(doc, rtype=API_KINDS[kind].resource)


Attempt = Callable[[Callable[[], None]], None]


def fuzz_one(fuzzer: Fuzzer, kind: str, name: str, guarded: list[tuple[str, str]],
             profile: Callable[[Any], Any], attempt: Attempt | None = None) -> Any:
    """A hypothesis test (call it to run) that tries mutated specs of one object, with
    `profile` (hypothesis settings). `attempt`, if given, is handed each try to run."""
    spec = fuzzer.base(kind, name)["spec"]

    @profile
    @given(mutations(spec))
    def check(muts: list[Mutation]) -> None:
        mutated = spec
        for m in muts:
            try:
                mutated = m.apply(mutated)
            except (KeyError, IndexError, TypeError):
                return  # an earlier mutation removed or replaced this path
        names = set().union(*(m.names() for m in muts))

        def one() -> None:
            fuzzer.try_spec(kind, name, mutated, names, guarded)

        if attempt is None:
            one()
        else:
            attempt(one)

    return check


def without_agents(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hosts on kwok run no agents: hold the pools at their floor rather than let silent
    hosts count as full after signalMaxAge (which would scale them during a quiet check)."""
    for doc in docs:
        if doc["kind"] == "SessionHostPool":
            doc["spec"]["agent"] = {"enabled": False}
    return docs


def cases(bed: Any, namespace: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """What is fuzzed in the example hospital, and the running children each object's
    invalid specs must leave alone."""
    routes = [("ingress", APP)] if bed.get("ingress", APP, namespace) else [("httproute", APP)]
    hosts = current_deployment(bed, namespace, POOL)  # `<pool>-<revision>`
    assert hosts is not None, f"no Deployment of {POOL}"
    return [("SessionHostPool", POOL, [("deployment", hosts["metadata"]["name"]),
                                       ("service", POOL)]),
            ("PublishedApp", APP, routes),
            ("AccessPolicy", POLICY, routes)]
