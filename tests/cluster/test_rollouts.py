"""Session-preserving image rollouts on the test bed (issue 16), with real parts: the
operator, and one real `deskfleet agent` per host reading the host's own report and
delivering the notice and the logoff request as files (tests/support/session_host.py).

A logon goes where the gateway would send it: to a host in the pool Service's endpoints
(its EndpointSlices, which follow the `deskfleet.io/accepting` label). A watcher lists
the hosts every few hundred milliseconds and counts a *cut* whenever a host disappears
(or starts terminating) while its host still reports sessions that were never asked to
log off — the thing a rollout must never do.

What it shows: a pool with sessions on every host rolls to a new image with no session
cut, every new logon on a new-revision host, and the rollout complete when the last old
session ends; a storm the new hosts cannot take yet served by a warm old host until
they are up; with a deadline shorter than the sessions, the notice, then the logoff,
then the host goes; urgent mode within notice + logoff time; and a rollback, a second
image change and operator SIGKILLs mid-rollout, each converging with no orphaned or
duplicate Deployments, ReplicaSets or hosts and no cut session. Each prints its figures.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deskfleet.clock import parse_time

from ..conftest import Bed, Operator, wait_until
from ..support.faults import assert_clean
from ..support.revisions import host_deployments
from ..support.session_host import SessionHosts, session_hosts

POOL = "desk"
IMAGE = "registry.example/desktop:{}"
UPDATE_MESSAGE = "Ward 7 desktops are being patched. Save your work; log on again for the update."
REVISION = "deskfleet.io/revision"


def pool_manifest(namespace: str, update: dict[str, Any] | None = None,
                  **scaling: Any) -> dict[str, Any]:
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
            "metadata": {"name": POOL, "namespace": namespace},
            "spec": {"image": IMAGE.format(1), "protocol": "rdp", "sessionsPerHost": 2,
                     "agent": {"sessionSource": "host"},
                     "update": {"message": UPDATE_MESSAGE, **(update or {})},
                     "scaling": {"minHosts": 3, "maxHosts": 10, "bufferSessions": 1,
                                 "scaleInDelay": "2s", **scaling}}}


def now() -> float:
    return datetime.now(UTC).timestamp()


def at(text: str | None) -> float:
    moment = parse_time(text)
    assert moment is not None, text
    return moment.timestamp()


@dataclass
class Seen:
    """One host as the watcher saw it."""

    revision: str
    uid: str
    first: float
    gone: float | None = None
    cut: int = 0  # sessions it still held, never asked to log off, when it went
    logged_off: bool = False  # it had been asked to log its users off


@dataclass
class Fleet:
    """The pool's hosts on the bed, their session hosts and agents, and a watcher."""

    bed: Bed
    namespace: str
    hosts: SessionHosts
    seen: dict[str, Seen] = field(default_factory=dict)
    sessions: dict[str, list[str]] = field(default_factory=dict)  # pod -> states
    stubborn: set[str] = field(default_factory=set)  # pods whose host ignores a logoff
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pods(self) -> dict[str, dict[str, Any]]:
        return {p["metadata"]["name"]: p for p in
                self.bed.list("pods", self.namespace, f"deskfleet.io/pool={POOL}")}

    def watch(self) -> None:
        while not self.stop.wait(0.3):
            try:
                self.look()
            except AssertionError:
                continue  # kubectl hiccup: look again

    def look(self) -> None:
        pods = self.pods()
        moment = now()
        with self.lock:
            for name, pod in pods.items():
                meta = pod["metadata"]
                if name not in self.seen:
                    self.seen[name] = Seen(meta["labels"].get(REVISION, ""), meta["uid"],
                                           moment)
                if name not in self.hosts.hosts and not meta.get("deletionTimestamp"):
                    # A new host: its session host and agent start with no session.
                    self.hosts.add(name, cooperative=name not in self.stubborn)
                    self.sessions[name] = []
            for name, record in self.seen.items():
                pod = pods.get(name)
                going = pod is None or bool(pod["metadata"].get("deletionTimestamp"))
                if going and record.gone is None:
                    record.gone = moment
                    host = self.hosts.hosts.get(name)
                    view = host.view() if host else {}
                    record.logged_off = "logoff.json" in view
                    left = len(host.sessions) if host else 0
                    if left and not record.logged_off:
                        record.cut = left

    # --- what users do -------------------------------------------------------------------
    def set(self, pod: str, *states: str) -> None:
        with self.lock:
            self.sessions[pod] = list(states)
            self.hosts.hosts[pod].set_sessions(*states)

    def end_one(self, pod: str) -> None:
        with self.lock:
            states = self.sessions[pod][1:]
        self.set(pod, *states)

    def endpoints(self) -> set[str]:
        names = set()
        for eps in self.bed.list("endpointslices", self.namespace,
                                 f"kubernetes.io/service-name={POOL}"):
            for ep in eps.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready", True):
                    names.add(ep.get("targetRef", {}).get("name"))
        return names - {None}

    def logon(self, revision: str | None = None) -> str:
        """A new session where the gateway would send it: a host of the Service with a
        free slot (the operator takes full hosts out of it). With `revision`, the user
        arrives once the Service holds only that revision's hosts: logons at the pace the
        pool's buffer refills, not a storm (in a storm the current revision cannot take
        yet, warm outdated hosts serve again: test_a_storm_mid_rollout_...)."""
        def pick() -> str | None:
            hosts = sorted(self.endpoints())
            if revision and any(self.revision_of(p) != revision for p in hosts):
                return None
            free = [p for p in hosts if p in self.sessions and len(self.sessions[p]) < 2]
            return free[0] if free else None
        pod: str = wait_until(pick, timeout=30, what="a host in the Service with a free slot")
        self.set(pod, *self.sessions[pod], "active")
        return pod

    # --- what the cluster shows ----------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return dict((self.bed.get("shp", POOL, self.namespace) or {}).get("status") or {})

    def serving(self, revision: str) -> set[str]:
        """The hosts in the Service if all of them are of `revision` and have their session
        host started by the watcher (the Service can list a pod before the watcher sees
        it), else none."""
        hosts = self.endpoints()
        with self.lock:
            known = all(p in self.hosts.hosts and self.seen[p].revision == revision
                        for p in hosts)
        return hosts if known else set()

    def serving_only(self, revision: str) -> bool:
        """Whether the Service holds hosts, all of them of `revision`."""
        return bool(self.serving(revision))

    def revision_of(self, pod: str) -> str | None:
        """None for a pod the watcher has not seen yet (the Service can list it first)."""
        with self.lock:
            seen = self.seen.get(pod)
        return seen.revision if seen else None

    def live(self, revision: str | None = None) -> list[str]:
        with self.lock:
            return sorted(n for n, s in self.seen.items() if s.gone is None
                          and (revision is None or s.revision == revision))

    def cuts(self) -> int:
        with self.lock:
            return sum(s.cut for s in self.seen.values())

    def annotations(self, pod: str) -> dict[str, str]:
        return ((self.bed.get("pod", pod, self.namespace) or {}).get("metadata") or {}).get(
            "annotations") or {}

    def events(self) -> list[str]:
        return [e["reason"] for e in self.bed.list("events", self.namespace)
                if e["involvedObject"].get("name") == POOL
                and e.get("source", {}).get("component") == "deskfleet"]

    def set_image(self, version: int | str, **update: Any) -> float:
        patch: dict[str, Any] = {"image": IMAGE.format(version)}
        if update:
            patch["update"] = update
        self.bed.kubectl("patch", "shp", POOL, "-n", self.namespace, "--type=merge",
                         "-p", json.dumps({"spec": patch}))
        return time.monotonic()

    def wait_revision(self, old: str) -> str:
        """The new current revision, once its first host is Ready."""
        def new() -> str | None:
            revision = self.status().get("revision")
            return revision if revision and revision != old else None
        revision: str = wait_until(new, timeout=30, what="a new revision in status")
        return revision

    def wait_hosts(self, count: int, revision: str | None = None) -> list[str]:
        def ready() -> list[str] | None:
            pods = self.pods()
            names = [n for n, p in pods.items()
                     if not p["metadata"].get("deletionTimestamp")
                     and (revision is None or p["metadata"]["labels"].get(REVISION) == revision)
                     and any(c["type"] == "Ready" and c["status"] == "True"
                             for c in p["status"].get("conditions", []))
                     and n in self.hosts.hosts]
            return sorted(names) if len(names) >= count else None
        found: list[str] = wait_until(ready, timeout=60, what=f"{count} ready hosts")
        return found


