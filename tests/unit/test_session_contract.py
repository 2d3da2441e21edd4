"""The session contract (docs/session-contract.md): the host's report, the operator's
drain instructions read from the downward-API file, their delivery to the host, the
agent's loop around them, and the reference xrdp reporter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deskfleet.agent.annotations import (
    DISCONNECTED_ANNOTATION,
    DRAIN_MESSAGE_ANNOTATION,
    DRAINING_ANNOTATION,
    LOGOFF_DEADLINE_ANNOTATION,
    LOGOFF_REQUESTED_ANNOTATION,
    REPORTED_AT_ANNOTATION,
    SESSIONS_ANNOTATION,
    SOURCE_ANNOTATION,
)
from deskfleet.agent.contract import (
    DrainInstruction,
    HostSession,
    ReportError,
    host_report_document,
    instruction_from_annotations,
    logoff_document,
    notice_document,
    parse_host_report,
)
from deskfleet.agent.delivery import DeliveryPaths, deliver
from deskfleet.agent.podinfo import go_unquote, parse_annotations
from deskfleet.agent.reporter import Agent, AgentConfig
from deskfleet.agent.sessions import tcp_table
from deskfleet.agent.sources import from_host_file
from deskfleet.agent.xrdp_reporter import parse_sesadmin_list, report_document

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def report(*sessions: dict[str, Any], age: float = 5, **extra: Any) -> str:
    return json.dumps({"version": 1, "sessions": list(sessions),
                       "updatedAt": (NOW - timedelta(seconds=age)).isoformat(), **extra})


# --- the host's report -----------------------------------------------------------------

def test_disconnected_and_logging_off_sessions_count_as_load() -> None:
    r = parse_host_report(report({"id": "a"}, {"id": "b", "state": "disconnected"},
                                 {"id": "c", "state": "loggingOff", "user": "dr.who"}), NOW, 90)
    assert (r.load, r.disconnected) == (3, 1)


def test_a_state_this_version_does_not_know_still_counts() -> None:
    r = parse_host_report(report({"id": "a", "state": "shadowed"}, version=2), NOW, 90)
    assert r.load == 1


@pytest.mark.parametrize(("text", "reason"), [
    ("{", "not JSON"),
    ("[]", "not a JSON object"),
    (report({"id": "a"}, age=91), "stale"),
    (report({"id": "a"}, version=0), "version"),
    (report({"id": "a"}, version=True), "version"),
    (json.dumps({"version": 1, "sessions": []}), "updatedAt"),
    (json.dumps({"version": 1, "sessions": [], "updatedAt": "2026-11-24T08:00:00"}),
     "updatedAt"),
    (report({"id": ""}), "id"),
    (report({"id": 7}), "id"),
    (report({"id": "a"}, {"id": "a"}), "unique"),
    (report({"id": "a", "user": 3}), "user"),
    (json.dumps({"version": 1, "sessions": {}, "updatedAt": NOW.isoformat()}), "list"),
])
def test_a_report_that_cannot_be_trusted_is_refused_with_the_reason(text: str,
                                                                    reason: str) -> None:
    with pytest.raises(ReportError, match=reason):
        parse_host_report(text, NOW, 90)


sessions_strategy = st.lists(
    st.builds(HostSession, id=st.text(min_size=1, max_size=12),
              state=st.sampled_from(["active", "disconnected", "loggingOff", "other"]),
              user=st.one_of(st.none(), st.text(max_size=8))),
    max_size=30, unique_by=lambda s: s.id)


@given(sessions_strategy)
def test_what_a_host_writes_the_agent_reads(sessions: list[HostSession]) -> None:
    text = json.dumps(host_report_document(sessions, NOW))
    parsed = parse_host_report(text, NOW + timedelta(seconds=30), 90)
    assert parsed.sessions == tuple(sessions)
    assert parsed.load == len(sessions)
    assert parsed.disconnected == sum(s.state == "disconnected" for s in sessions)


def test_a_host_that_has_not_written_yet_is_not_a_host_with_no_sessions(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not reported yet"):
        from_host_file(tmp_path / "sessions.json", NOW, 90)


# --- the operator's instructions, through the downward API -----------------------------

def go_quote(text: str) -> str:
    """What Go's strconv.Quote makes of a string (the kubelet's annotations file)."""
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in text:
        if ch in named:
            out.append(named[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_annotation_values_round_trip_through_go_quoting(value: str) -> None:
    assert go_unquote(go_quote(value)) == value


@pytest.mark.parametrize("bad", ['abc', '"a"b"', '"\\q"', '"trailing\\"'])
def test_go_unquote_refuses_what_go_never_writes(bad: str) -> None:
    with pytest.raises(ValueError):
        go_unquote(bad)


def annotations_file(values: dict[str, str]) -> str:
    return "".join(f"{k}={go_quote(v)}\n" for k, v in sorted(values.items()))


def test_the_drain_instruction_is_read_from_the_pods_annotations() -> None:
    text = annotations_file({
        DRAINING_ANNOTATION: "2026-11-24T07:00:00Z",
        DRAIN_MESSAGE_ANNOTATION: 'Host retiring "soon".\nSave your work.',
        LOGOFF_DEADLINE_ANNOTATION: "2026-11-24T08:00:00Z",
        "kubectl.kubernetes.io/restartedAt": "x"}) + "garbage line\n"
    ins = instruction_from_annotations(parse_annotations(text))
    assert ins.draining_since == datetime(2026, 11, 24, 7, tzinfo=UTC)
    assert ins.message == 'Host retiring "soon".\nSave your work.'
    assert ins.deadline == datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert ins.logoff_requested_at is None


def test_drain_annotations_without_draining_since_mean_nothing() -> None:
    leftovers = {LOGOFF_REQUESTED_ANNOTATION: "2026-11-24T08:00:00Z",
                 DRAIN_MESSAGE_ANNOTATION: "x"}
    assert instruction_from_annotations(leftovers) == DrainInstruction()


def test_notice_and_logoff_documents() -> None:
    since, deadline = NOW, NOW + timedelta(hours=1)
    quiet = DrainInstruction(draining_since=since)
    assert notice_document(quiet) is None and logoff_document(quiet) is None
    noticed = DrainInstruction(since, "bye", deadline)
    assert notice_document(noticed) == {"version": 1, "drainingSince": "2026-11-24T08:00:00Z",
                                        "message": "bye", "deadline": "2026-11-24T09:00:00Z"}
    assert logoff_document(noticed) is None
    asked = DrainInstruction(since, "bye", deadline, deadline + timedelta(seconds=5))
    assert logoff_document(asked) == {"version": 1, "requestedAt": "2026-11-24T09:00:05Z",
                                      "deadline": "2026-11-24T09:00:00Z", "sessions": "all",
                                      "message": "bye"}


def test_delivery_writes_replaces_and_withdraws_the_files(tmp_path: Path) -> None:
    paths = DeliveryPaths(tmp_path / "draining", tmp_path / "notice.json",
                          tmp_path / "logoff.json")
    noticed = DrainInstruction(NOW, "bye", NOW + timedelta(hours=1))
    assert deliver(noticed, paths)
    assert json.loads(paths.notice.read_text())["message"] == "bye"  # type: ignore[union-attr]
    assert paths.draining.exists() and not paths.logoff.exists()  # type: ignore[union-attr]
    assert not deliver(noticed, paths)  # nothing new: nothing rewritten
    asked = DrainInstruction(NOW, "bye", NOW + timedelta(hours=1), NOW + timedelta(hours=1))
    assert deliver(asked, paths) and paths.logoff.exists()  # type: ignore[union-attr]
    assert deliver(DrainInstruction(), paths)  # undrained: every file withdrawn
    assert list(tmp_path.iterdir()) == []  # and no temporary file left behind


# --- the agent's loop --------------------------------------------------------------------

class FakeKube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def merge_patch(self, resource: Any, namespace: str, name: str,
                    patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch["metadata"]["annotations"])
        return {}


def agent(tmp_path: Path, **config: Any) -> tuple[Agent, FakeKube]:
    kube = FakeKube()
    cfg = AgentConfig(pod="h", namespace="ns", port=3389, proc_net=tmp_path,
                      host_report_file=tmp_path / "sessions.json",
                      annotations_file=tmp_path / "annotations",
                      drain_file=tmp_path / "out" / "draining",
                      notice_file=tmp_path / "out" / "notice.json",
                      logoff_file=tmp_path / "out" / "logoff.json", metrics_port=0, **config)
    return Agent(cfg, kube), kube  # type: ignore[arg-type]


def test_host_source_reports_disconnected_sessions_as_load(tmp_path: Path) -> None:
    a, kube = agent(tmp_path, source="host")
    a.tick()
    assert kube.patches == []  # never reported: nothing claimed, the host stays unknown
    (tmp_path / "sessions.json").write_text(json.dumps(host_report_document(
        [HostSession("1"), HostSession("2", "disconnected")], datetime.now(UTC))))
    (tmp_path / "tcp").write_text(tcp_table(1, 3389))  # only one user is connected
    a.tick()
    last = kube.patches[-1]
    assert (last[SESSIONS_ANNOTATION], last[DISCONNECTED_ANNOTATION],
            last[SOURCE_ANNOTATION]) == ("2", "1", "host")
    assert REPORTED_AT_ANNOTATION in last
    a.tick()
    assert len(kube.patches) == 1  # unchanged and no heartbeat due: no write


def test_a_host_that_stops_writing_stops_being_reported(tmp_path: Path) -> None:
    a, kube = agent(tmp_path, source="host", heartbeat=0)
    (tmp_path / "sessions.json").write_text(json.dumps(host_report_document(
        [HostSession("1")], datetime.now(UTC) - timedelta(minutes=5))))
    a.tick()
    assert kube.patches == []  # its report ages on the pod; the operator sees it stale


def test_tcp_source_cannot_tell_disconnected_sessions(tmp_path: Path) -> None:
    a, kube = agent(tmp_path)
    (tmp_path / "tcp").write_text(tcp_table(3, 3389))
    a.tick()
    assert kube.patches[-1][SESSIONS_ANNOTATION] == "3"
    assert kube.patches[-1][DISCONNECTED_ANNOTATION] is None  # removed, not "0"
    assert kube.patches[-1][SOURCE_ANNOTATION] == "tcp"


def test_the_agent_delivers_the_notice_and_the_logoff_request(tmp_path: Path) -> None:
    a, _ = agent(tmp_path)
    (tmp_path / "tcp").write_text(tcp_table(1, 3389))
    values = {DRAINING_ANNOTATION: "2026-11-24T07:00:00Z",
              DRAIN_MESSAGE_ANNOTATION: "Logging off at 09:00",
              LOGOFF_DEADLINE_ANNOTATION: "2026-11-24T09:00:00Z"}
    (tmp_path / "annotations").write_text(annotations_file(values))
    a.tick()
    notice = json.loads((tmp_path / "out" / "notice.json").read_text())
    assert notice["deadline"] == "2026-11-24T09:00:00Z"
    assert not (tmp_path / "out" / "logoff.json").exists()
    values[LOGOFF_REQUESTED_ANNOTATION] = "2026-11-24T09:00:02Z"
    (tmp_path / "annotations").write_text(annotations_file(values))
    a.tick()
    assert json.loads((tmp_path / "out" / "logoff.json").read_text())["sessions"] == "all"


# --- the reference xrdp reporter -------------------------------------------------------

SESADMIN = """Session ID: 1
\tDisplay: :10
\tUser: alice
\tSession type: Xorg
\tScreen size: 1920x1080, color depth 24
\tStarted: Tue Nov 24 07:58:01 2026
\tConnection state: connected
\tConnected client IP: 10.0.0.7
Session ID: 2
\tDisplay: :11
\tUser: <unknown>
\tConnection state: disconnected
\tConnection end time: Tue Nov 24 08:10:44 2026
Session ID: 3
\tDisplay: :12
\tUser: carol
"""


def test_xrdp_sessions_are_parsed_and_reported_in_the_contract() -> None:
    sessions = parse_sesadmin_list(SESADMIN)
    assert [(s["id"], s["state"], s.get("user")) for s in sessions] == [
        ("xrdp-1", "active", "alice"), ("xrdp-2", "disconnected", None),
        ("xrdp-3", "active", "carol")]  # no state stated: never assume less load
    assert parse_sesadmin_list("No sessions.\n") == []
    parsed = parse_host_report(json.dumps(report_document(sessions, NOW, False)), NOW, 90)
    assert (parsed.load, parsed.disconnected) == (3, 1)
    leaving = parse_host_report(json.dumps(report_document(sessions, NOW, True)), NOW, 90)
    assert leaving.load == 3 and {s.state for s in leaving.sessions} == {"loggingOff"}


# --- what the pool renders for it --------------------------------------------------------

def pool_pod(**agent: Any) -> dict[str, Any]:
    from deskfleet.api.parse import parse
    from deskfleet.render.pool import build_deployment
    from deskfleet.settings import Settings

    pool = parse({"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
                  "metadata": {"name": "desk", "namespace": "ns", "uid": "u"},
                  "spec": {"image": "x", "agent": agent}})
    pod: dict[str, Any] = build_deployment(pool, Settings())["spec"]["template"]["spec"]
    return pod


def mounts(container: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {m["name"]: (m["mountPath"], m.get("readOnly", False))
            for m in container["volumeMounts"]}


def test_a_host_reporting_pool_gives_each_direction_its_own_volume() -> None:
    pod = pool_pod(sessionSource="host")
    host, sidecar = pod["containers"]
    # The host writes its report and only reads the operator's instructions ...
    assert mounts(host)["host-report"] == ("/run/deskfleet-host", False)
    assert mounts(host)["drain-notice"] == ("/run/deskfleet", True)
    # ... and the agent the other way round.
    assert mounts(sidecar)["host-report"] == ("/run/deskfleet-host", True)
    assert mounts(sidecar)["drain-notice"] == ("/run/deskfleet", False)
    assert sidecar["args"][-4:] == ["--session-source", "host", "--host-report-file",
                                    "/run/deskfleet-host/sessions.json"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["host-report"]["emptyDir"]["medium"] == "Memory"


def test_a_tcp_pool_renders_what_it_always_did() -> None:
    pod = pool_pod()
    assert "host-report" not in {v["name"] for v in pod["volumes"]}
    assert pod["containers"][1]["args"] == ["agent", "--port", "3389", "--metrics-port",
                                            "15090"]
    url = pool_pod(sessionSource="host", hostReportUrl="http://127.0.0.1:4001/sessions")
    assert url["containers"][1]["args"][-2:] == ["--host-report-url",
                                                 "http://127.0.0.1:4001/sessions"]


def test_the_report_may_come_from_a_local_endpoint(tmp_path: Path) -> None:
    import http.server
    import threading

    body = json.dumps(host_report_document(
        [HostSession("1", "disconnected"), HostSession("2")], datetime.now(UTC))).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/sessions"
        a, kube = agent(tmp_path, source="host", host_report_url=url)
        a.tick()
        assert (kube.patches[-1][SESSIONS_ANNOTATION],
                kube.patches[-1][DISCONNECTED_ANNOTATION]) == ("2", "1")
    finally:
        server.shutdown()
    a, kube = agent(tmp_path, source="host", host_report_url=url)  # nobody listening now
    a.tick()
    assert kube.patches == []
