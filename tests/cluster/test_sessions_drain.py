"""Sessions, drains and forced logoff on the test bed, with real parts: the operator and
one real `deskfleet agent` per host reading the host's own report (`sessionSource:
host`) and delivering the operator's notice and logoff request as files, the harness
playing the host container and the kubelet's downward API (tests/support/session_host.py).

What it shows (issues 15 and 18): a host whose only session is disconnected is never
removed; a forced logoff delivers the message and deadline into the session
container's view and removes the host only after the deadline; an operator SIGKILL in
the middle of a drain loses no deadline; hosts whose agents never report keep the pool
at its floor and buffer, Degraded with AgentsSilent.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deskfleet.clock import parse_time

from ..conftest import Bed, Operator, wait_until
from ..support.session_host import SessionHosts, session_hosts

POOL = "desk"
MESSAGE = "Ward 7 desktops are being patched tonight. Please save your work."


def pool_manifest(namespace: str, **scaling: Any) -> dict[str, Any]:
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
            "metadata": {"name": POOL, "namespace": namespace},
            "spec": {"image": "registry.example/desktop:1", "protocol": "rdp",
                     "sessionsPerHost": 8, "agent": {"sessionSource": "host"},
                     "scaling": {"maxHosts": 6, "scaleInDelay": "2s", **scaling}}}


@pytest.fixture
def hosts(bed: Bed, namespace: str, tmp_path: Path) -> Iterator[SessionHosts]:
    with session_hosts(bed.env, bed.kubeconfig, namespace, tmp_path / "hosts") as h:
        yield h


def pods(bed: Bed, ns: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in bed.list("pods", ns, f"deskfleet.io/pool={POOL}")
            if not p["metadata"].get("deletionTimestamp")}


def ready_pods(bed: Bed, ns: str, count: int) -> list[str]:
    def ready() -> list[str] | None:
        live = pods(bed, ns)
        names = [n for n, p in live.items() if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", []))]
        return sorted(names) if len(names) == count == len(live) else None
    result: list[str] = wait_until(ready, timeout=60, what=f"{count} ready hosts")
    return result


def annotations(bed: Bed, ns: str, pod: str) -> dict[str, str]:
    return ((bed.get("pod", pod, ns) or {}).get("metadata") or {}).get("annotations") or {}


def status(bed: Bed, ns: str) -> dict[str, Any]:
    return dict((bed.get("shp", POOL, ns) or {}).get("status") or {})


def scale_down_to(bed: Bed, ns: str, **scaling: Any) -> None:
    bed.kubectl("patch", "shp", POOL, "-n", ns, "--type=merge",
                "-p", json.dumps({"spec": {"scaling": scaling}}))


def events(bed: Bed, ns: str) -> list[dict[str, Any]]:
    return [e for e in bed.list("events", ns)
            if e["involvedObject"].get("name") == POOL and e.get("source", {}).get(
                "component") == "deskfleet"]


def at(text: str | None) -> float:
    moment = parse_time(text)
    assert moment is not None, text
    return moment.timestamp()


def now() -> float:
    return datetime.now(UTC).timestamp()


def test_a_host_whose_only_session_is_disconnected_is_never_removed(
        bed: Bed, namespace: str, operator: Operator, hosts: SessionHosts) -> None:
    bed.apply([pool_manifest(namespace, minHosts=3, bufferSessions=1)])
    first, second, third = ready_pods(bed, namespace, 3)
    hosts.add(first, "disconnected")  # its user lost their Wi-Fi
    hosts.add(second, "active", "active")
    hosts.add(third, "active", "active")
    wait_until(lambda: status(bed, namespace).get("disconnectedSessions") == 1
               and status(bed, namespace).get("sessions") == 5, what="5 sessions reported")
    # 5 sessions + 1 free slot fit one host of 8 beside the floor: drain the emptiest.
    scale_down_to(bed, namespace, minHosts=0)
    wait_until(lambda: "deskfleet.io/draining-since" in annotations(bed, namespace, first),
               what="the disconnected user's host draining")
    drained = time.monotonic()
    wait_until(lambda: "notice.json" in hosts.hosts[first].view(), what="the notice delivered")
    notice = hosts.hosts[first].view()["notice.json"]
    assert notice["deadline"] is None and notice["message"]  # no forced logoff: no deadline
    # Well past the scale-in delay and the drain's grace, the host stays, protected.
    time.sleep(30)
    live = pods(bed, namespace)
    assert first in live, "a host holding a disconnected session was removed"
    assert live[first]["metadata"]["labels"]["deskfleet.io/busy"] == "true"
    assert live[first]["metadata"]["labels"]["deskfleet.io/accepting"] == "false"
    kept = time.monotonic() - drained
    # The session ends (the user logged off, or the host timed it out): then it goes.
    hosts.hosts[first].set_sessions()
    ended = time.monotonic()
    wait_until(lambda: first not in pods(bed, namespace), timeout=60,
               what="the host removed once empty")
    print(f"\n[sessions] host with only a disconnected session: kept {kept:.0f}s while "
          f"draining; removed {time.monotonic() - ended:.1f}s after its session ended")
    assert set(pods(bed, namespace)) == {second, third}


def test_a_forced_logoff_shows_notice_and_deadline_in_the_session_and_waits_for_it(
        bed: Bed, namespace: str, operator: Operator, hosts: SessionHosts) -> None:
    bed.apply([pool_manifest(namespace, minHosts=3, bufferSessions=1, drain={
        "forceLogoff": True, "maxWait": "20s", "message": MESSAGE, "logoffTimeout": "15s"})])
    polite, busy, stubborn = ready_pods(bed, namespace, 3)
    hosts.add(polite, "active")  # logs its user off when asked
    hosts.add(busy, "active", "active")
    hosts.add(stubborn, "active", cooperative=False)  # never manages to
    wait_until(lambda: status(bed, namespace).get("sessions") == 4, what="4 sessions")
    # 4 sessions + 1 free slot fit one host of 8: the two emptiest drain, with notice.
    scale_down_to(bed, namespace, minHosts=0)
    drained = {}
    for pod in (polite, stubborn):
        ann = wait_until(lambda p=pod: (a := annotations(bed, namespace, p)).get(
            "deskfleet.io/logoff-deadline") and a, what=f"{pod}'s deadline")
        drained[pod] = ann
        assert ann["deskfleet.io/drain-message"] == MESSAGE
        assert at(ann["deskfleet.io/logoff-deadline"]) - at(
            ann["deskfleet.io/draining-since"]) == 20
    assert "deskfleet.io/draining-since" not in annotations(bed, namespace, busy)

    # Inside the sessions: the message and the deadline, as the agent delivered them.
    for pod in (polite, stubborn):
        view = wait_until(lambda p=pod: (v := hosts.hosts[p].view()).get("notice.json") and v,
                          what=f"{pod}'s notice in the session")
        assert view["draining"] == "draining"
        assert view["notice.json"]["message"] == MESSAGE
        assert view["notice.json"]["deadline"] == drained[pod]["deskfleet.io/logoff-deadline"]
        assert "logoff.json" not in view
    deadline = max(at(drained[p]["deskfleet.io/logoff-deadline"]) for p in drained)

    # Until the deadline, nobody is asked to leave and no host goes.
    while now() < deadline - 1:
        assert {polite, stubborn} <= set(pods(bed, namespace))
        assert all("logoff.json" not in hosts.hosts[p].view() for p in drained)
        time.sleep(0.5)
    asked = {}
    for pod in (polite, stubborn):
        view = wait_until(lambda p=pod: (v := hosts.hosts[p].view()).get("logoff.json") and v,
                          timeout=20, what=f"{pod}'s logoff request in the session")
        asked[pod] = at(view["logoff.json"]["requestedAt"])
        assert asked[pod] >= at(drained[pod]["deskfleet.io/logoff-deadline"])
        assert view["logoff.json"]["message"] == MESSAGE
    wait_until(lambda: status(bed, namespace).get("loggingOffHosts", 0) >= 1,
               what="hosts logging off in status")

    # The polite host empties and goes; the stubborn one goes logoffTimeout later.
    wait_until(lambda: polite not in pods(bed, namespace), timeout=30, what="polite removed")
    polite_gone = now()
    assert stubborn in pods(bed, namespace)
    wait_until(lambda: stubborn not in pods(bed, namespace), timeout=60,
               what="stubborn host removed after logoffTimeout")
    stubborn_gone = now()
    assert stubborn_gone - asked[stubborn] >= 15 - 1  # whole seconds on the pod
    assert busy in pods(bed, namespace)
    reasons = [e["reason"] for e in events(bed, namespace)]
    assert reasons.count("LogoffNotice") == 2 and reasons.count("LogoffRequested") == 2
    assert reasons.count("HostRemovedAfterLogoffTimeout") == 1
    metrics = scrape(operator)
    assert f'deskfleet_pool_forced_removals_total{{namespace="{namespace}",pool="{POOL}"}} 1.0' \
        in metrics
    late = asked[polite] - at(drained[polite]["deskfleet.io/logoff-deadline"])
    print(f"\n[sessions] forced logoff, maxWait 20s, logoffTimeout 15s: logoff asked "
          f"{late:.0f}s after the deadline; the cooperative "
          f"host removed {polite_gone - asked[polite]:.1f}s after the request, the "
          f"stubborn one {stubborn_gone - asked[stubborn]:.1f}s after it")


def test_an_operator_killed_mid_drain_loses_no_deadline(
        bed: Bed, namespace: str, operator: Operator, hosts: SessionHosts) -> None:
    bed.apply([pool_manifest(namespace, minHosts=2, bufferSessions=1, drain={
        "forceLogoff": True, "maxWait": "15s", "message": MESSAGE, "logoffTimeout": "15s"})])
    leaving, staying = ready_pods(bed, namespace, 2)
    hosts.add(leaving, "active", cooperative=False)
    hosts.add(staying, "active", "active")
    wait_until(lambda: status(bed, namespace).get("sessions") == 3, what="3 sessions")
    scale_down_to(bed, namespace, minHosts=0)
    told = wait_until(lambda: (a := annotations(bed, namespace, leaving)).get(
        "deskfleet.io/logoff-deadline") and a, what="the deadline")
    deadline = told["deskfleet.io/logoff-deadline"]
    notice = wait_until(lambda: hosts.hosts[leaving].view().get("notice.json"),
                        what="the notice in the session")

    # Kill 1: a few seconds into the grace; down until the deadline has passed.
    time.sleep(2)
    operator.stop(sig=signal.SIGKILL)
    while now() < at(deadline) + 3:
        time.sleep(0.5)
    operator.start()
    restarted = now()
    asked = wait_until(lambda: annotations(bed, namespace, leaving).get(
        "deskfleet.io/logoff-requested-at"), timeout=30, what="the logoff request")
    after = annotations(bed, namespace, leaving)
    assert after["deskfleet.io/logoff-deadline"] == deadline
    assert after["deskfleet.io/draining-since"] == told["deskfleet.io/draining-since"]
    assert hosts.hosts[leaving].view()["notice.json"] == notice
    first_ask = now() - restarted

    # Kill 2: while the host is logging off; the request and its clock stand.
    operator.stop(sig=signal.SIGKILL)
    time.sleep(3)
    operator.start()
    time.sleep(3)
    again = annotations(bed, namespace, leaving)
    assert again["deskfleet.io/logoff-requested-at"] == asked
    assert again["deskfleet.io/logoff-deadline"] == deadline
    wait_until(lambda: leaving not in pods(bed, namespace), timeout=60,
               what="the host removed after logoffTimeout")
    gone = now()
    assert gone - at(asked) >= 15 - 1 and gone > at(deadline)
    assert staying in pods(bed, namespace)
    print(f"\n[sessions] operator SIGKILLed twice during a drain (maxWait 15s, "
          f"logoffTimeout 15s): deadline and request unchanged; logoff asked "
          f"{first_ask:.1f}s after the restart that followed the deadline; host removed "
          f"{gone - at(asked):.1f}s after the request")


def test_hosts_whose_agents_never_report_hold_the_floor_and_say_so(
        bed: Bed, namespace: str, operator: Operator, hosts: SessionHosts) -> None:
    bed.apply([pool_manifest(namespace, minHosts=2, bufferSessions=1, signalMaxAge="5s")])
    first, _ = ready_pods(bed, namespace, 2)
    degraded = wait_until(lambda: next(
        (c for c in status(bed, namespace).get("conditions", []) if c["type"] == "Degraded"
         and c["message"].startswith("2 ready host(s) never reported sessions")), None),
        timeout=30, what="Degraded for both hosts")
    assert (degraded["status"], degraded["reason"]) == ("True", "AgentsSilent")
    time.sleep(15)  # many passes: a silent host used to count as full, and call for more
    assert len(pods(bed, namespace)) == 2
    assert status(bed, namespace)["unknownHosts"] == 2
    metrics = scrape(operator)
    labels = f'{{namespace="{namespace}",pool="{POOL}"}}'
    # DeskfleetSessionSignalStale fires on this gauge after 10 minutes.
    assert f"deskfleet_pool_stale_hosts{labels} 2.0" in metrics
    assert f"deskfleet_pool_unknown_hosts{labels} 2.0" in metrics
    hosts.add(first)  # one agent starts reporting
    wait_until(lambda: status(bed, namespace).get("unknownHosts") == 1,
               what="one host still silent")


def scrape(operator: Operator) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics",
                                timeout=5) as response:
        return str(response.read().decode())