@pytest.fixture
def fleet(bed: Bed, namespace: str, tmp_path: Path) -> Iterator[Fleet]:
    with session_hosts(bed.env, bed.kubeconfig, namespace, tmp_path / "hosts") as hosts:
        f = Fleet(bed, namespace, hosts)
        thread = threading.Thread(target=f.watch, daemon=True)
        thread.start()
        try:
            yield f
        finally:
            f.stop.set()
            thread.join(timeout=5)


def start_full_pool(f: Fleet, bed: Bed, namespace: str, update: dict[str, Any] | None = None,
                    **scaling: Any) -> tuple[str, list[str]]:
    """Four hosts of revision 1, every one with sessions (2, 2, 2 and 1 of 2 slots)."""
    bed.apply([pool_manifest(namespace, update, **scaling)])
    first = f.wait_hosts(3)
    for pod in first:
        f.set(pod, "active", "disconnected")  # a disconnected session is a session
    fourth = wait_until(lambda: [p for p in f.wait_hosts(4) if p not in first],
                        timeout=60, what="the pool growing for its buffer")[0]
    f.set(fourth, "active")
    wait_until(lambda: f.status().get("sessions") == 7 and f.status().get("revision"),
               what="7 sessions reported")
    time.sleep(2)  # steady: no scale-out pending
    revision = f.status()["revision"]
    old = f.live(revision)
    assert len(old) == 4 and all(f.sessions[p] for p in old), old
    return revision, old


