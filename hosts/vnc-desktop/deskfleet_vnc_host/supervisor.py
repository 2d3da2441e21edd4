"""The reference VNC session host's supervisor: one desktop per user, up to the pool's
`sessionsPerHost` desktops per host.

    browser --WebSocket--> gateway --> proxy (websockify + noVNC, the session port)
                                          |  logon? (unix socket, one JSON line)
                                          v
                                     supervisor --starts--> Xvnc :N (127.0.0.1:rfbport)
                                          |                  + the session program
                                          +--> sessions.json  (to the deskfleet agent)
                                          <--  draining, notice.json, logoff.json

A desktop begins with its user's first connection: the supervisor starts a fresh X
server (Xvnc on a display of its own, with the clipboard and idle settings that
connection's controls give, see controls.py) and the session program in a fresh home
directory; the desktop is that user's. It is `active` while a viewer is connected,
`disconnected` while nobody is and the program still runs (the tab was closed, the
network lost), and it ends when the program exits, when the agent asks for a logoff, or
at the controls' maximum duration; then its X server and home directory go, so the next
user starts clean. The user's next connection returns to their desktop. While the host
drains, only users who have a desktop here get in.

Standard library only (the proxy beside it needs Debian's websockify, the notice Tk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import contract
from .controls import Controls, ControlsError, from_wire, looser_than, xvnc_settings
from .web import read_host_config

log = logging.getLogger("deskfleet-vnc-host")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
REWRITE_SECONDS = 10.0  # the contract asks for at least every 30 s
CONNECTING_SECONDS = 5.0  # a new desktop counts as active while its user connects


@dataclass(frozen=True)
class Settings:
    listen: str  # host:port of the session port (the proxy)
    path_prefix: str  # the app's gateway path: the gateway does not rewrite paths
    display: int  # the first display; desktop i uses display + i
    rfb_port: int  # the first RFB port (127.0.0.1 only); desktop i uses rfb_port + i
    geometry: str
    session_command: list[str]
    report: Path
    drain_dir: Path
    host_config: Path
    home_base: Path
    control_socket: Path
    novnc: Path
    recordings: Path | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    desktops: int | None = None  # None: the host config's sessionsPerHost
    max_disconnected_seconds: int = 0  # end a desktop nobody has viewed this long; 0: never
    xvnc: str = "Xvnc"
    stop_grace_seconds: float = 10.0
    proc_net: Path = Path("/proc/net")


@dataclass
class Desktop:
    slot: int
    display: int
    rfb_port: int
    user: str
    controls: Controls
    started: float  # time.monotonic()
    xvnc: subprocess.Popen[bytes]
    program: subprocess.Popen[bytes]
    home: Path
    ends_at: float | None = None
    logging_off: bool = False
    notice: subprocess.Popen[bytes] | None = None
    notice_shown: str | None = None

    @property
    def id(self) -> str:
        return f":{self.display}"

    @property
    def transfer(self) -> Path:
        return self.home / "Transfer"


@dataclass
class Supervisor:
    settings: Settings
    lock: threading.Lock = field(default_factory=threading.Lock)
    desktops: dict[int, Desktop] = field(default_factory=dict)  # by slot
    proxy: subprocess.Popen[bytes] | None = None
    last_report: tuple[Any, ...] | None = None
    last_report_time: float = 0.0
    stopping: threading.Event = field(default_factory=threading.Event)
    serial: int = 0

    def capacity(self) -> int:
        if self.settings.desktops is not None:
            return self.settings.desktops
        try:
            config = read_host_config(self.settings.host_config)
            return max(1, int(config.get("sessionsPerHost", 1)))
        except (OSError, ValueError, TypeError, AttributeError):
            return 1

    def desktop_of(self, user: str) -> Desktop | None:
        return next((d for d in self.desktops.values() if d.user == user), None)

    # --- what the proxy asks ------------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op, user = request.get("op"), request.get("user")
        if not isinstance(user, str) or not user:
            return refuse(403, "no user")
        if op == "logon":
            try:
                controls = from_wire(request.get("controls"))
            except ControlsError as err:
                return refuse(403, str(err))
            return self.logon(user, controls)
        if op == "session":
            with self.lock:
                d = self.desktop_of(user)
                return {"session": None if d is None or d.logging_off else {
                    "id": d.id, "user": d.user, "transfer": str(d.transfer)}}
        return refuse(400, f"unknown op {op!r}")

    def logon(self, user: str, controls: Controls) -> dict[str, Any]:
        with self.lock:
            d = self.desktop_of(user)
            if d is not None and d.logging_off:
                return refuse(503, "your desktop is being logged off")
            if d is not None:
                looser = looser_than(d.controls, controls)
                if looser:
                    return refuse(403, "your access now has stricter controls than your "
                                  f"running desktop ({', '.join(looser)}); it cannot be "
                                  "reopened from here")
                if controls.max_session_seconds is not None:
                    end = d.started + controls.max_session_seconds
                    d.ends_at = end if d.ends_at is None else min(d.ends_at, end)
                log.info("reconnect to %s by %s", d.id, user)
                return {"ok": True, "port": d.rfb_port, "session": d.id, "new": False}
            if (self.settings.drain_dir / "draining").exists():
                return refuse(503, "this host is being retired: open the app again from "
                              "the landing page to reach another host")
            free = [i for i in range(self.capacity()) if i not in self.desktops]
            if not free:
                return refuse(503, "this host is full")
            try:
                d = self.desktops[free[0]] = self.start_desktop(free[0], user, controls)
            except (OSError, RuntimeError) as err:
                log.error("could not start a desktop: %s", err)
                return refuse(503, "the desktop could not be started")
            log.info("logon: %s for %s (controls %s)", d.id, user,
                     json.dumps(controls.wire(), sort_keys=True))
        self.write_report(force=True)
        return {"ok": True, "port": d.rfb_port, "session": d.id, "new": True}

    # --- a desktop's life ---------------------------------------------------------------

    def start_desktop(self, slot: int, user: str, controls: Controls) -> Desktop:
        s = self.settings
        self.serial += 1
        display, port = s.display + slot, s.rfb_port + slot
        home = s.home_base / f"session-{self.serial}"
        shutil.rmtree(home, ignore_errors=True)
        (home / "Transfer").mkdir(parents=True, mode=0o700)
        params = [f"-{k}={v}" for k, v in xvnc_settings(controls).items()]
        if s.max_disconnected_seconds:  # Xvnc exits; the desktop then ends with it
            params.append(f"-MaxDisconnectionTime={s.max_disconnected_seconds}")
        xvnc = subprocess.Popen(
            [s.xvnc, f":{display}", "-rfbport", str(port), "-interface", "127.0.0.1",
             "-localhost", "-SecurityTypes", "None", "-geometry", s.geometry,
             "-depth", "24", "-desktop", "deskfleet desktop", *params],
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while not port_open(port):
            if xvnc.poll() is not None or time.monotonic() > deadline:
                stop_process(xvnc, 1)
                raise RuntimeError(f"Xvnc :{display} did not start")
            time.sleep(0.05)
        env = {**os.environ, "DISPLAY": f":{display}", "HOME": str(home),
               "DESKFLEET_SESSION_USER": user, "DESKFLEET_SESSION_ID": f":{display}"}
        program = subprocess.Popen(s.session_command, env=env, cwd=home,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        now = time.monotonic()
        ends = now + controls.max_session_seconds if controls.max_session_seconds else None
        return Desktop(slot, display, port, user, controls, now, xvnc, program, home, ends)

    def end_desktops(self, ending: list[Desktop], why: str) -> None:
        """Log them off: reported `loggingOff` until each has ended, then dropped."""
        if not ending:
            return
        with self.lock:
            for d in ending:
                log.info("logoff: %s of %s (%s)", d.id, d.user, why)
                d.logging_off = True
        self.write_report(force=True)
        for d in ending:  # every program is asked first, then each given the grace
            signal_group(d.program, signal.SIGTERM)
        for d in ending:
            stop_process(d.program, self.settings.stop_grace_seconds)
            stop_notice(d)
            stop_process(d.xvnc, 5)
            shutil.rmtree(d.home, ignore_errors=True)
            with self.lock:
                if self.desktops.get(d.slot) is d:
                    del self.desktops[d.slot]
        self.write_report(force=True)

    # --- the loop -----------------------------------------------------------------------

    def tick(self) -> None:
        s = self.settings
        with self.lock:
            live = [d for d in self.desktops.values() if not d.logging_off]
        ended = [d for d in live if d.program.poll() is not None or d.xvnc.poll() is not None]
        self.end_desktops(ended, "its program or X server ended")
        live = [d for d in live if d not in ended]
        if (s.drain_dir / "logoff.json").exists():
            self.end_desktops(live, "the host asked for a logoff (the drain's deadline)")
            live = []
        now = time.monotonic()
        self.end_desktops([d for d in live if d.ends_at is not None and now >= d.ends_at],
                          "the maximum session duration")
        self.show_notices()
        if self.proxy is not None and self.proxy.poll() is not None:
            log.error("the proxy exited (%s): starting it again", self.proxy.returncode)
            self.start_proxy()
        self.write_report()

    def sessions(self) -> list[contract.Session]:
        with self.lock:
            desktops = sorted(self.desktops.values(), key=lambda d: d.slot)
        tables = contract.read_tcp_tables(self.settings.proc_net) if desktops else []
        now = time.monotonic()
        result = []
        for d in desktops:
            if d.logging_off:
                state = contract.LOGGING_OFF
            elif contract.viewers(tables, d.rfb_port) or now - d.started < CONNECTING_SECONDS:
                state = contract.ACTIVE  # the user whose logon started it is connecting
            else:
                state = contract.DISCONNECTED
            result.append(contract.Session(d.id, state, d.user))
        return result

    def write_report(self, force: bool = False) -> None:
        sessions = self.sessions()
        key = tuple(sessions)
        due = time.monotonic() - self.last_report_time >= REWRITE_SECONDS
        if not (force or due or key != self.last_report):
            return
        if key != self.last_report:
            log.info("sessions: %s", [f"{x.id} {x.state}" for x in sessions] or "none")
        doc = contract.report_document(sessions, datetime.now(UTC))
        contract.write_atomically(self.settings.report, json.dumps(doc) + "\n")
        self.last_report, self.last_report_time = key, time.monotonic()

    def show_notices(self) -> None:
        """Keep a notice window on every desktop in line with notice.json."""
        doc = contract.read_json(self.settings.drain_dir / "notice.json")
        text = None if doc is None else json.dumps(doc, sort_keys=True)
        with self.lock:
            live = [d for d in self.desktops.values() if not d.logging_off]
        for d in live:
            alive = d.notice is not None and d.notice.poll() is None
            if text == d.notice_shown and (alive or text is None):
                continue
            stop_notice(d)
            if doc is None or text is None:
                continue
            message = str(doc.get("message") or "")
            deadline = contract.parse_deadline(doc)
            argv = [sys.executable, "-m", "deskfleet_vnc_host.notice", "--message", message]
            if deadline is not None:
                argv += ["--deadline", deadline.isoformat()]
            env = {**os.environ, "DISPLAY": d.id, "PYTHONPATH": python_path()}
            d.notice = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            d.notice_shown = text
            log.info("notice shown on %s: %r, deadline %s", d.id, message, deadline)

    def start_proxy(self) -> None:
        s = self.settings
        argv = [sys.executable, "-m", "deskfleet_vnc_host.proxy", "--listen", s.listen,
                "--control", str(s.control_socket), "--path-prefix", s.path_prefix,
                "--novnc", str(s.novnc), "--host-config", str(s.host_config),
                "--max-upload-bytes", str(s.max_upload_bytes)]
        if s.recordings is not None:
            argv += ["--recordings", str(s.recordings)]
        env = {**os.environ, "PYTHONPATH": python_path()}
        self.proxy = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                      start_new_session=True)

    def serve_control(self) -> socketserver.UnixStreamServer:
        supervisor = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    request = json.loads(self.rfile.readline(65536))
                    answer = supervisor.handle(request if isinstance(request, dict) else {})
                except ValueError:
                    answer = refuse(400, "not JSON")
                self.wfile.write(json.dumps(answer).encode() + b"\n")

        path = self.settings.control_socket
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        os.chmod(path, 0o600)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
        return server

    def run(self) -> None:
        control = self.serve_control()
        self.write_report(force=True)
        self.start_proxy()
        s = self.settings
        log.info("serving on %s%s; up to %d desktops from :%d (RFB 127.0.0.1:%d and up)",
                 s.listen, s.path_prefix, self.capacity(), s.display, s.rfb_port)
        try:
            while not self.stopping.is_set():
                try:
                    self.tick()
                except OSError as err:
                    log.warning("tick: %s", err)
                self.stopping.wait(0.5)
        finally:
            control.shutdown()
            if self.proxy is not None:
                stop_process(self.proxy, 5)
            with self.lock:
                remaining = list(self.desktops.values())
            self.end_desktops(remaining, "the host is stopping")
            s.control_socket.unlink(missing_ok=True)


def refuse(status: int, reason: str) -> dict[str, Any]:
    return {"ok": False, "status": status, "reason": reason}


def python_path() -> str:
    extra = os.environ.get("PYTHONPATH")
    return f"{PACKAGE_ROOT}{os.pathsep}{extra}" if extra else str(PACKAGE_ROOT)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Signal its process group (every process here starts in a session of its own)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM its process group, then SIGKILL after `grace` seconds."""
    signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        proc.wait()


