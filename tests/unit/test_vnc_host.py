"""The reference VNC host's glue (hosts/vnc-desktop), without X: the controls it reads
from the portal's header or the pool's baseline and what it makes of them, its session
report as deskfleet's agent parses it, the paths it serves, and the supervisor's logon
rules (one desktop per user, owners only while draining, stricter reconnects refused).
The whole host runs for real in tests/cluster/test_desktop_e2e.py."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deskfleet.agent.contract import parse_host_report
from deskfleet.agent.sessions import tcp_table
from deskfleet.policy.model import Controls as PortalControls

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hosts" / "vnc-desktop"))

from deskfleet_vnc_host import contract, controls, supervisor, web

ALL_OFF = controls.Controls()
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def wire(**over: Any) -> dict[str, Any]:
    return {**ALL_OFF.wire(), **over}


# --- controls --------------------------------------------------------------------------

def test_the_portals_header_is_read_as_the_portal_writes_it() -> None:
    sent = PortalControls(clipboard_to_host=True, clipboard_to_client=False, file_upload=False,
                          file_download=True, printing=False, recording=False,
                          watermark=False, idle_timeout_seconds=1800,
                          max_session_seconds=None)
    got = controls.parse_header(json.dumps(sent.wire()))
    assert got.wire() == sent.wire()


@pytest.mark.parametrize("header", [
    "not json", "[]", json.dumps({"clipboardToHost": True}),
    json.dumps(wire(clipboardToClient="yes")), json.dumps(wire(idleTimeoutSeconds=True)),
    json.dumps(wire(idleTimeoutSeconds=-5)), "x" * 5000,
])
def test_a_header_that_is_not_complete_and_typed_is_refused(header: str) -> None:
    with pytest.raises(controls.ControlsError):
        controls.parse_header(header)


def test_without_a_header_the_pools_strictest_baseline_applies() -> None:
    config = {"apps": {
        "epr": {"baselineControls": wire(clipboardToHost=True, clipboardToClient=True,
                                         idleTimeoutSeconds=3600), "grants": []},
        "pacs": {"baselineControls": wire(clipboardToHost=True, recording=True,
                                          idleTimeoutSeconds=600), "grants": []},
        "closed": {"baselineControls": None, "grants": []}}}
    pool = controls.baseline(config)
    assert pool == controls.Controls(clipboard_to_host=True, recording=True,
                                     idle_timeout_seconds=600)
    assert controls.choose(None, pool) == (pool, "baseline")
    header = json.dumps(wire(clipboardToClient=True))
    assert controls.choose(header, pool) == (controls.Controls(clipboard_to_client=True),
                                             "header")
    assert controls.baseline({"apps": {}}) is None
    with pytest.raises(controls.ControlsError):
        controls.choose(None, None)


def test_what_the_host_cannot_honour_is_refused_not_ignored() -> None:
    assert controls.refusals(controls.Controls(recording=True), can_record=False)
    assert controls.refusals(controls.Controls(recording=True), can_record=True) == []
    assert controls.refusals(controls.Controls(watermark=True), can_record=True)
    assert controls.refusals(controls.Controls(printing=True), can_record=False) == []


def test_xvnc_gets_the_clipboard_directions_and_cannot_be_changed_from_inside() -> None:
    settings = controls.xvnc_settings(controls.Controls(clipboard_to_host=True,
                                                        idle_timeout_seconds=900))
    assert settings == {"AcceptCutText": "1", "SetPrimary": "1", "SendCutText": "0",
                        "SendPrimary": "0", "IdleTimeout": "900", "AllowOverride": "desktop"}


def test_a_reconnect_under_stricter_controls_than_the_session_is_told_why() -> None:
    session = controls.Controls(clipboard_to_host=True, clipboard_to_client=True)
    assert controls.looser_than(session, session) == []
    assert controls.looser_than(session, controls.Controls(clipboard_to_host=True)) == [
        "clipboard to the device"]
    assert controls.looser_than(controls.Controls(idle_timeout_seconds=600),
                                controls.Controls(idle_timeout_seconds=300)) == [
        "the idle timeout"]
    # Looser controls now: the session keeps its own, stricter ones.
    assert controls.looser_than(controls.Controls(), session) == []


# --- the report and the paths ------------------------------------------------------------

def test_the_report_is_what_deskfleets_agent_reads() -> None:
    doc = contract.report_document([
        contract.Session(":1", contract.ACTIVE, "dr.patel"),
        contract.Session(":2", contract.DISCONNECTED, "nurse.jones"),
        contract.Session(":3", contract.LOGGING_OFF)], NOW)
    report = parse_host_report(json.dumps(doc), NOW, 90)
    assert (report.load, report.disconnected) == (3, 1)


def test_a_viewer_is_an_established_connection_ending_at_the_rfb_port() -> None:
    table = tcp_table(2, 5901)
    # The other end of one of them (websockify's side) and a listening socket: not viewers.
    table += "   9: 0100007F:C000 0100007F:170D 01 0 0 0\n   10: 0100007F:170D 00000000:0000 0A\n"
    assert contract.viewers([table], 5901) == 2
    assert contract.viewers([table], 5902) == 0


@pytest.mark.parametrize(("prefix", "path", "rel"), [
    ("/desktop", "/desktop", ""), ("/desktop", "/desktop/vnc.html?x=1", "/vnc.html"),
    ("/desktop", "/desktops/vnc.html", None), ("/desktop", "/other", None),
    ("/", "/vnc.html", "/vnc.html")])
def test_the_host_serves_under_the_apps_path_only(prefix: str, path: str, rel: str | None
                                                    ) -> None:
    assert web.relative(prefix, path) == rel


def test_the_launch_page_connects_at_once_to_the_websocket_under_the_path() -> None:
    assert web.novnc_location("/desktop") == (
        "/desktop/vnc.html?autoconnect=true&resize=remote&reconnect=false"
        "&path=desktop/websockify")
    assert web.novnc_location("/").endswith("&path=websockify")


# --- the supervisor's logon rules -----------------------------------------------------------

class FakeProcess:
    def __init__(self) -> None:
        self.returncode: int | None = None
        self.pid = 0

    def poll(self) -> int | None:
        return self.returncode


def make_supervisor(tmp_path: Path, per_host: int = 2) -> supervisor.Supervisor:
    (tmp_path / "drain").mkdir()
    (tmp_path / "host.json").write_text(json.dumps({"sessionsPerHost": per_host, "apps": {}}))
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(tcp_table(0, 1))
    settings = supervisor.Settings(
        listen="127.0.0.1:6080", path_prefix="/desktop", display=50, rfb_port=15950,
        geometry="1280x800", session_command=["true"], report=tmp_path / "sessions.json",
        drain_dir=tmp_path / "drain", host_config=tmp_path / "host.json",
        home_base=tmp_path / "homes", control_socket=tmp_path / "control.sock",
        novnc=tmp_path, proc_net=tmp_path / "net")
    sup = supervisor.Supervisor(settings)

    def start(slot: int, user: str, c: controls.Controls) -> supervisor.Desktop:
        fake: Any = FakeProcess()
        return supervisor.Desktop(slot, 50 + slot, 15950 + slot, user, c, 0.0, fake, fake,
                                  tmp_path / f"home-{slot}")

    sup.start_desktop = start  # type: ignore[method-assign]
    return sup


def test_each_user_gets_a_desktop_of_their_own_and_returns_to_it(tmp_path: Path) -> None:
    sup = make_supervisor(tmp_path)
    first = sup.logon("dr.patel", ALL_OFF)
    assert first == {"ok": True, "port": 15950, "session": ":50", "new": True}
    assert sup.logon("nurse.jones", ALL_OFF)["session"] == ":51"
    again = sup.logon("dr.patel", ALL_OFF)
    assert (again["session"], again["new"]) == (":50", False)
    full = sup.logon("dr.who", ALL_OFF)
    assert (full["ok"], full["status"]) == (False, 503)
    report = json.loads((tmp_path / "sessions.json").read_text())
    assert [s["user"] for s in report["sessions"]] == ["dr.patel", "nurse.jones"]


def test_while_draining_only_desktop_owners_get_in(tmp_path: Path) -> None:
    sup = make_supervisor(tmp_path)
    sup.logon("dr.patel", ALL_OFF)
    (tmp_path / "drain" / "draining").write_text("draining\n")
    assert sup.logon("dr.patel", ALL_OFF)["ok"]
    refused = sup.logon("nurse.jones", ALL_OFF)
    assert not refused["ok"] and "retired" in refused["reason"]


def test_a_stricter_reconnect_is_refused_and_a_desktop_is_only_its_owners(
        tmp_path: Path) -> None:
    sup = make_supervisor(tmp_path)
    sup.logon("dr.patel", controls.Controls(clipboard_to_client=True))
    refused = sup.logon("dr.patel", ALL_OFF)
    assert not refused["ok"] and "clipboard to the device" in refused["reason"]
    assert sup.handle({"op": "session", "user": "dr.patel"})["session"]["id"] == ":50"
    assert sup.handle({"op": "session", "user": "nurse.jones"})["session"] is None
    assert not sup.handle({"op": "logon", "user": "", "controls": wire()})["ok"]
    assert not sup.handle({"op": "logon", "user": "x", "controls": {"bad": 1}})["ok"]


def test_sessions_are_active_with_a_viewer_and_disconnected_without(tmp_path: Path) -> None:
    sup = make_supervisor(tmp_path)
    sup.logon("dr.patel", ALL_OFF)
    desktop = sup.desktops[0]
    (tmp_path / "net" / "tcp").write_text(tcp_table(1, 15950))
    assert [s.state for s in sup.sessions()] == ["active"]
    (tmp_path / "net" / "tcp").write_text(tcp_table(0, 15950))
    assert [s.state for s in sup.sessions()] == ["disconnected"]  # started long ago
    desktop.logging_off = True
    assert [s.state for s in sup.sessions()] == ["loggingOff"]


def test_the_glue_runs_on_the_standard_library_where_it_says_so() -> None:
    """controls, contract, web and supervisor are copied into the image and run with
    Debian's python3: they import nothing outside the standard library."""
    code = ("import sys; sys.modules['websockify'] = None; sys.modules['tkinter'] = None; "
            "import deskfleet_vnc_host.supervisor, deskfleet_vnc_host.web")
    host_dir = Path(__file__).resolve().parents[2] / "hosts" / "vnc-desktop"
    subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, "
                    f"{str(host_dir)!r}); {code}"], check=True)