def assert_converged(f: Fleet, bed: Bed, namespace: str, revision: str) -> int:
    """One Deployment (the revision's), as many hosts as it asks for, each with a live
    ReplicaSet, no orphan: returns the objects the audit checked."""
    wait_until(lambda: [d["metadata"]["labels"].get(REVISION)
                        for d in host_deployments(bed, namespace, POOL)] == [revision],
               timeout=60, what=f"only revision {revision}'s Deployment")
    checked = assert_clean(bed, namespace, timeout=60, rollouts=True)
    assert all(f.seen[p].revision == revision for p in f.live()), f.live()
    return checked


def test_a_pool_with_sessions_on_every_host_rolls_without_cutting_one(
        bed: Bed, namespace: str, operator: Operator, fleet: Fleet) -> None:
    f = fleet
    r1, old = start_full_pool(f, bed, namespace)
    changed = f.set_image(2)
    r2 = f.wait_revision(r1)
    new = f.wait_hosts(1, r2)
    new_ready = time.monotonic() - changed
    # Old hosts stop taking logons and drain (the update's notice, no deadline), once a
    # new host can take them; the Service then holds only new hosts.
    wait_until(lambda: f.serving_only(r2),
               timeout=30, what="only new-revision hosts in the Service")
    switched = time.monotonic() - changed
    for pod in old:
        view = wait_until(lambda p=pod: f.hosts.hosts[p].view().get("notice.json"),
                          what=f"the update's notice in {pod}'s sessions")
        assert view["message"] == UPDATE_MESSAGE and view["deadline"] is None
    status = f.status()
    assert status["outdatedHosts"] == 4 and status["rollout"]["outdatedRevisions"] == [r1]
    moving = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (moving["status"], moving["reason"]) == ("True", "RollingOut")
    out = bed.kubectl("get", "shp", POOL, "-n", namespace).stdout
    assert "UPDATED" in out and f"{status['updatedHosts']}/" in out

    # Every new logon lands on a new-revision host.
    landed = [f.logon(r2) for _ in range(5)]
    assert all(f.revision_of(p) == r2 for p in landed), landed
    # Old sessions end one by one; each old host goes only once it is empty.
    for pod in old:
        while f.sessions[pod]:
            time.sleep(1.5)
            assert pod in f.live(), f"{pod} went with sessions"
            f.end_one(pod)
        f.logon(r2)  # the user logs on again: a new host
    last_ended = time.monotonic()
    wait_until(lambda: f.status().get("outdatedHosts") == 0, timeout=60,
               what="no outdated host left")
    complete = time.monotonic() - last_ended
    checked = assert_converged(f, bed, namespace, r2)
    wait_until(lambda: "RolloutComplete" in f.events(), what="RolloutComplete")
    assert "RolloutStarted" in f.events()
    assert all(f.revision_of(p) == r2 for p in landed + [p for p in f.sessions
                                                         if f.sessions[p]])
    assert f.cuts() == 0
    print(f"\n[rollout] 4 hosts with 7 sessions (3 of them disconnected) -> new image: "
          f"first new host Ready {new_ready:.1f}s after the change, only new hosts in the "
          f"Service after {switched:.1f}s; {len(landed) + len(old)} new logons, all on "
          f"new-revision hosts; rollout complete {complete:.1f}s after the last old session "
          f"ended; sessions cut: {f.cuts()}; objects audited: {checked}")
    assert new