def stop_notice(d: Desktop) -> None:
    if d.notice is not None:
        stop_process(d.notice, 2)
    d.notice, d.notice_shown = None, None


def parse_args(argv: list[str] | None = None) -> Settings:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="deskfleet-vnc-host", description=__doc__.split("\n")[0])
    p.add_argument("--listen", default=env("DESKFLEET_VNC_LISTEN", "0.0.0.0:6080"),
                   help="the session port: noVNC and its WebSocket")
    p.add_argument("--path-prefix", default=env("DESKFLEET_VNC_PATH", "/"),
                   help="the app's gateway path (the gateway does not rewrite paths)")
    p.add_argument("--display", type=int, default=int(env("DESKFLEET_VNC_DISPLAY", "1")),
                   help="the first desktop's X display number")
    p.add_argument("--rfb-port", type=int, default=int(env("DESKFLEET_VNC_RFB_PORT", "5901")),
                   help="the first desktop's RFB port, on 127.0.0.1")
    p.add_argument("--desktops", type=int, default=None,
                   help="desktops per host (default: sessionsPerHost from the host config)")
    p.add_argument("--geometry", default=env("DESKFLEET_VNC_GEOMETRY", "1280x800"))
    p.add_argument("--session-command", default=env("DESKFLEET_SESSION_COMMAND", "xterm"),
                   help="each desktop's program; the desktop ends when it exits")
    p.add_argument("--report", default="/run/deskfleet-host/sessions.json")
    p.add_argument("--drain-dir", default="/run/deskfleet")
    p.add_argument("--host-config", default="/etc/deskfleet/host.json")
    p.add_argument("--home-base", default=env("DESKFLEET_VNC_HOMES", "/home/desktop/sessions"))
    p.add_argument("--control-socket", default="/tmp/deskfleet-vnc-host.sock")
    p.add_argument("--novnc", default="/usr/share/novnc")
    p.add_argument("--recordings", default=env("DESKFLEET_VNC_RECORDINGS", ""),
                   help="record sessions whose controls require it here (websockify's "
                   "recorder); without it such sessions are refused")
    p.add_argument("--max-upload-bytes", type=int, default=50 * 1024 * 1024)
    p.add_argument("--max-disconnected-seconds", type=int,
                   default=int(env("DESKFLEET_VNC_MAX_DISCONNECTED_SECONDS", "0")),
                   help="end a desktop that has had no viewer this long (0: never; a "
                   "disconnected desktop is kept for its user)")
    p.add_argument("--xvnc", default="Xvnc")
    a = p.parse_args(argv)

    def path(text: str) -> Path:  # absolute: the proxy works from noVNC's directory
        return Path(os.path.abspath(text))

    return Settings(
        listen=a.listen, path_prefix="/" + a.path_prefix.strip("/"), display=a.display,
        rfb_port=a.rfb_port, geometry=a.geometry,
        session_command=shlex.split(a.session_command), report=path(a.report),
        drain_dir=path(a.drain_dir), host_config=path(a.host_config),
        home_base=path(a.home_base), control_socket=path(a.control_socket),
        novnc=path(a.novnc), recordings=path(a.recordings) if a.recordings else None,
        max_upload_bytes=a.max_upload_bytes, desktops=a.desktops,
        max_disconnected_seconds=a.max_disconnected_seconds, xvnc=a.xvnc)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    supervisor = Supervisor(parse_args(argv))

    def stop(signum: int, frame: object) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    supervisor.run()
    return 0