# --- the image and the example beside the operator ----------------------------------------

HOST_DIR = Path(__file__).resolve().parents[2] / "hosts" / "vnc-desktop"


def test_the_hosts_defaults_are_where_the_operator_mounts_the_contract() -> None:
    from deskfleet.render import pool

    settings = supervisor.parse_args([])
    assert str(settings.report) == pool.HOST_REPORT_FILE
    assert str(settings.drain_dir) == pool.DRAIN_MOUNT
    assert str(settings.host_config) == f"{pool.CONFIG_MOUNT}/{pool.HOST_CONFIG_KEY}"
    assert "DESKFLEET_VNC_LISTEN=0.0.0.0:6080" in (HOST_DIR / "Dockerfile").read_text()


def test_the_example_renders_and_the_host_reads_the_config_the_operator_renders(
        tmp_path: Path) -> None:
    from deskfleet.render.offline import render_files

    objects = render_files([HOST_DIR / "examples"])
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    deployment = next(o for o in objects if o["kind"] == "Deployment"
                      and o["metadata"]["labels"]["deskfleet.io/pool"] == "ward-desktop")
    host, agent = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in host["env"]}
    route = by_kind[("HTTPRoute", "ward-desktop")]
    assert env["DESKFLEET_VNC_PATH"] == route["spec"]["rules"][0]["matches"][0]["path"]["value"]
    assert host["ports"][0]["containerPort"] == 6080
    assert "--session-source" in agent["args"] and "host" in agent["args"]
    config = by_kind[("ConfigMap", "ward-desktop-host-config")]["data"]["host.json"]
    (tmp_path / "host.json").write_text(config)
    assert web.read_host_config(tmp_path / "host.json")["sessionsPerHost"] == 4
    pool_baseline = controls.baseline(json.loads(config))
    assert pool_baseline == controls.Controls(clipboard_to_host=True, file_upload=True,
                                              idle_timeout_seconds=1800,
                                              max_session_seconds=12 * 3600)
    assert controls.refusals(pool_baseline, can_record=False) == []