def test_a_storm_mid_rollout_puts_a_warm_old_host_back_until_new_ones_are_up(
        bed: Bed, namespace: str, operator: Operator, fleet: Fleet) -> None:
    """A logon never waits longer than without a rollout: a burst that fills the new
    revision's hosts while more are starting brings a warm old host (free slots, no
    deadline given) back into the Service; it drains again once the new hosts are up."""
    f = fleet
    r1, old = start_full_pool(f, bed, namespace)
    f.set_image("2-starts-in-8s")  # the new image's hosts boot for 8 s (hack/testbed.py)
    r2 = f.wait_revision(r1)
    serving = wait_until(lambda: f.serving(r2),
                         timeout=30, what="only new-revision hosts in the Service")
    burst = time.monotonic()
    for pod in sorted(serving):  # the burst: every free slot of revision 2 taken
        f.set(pod, "active", "active")
    back = wait_until(lambda: [p for p in f.endpoints() if f.revision_of(p) == r1],
                      timeout=30, interval=0.1, what="a warm old host back in the Service")
    served = time.monotonic() - burst
    assert set(back) <= set(old) and all(len(f.sessions[p]) < 2 for p in back), back
    for pod in back:
        wait_until(lambda p=pod: "notice.json" not in f.hosts.hosts[p].view(),
                   what=f"{pod}'s notice withdrawn while it serves")
    # Once a new host is up, the old ones leave the Service again.
    wait_until(lambda: f.serving_only(r2),
               timeout=60, what="the old host draining again once new hosts are up")
    again = time.monotonic() - burst
    for pod in old:  # the old sessions end; their hosts go
        f.set(pod)
    checked = assert_converged(f, bed, namespace, r2)
    assert f.cuts() == 0
    print(f"\n[rollout] a storm mid-rollout: revision 2's hosts full; an old host with a "
          f"free slot back in the Service {served:.1f}s after the burst, out again "
          f"{again:.1f}s after it (new hosts up); cut: {f.cuts()}; objects audited: "
          f"{checked}")


def test_a_deadline_shorter_than_the_sessions_gives_notice_then_logoff(
        bed: Bed, namespace: str, operator: Operator, fleet: Fleet) -> None:
    f = fleet
    r1, old = start_full_pool(f, bed, namespace, {"drainDeadline": "20s"},
                              drain={"logoffTimeout": "15s"})
    stubborn = old[0]
    f.hosts.hosts[stubborn].cooperative = False  # never manages to log its users off
    f.set_image(2)
    r2 = f.wait_revision(r1)
    told = {}
    for pod in old:
        ann = wait_until(lambda p=pod: (a := f.annotations(p)).get(
            "deskfleet.io/logoff-deadline") and a, what=f"{pod}'s deadline")
        assert at(ann["deskfleet.io/logoff-deadline"]) - at(
            ann["deskfleet.io/draining-since"]) == 20
        view = wait_until(lambda p=pod: f.hosts.hosts[p].view().get("notice.json"),
                          what=f"{pod}'s notice in the session")
        assert view["deadline"] == ann["deskfleet.io/logoff-deadline"]
        assert view["message"] == UPDATE_MESSAGE
        told[pod] = ann
    deadline = max(at(a["deskfleet.io/logoff-deadline"]) for a in told.values())
    while now() < deadline - 1:  # before the deadline: nobody asked to leave, nobody gone
        assert set(old) <= set(f.live()), "an old host went before the deadline"
        assert all("logoff.json" not in f.hosts.hosts[p].view() for p in old)
        time.sleep(0.5)
    asked = {}
    for pod in old:
        view = wait_until(lambda p=pod: (v := f.hosts.hosts[p].view()).get("logoff.json")
                          and v, timeout=20, what=f"{pod}'s logoff request")
        asked[pod] = at(view["logoff.json"]["requestedAt"])
        assert asked[pod] >= at(told[pod]["deskfleet.io/logoff-deadline"])
    wait_until(lambda: next((c for c in f.status().get("conditions", [])
                             if c["type"] == "Degraded" and c["reason"] ==
                             "RolloutPastDeadline"), None), what="Degraded RolloutPastDeadline")
    cooperative = [p for p in old if p != stubborn]
    wait_until(lambda: not set(cooperative) & set(f.live()), timeout=30,
               what="the cooperative old hosts gone")
    polite_gone = now()
    wait_until(lambda: stubborn not in f.live(), timeout=40, what="the stubborn host gone")
    stubborn_gone = now()
    assert stubborn_gone - asked[stubborn] >= 15 - 1
    checked = assert_converged(f, bed, namespace, r2)
    events = f.events()
    assert "RolloutDeadlinePassed" in events and "RolloutComplete" in events
    assert events.count("LogoffNotice") == 4
    assert f.cuts() == 0 and all(f.seen[p].logged_off for p in old)
    print(f"\n[rollout] drainDeadline 20s, logoffTimeout 15s, 4 old hosts with sessions: "
          f"notice with the deadline at the drain, logoff asked "
          f"{max(asked[p] - at(told[p]['deskfleet.io/logoff-deadline']) for p in old):.1f}s "
          f"after it at most; cooperative hosts gone {polite_gone - deadline:.1f}s after the "
          f"deadline, the stubborn one {stubborn_gone - asked[stubborn]:.1f}s after its "
          f"request; cut without notice: {f.cuts()}; objects audited: {checked}")


def test_urgent_mode_completes_within_notice_and_logoff_time(
        bed: Bed, namespace: str, operator: Operator, fleet: Fleet) -> None:
    f = fleet
    r1, old = start_full_pool(f, bed, namespace, drain={"logoffTimeout": "15s"})
    f.hosts.hosts[old[0]].cooperative = False
    changed = f.set_image(2, urgent=True, urgentDeadline="10s")
    r2 = f.wait_revision(r1)
    for pod in old:
        notice = wait_until(lambda p=pod: f.hosts.hosts[p].view().get("notice.json"),
                            what=f"{pod}'s urgent notice")
        assert notice["deadline"] is not None
    wait_until(lambda: f.status().get("outdatedHosts") == 0, timeout=60,
               what="the urgent rollout complete")
    took = time.monotonic() - changed
    checked = assert_converged(f, bed, namespace, r2)
    assert f.cuts() == 0
    # Notice 10 s + logoffTimeout 15 s, plus the switch to new hosts and removal passes.
    assert took <= 10 + 15 + 10, took
    print(f"\n[rollout] urgent (urgentDeadline 10s, logoffTimeout 15s, one host that never "
          f"logs off): complete {took:.1f}s after the image change (bound 10 + 15 s + the "
          f"new host's start and the passes); cut without notice: {f.cuts()}; objects "
          f"audited: {checked}")


def test_a_rollback_mid_rollout_serves_from_the_old_hosts_again(
        bed: Bed, namespace: str, operator: Operator, fleet: Fleet) -> None:
    f = fleet
    r1, old = start_full_pool(f, bed, namespace)
    uids = {p: f.seen[p].uid for p in old}
    f.set_image(2)
    r2 = f.wait_revision(r1)
    wait_until(lambda: all("deskfleet.io/draining-since" in f.annotations(p) for p in old),
               what="the old hosts draining")
    landed = f.logon(r2)  # a user on the new revision
    assert f.revision_of(landed) == r2
    rolled_back = f.set_image(1)
    wait_until(lambda: f.status().get("revision") == r1, what="revision 1 current again")
    # Revision 1's hosts serve again (their notice withdrawn), the same pods as before.
    wait_until(lambda: all("deskfleet.io/draining-since" not in f.annotations(p)
                           for p in old), timeout=30, what="the old hosts back in service")
    back = time.monotonic() - rolled_back
    for pod in old:
        wait_until(lambda p=pod: "notice.json" not in f.hosts.hosts[p].view(),
                   what=f"{pod}'s notice withdrawn")
        assert f.seen[pod].uid == uids[pod] and f.seen[pod].gone is None
    # The new revision drains; its user's session ends; then it is gone.
    wait_until(lambda: "deskfleet.io/draining-since" in f.annotations(landed),
               what="the new revision's host draining")
    f.set(landed)
    checked = assert_converged(f, bed, namespace, r1)
    gone = time.monotonic() - rolled_back
    assert f.cuts() == 0 and set(old) <= set(f.live())
    print(f"\n[rollout] rollback mid-rollout: the 4 old hosts (same pods) back in service "
          f"{back:.1f}s after the revert; revision 2 gone {gone:.1f}s after it, once its "
          f"one session ended; hosts now {len(f.live())}; cut: {f.cuts()}; objects audited: "
          f"{checked}")


def test_a_second_image_change_mid_rollout_keeps_what_users_were_told(
        bed: Bed, namespace: str, operator: Operator, fleet: Fleet) -> None:
    f = fleet
    r1, old = start_full_pool(f, bed, namespace, {"drainDeadline": "1h"})
    f.set_image(2)
    r2 = f.wait_revision(r1)
    told = {p: wait_until(lambda p=p: (a := f.annotations(p)).get(
        "deskfleet.io/logoff-deadline") and a, what=f"{p}'s deadline") for p in old}
    middle = f.logon(r2)
    assert f.revision_of(middle) == r2
    f.set_image(3)
    r3 = f.wait_revision(r2)
    wait_until(lambda: "deskfleet.io/draining-since" in f.annotations(middle),
               what="revision 2's hosts draining")
    third = f.logon(r3)
    assert f.revision_of(third) == r3
    for pod in old:  # the first drain's start and deadline stand
        ann = f.annotations(pod)
        assert ann["deskfleet.io/draining-since"] == told[pod]["deskfleet.io/draining-since"]
        assert ann["deskfleet.io/logoff-deadline"] == told[pod][
            "deskfleet.io/logoff-deadline"]
    status = f.status()
    assert set(status["rollout"]["outdatedRevisions"]) == {r1, r2}
    for pod in [*old, middle]:
        f.set(pod)
    checked = assert_converged(f, bed, namespace, r3)
    assert f.cuts() == 0
    print(f"\n[rollout] a second image change mid-rollout: revision 1's 4 hosts kept their "
          f"drain start and deadline, revision 2's host drained once revision 3 could take "
          f"logons; both gone when their sessions ended; {len(f.live())} hosts of revision "
          f"3; cut: {f.cuts()}; objects audited: {checked}")


def test_operator_killed_mid_rollout_converges_without_cutting_a_session(
        bed: Bed, namespace: str, operator: Operator, fleet: Fleet) -> None:
    f = fleet
    rng = random.Random(20261124)
    r1, old = start_full_pool(f, bed, namespace, {"drainDeadline": "25s"},
                              drain={"logoffTimeout": "15s"})
    f.set_image(2)
    kills, delays = 0, []
    told: dict[str, str] = {}
    until = time.monotonic() + 45
    while time.monotonic() < until:
        delays.append(round(rng.uniform(0.5, 4.0), 2))
        time.sleep(delays[-1])
        for pod in old:
            deadline = f.annotations(pod).get("deskfleet.io/logoff-deadline")
            if deadline and pod in f.live():
                assert told.setdefault(pod, deadline) == deadline, "a deadline moved"
        operator.stop(sig=signal.SIGKILL)
        kills += 1
        if rng.random() < 0.5:
            f.logon()  # a logon while no operator runs
        time.sleep(rng.uniform(0, 2))
        operator.start()
    r2 = f.wait_revision(r1)
    checked = assert_converged(f, bed, namespace, r2)
    assert f.cuts() == 0
    assert all(f.seen[p].gone is not None for p in old)
    assert len(f.live()) == len(set(f.live()))
    print(f"\n[rollout] operator SIGKILLed {kills} times during a rollout with a 25s "
          f"deadline (after {delays}s): deadlines unchanged ({len(told)} seen), the old "
          f"hosts logged off and gone, {len(f.live())} hosts of the new revision; cut: "
          f"{f.cuts()}; objects audited: {checked}")


def legacy_deployment(bed: Bed, namespace: str, replicas: int) -> dict[str, Any]:
    """The pool's Deployment as deskfleet created it before revisions: named after the
    pool, selecting every host of it, no revision label (a minimal pod: no agent)."""
    pool = bed.get("shp", POOL, namespace)
    assert pool is not None
    labels = {"app.kubernetes.io/managed-by": "deskfleet", "deskfleet.io/owner-kind":
              "sessionhostpool", "deskfleet.io/owner-name": POOL, "deskfleet.io/pool": POOL}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": POOL, "namespace": namespace, "labels": labels,
                         "ownerReferences": [{
                             "apiVersion": "deskfleet.io/v1alpha1",
                             "kind": "SessionHostPool", "name": POOL,
                             "uid": pool["metadata"]["uid"], "controller": True,
                             "blockOwnerDeletion": True}]},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"deskfleet.io/pool": POOL}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {**labels,
                                                          "deskfleet.io/accepting": "true"}},
                                  "spec": {"automountServiceAccountToken": False,
                                           "containers": [{"name": "session-host",
                                                           "image": IMAGE.format(0)}]}}}}


def test_an_upgrade_from_a_deployment_without_revisions_keeps_every_session(
        bed: Bed, namespace: str, operator: Operator, fleet: Fleet) -> None:
    f = fleet
    operator.stop()  # deskfleet before revision-aware pools ran this pool
    bed.apply([pool_manifest(namespace)])
    bed.kubectl("apply", "--server-side", "--field-manager=deskfleet", "-f", "-",
                stdin=json.dumps(legacy_deployment(bed, namespace, 3)))
    legacy = f.wait_hosts(3)
    for pod in legacy:
        f.set(pod, "active", "disconnected")
    operator.start()  # the upgrade
    upgraded = time.monotonic()
    revision = f.wait_revision("")
    wait_until(lambda: all("deskfleet.io/draining-since" in f.annotations(p) for p in legacy),
               timeout=30, what="the legacy hosts draining")
    switched = time.monotonic() - upgraded
    assert f.status()["rollout"]["outdatedRevisions"] == ["legacy"]
    landed = [f.logon() for _ in range(3)]
    assert all(f.revision_of(p) == revision for p in landed)
    for pod in legacy:
        f.set(pod)
    checked = assert_converged(f, bed, namespace, revision)
    assert bed.get("deployment", POOL, namespace) is None
    assert f.cuts() == 0
    print(f"\n[rollout] upgrade from a Deployment without revisions (3 hosts, 6 sessions): "
          f"the legacy hosts drained {switched:.1f}s after the new operator started, "
          f"new logons on revision {revision}; the legacy Deployment deleted once empty; "
          f"cut: {f.cuts()}; objects audited: {checked}")
