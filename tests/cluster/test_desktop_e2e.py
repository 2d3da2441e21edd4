"""A real desktop session end to end (issue 19), real parts only: the test bed's API
server, the operator and `deskfleet portal` as processes, Traefik reading the operator's
HTTPRoute and Middleware, oauth2-proxy signing users in at the test OIDC issuer, the
reference VNC host (hosts/vnc-desktop: Xvnc, websockify and noVNC from Debian's packages)
listening on its pool Service's ClusterIP with the real `deskfleet agent` beside it, and
Debian's headless Chromium. Every request of the browser goes through the gateway.

    Chromium --(workspace.test -> 127.0.0.1:<Traefik port>)--> Traefik
       /oauth2/*  -> oauth2-proxy            /, /launch/* -> deskfleet portal
       /desktop/* -> HTTPRoute + ForwardAuth(portal) -> pool Service ClusterIP:6080
                                                        = the reference host (noVNC + WS)

The pool has two pods (kwok): the reference host is the younger one, the older is a
stand-in host with an agent (tests/support/session_host.py), so a scale-in pass has a
choice to make. What the test shows, in order:

1. an agency nurse, whose policy forbids clipboard to the device, opens the desktop from
   the landing page; text copied inside the session never reaches the browser's
   clipboard (checked with navigator.clipboard) and the transfer area refuses her; she
   logs off inside the desktop and her session ends;
2. a clinician opens it: the browser shows the remote desktop (a screenshot), with the
   colour drawn by the program started in the session; copying works for him;
3. the WebSocket stays up with no input for 3x every responding timeout of the
   entrypoint it uses (Traefik's timeouts cut an idle keep-alive connection on it);
4. the agent reports 1 session; the tab closes; 1 disconnected session; a scale-in pass
   drains the empty host, not his; he opens the app again and finds the same program;
5. a drain with a 20 s deadline shows the notice inside his desktop, logs him off at
   the deadline, and the host leaves.

`DESKFLEET_SCREENSHOTS=<dir>` saves the screenshots (docs/ holds two);
`DESKFLEET_DESKTOP_ENTRYPOINT=web` and `DESKFLEET_DESKTOP_IDLE_SECONDS=370` make step 3
use Traefik's default timeouts (readTimeout 60 s, idleTimeout 180 s) for 2x the longest.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, WebSocket

from deskfleet.clock import parse_time

from ..conftest import Bed, Operator, wait_until
from ..support.browser import chromium
from ..support.oidc_issuer import MFA_AMR, TestUser
from ..support.process import REPO
from ..support.session_host import SessionHosts, session_hosts
from ..support.traefik import SHORT_TIMEOUT_SECONDS, Traefik
from ..support.vnc_host import DEBIAN_PYTHON, VncHost, running_vnc_host
from ..support.workspace import HOST, Workspace, running_workspace

pytestmark = pytest.mark.cluster

POOL, APP, PATH = "desktops", "desktop", "/desktop"
CLINICIAN = TestUser("patel", "dr.patel@northgate.example", ("clinicians",), MFA_AMR,
                     "Dr Patel")
AGENCY = TestUser("agency", "agency.nurse@northgate.example", ("agency-staff",), MFA_AMR,
                  "Agency Nurse")
NOTICE = "Ward 7 desktops are being patched tonight. Please save your work now."
DRAIN_SECONDS = 20
AMBER = (255, 184, 28)  # the host's notice window (hosts/vnc-desktop/.../notice.py)
PROBE = (700, 420)  # inside the program's coloured panel, clear of noVNC's control bar
NOTICE_PROBE = (820, 100)  # inside the notice window, over the program's window
SESSIONS = "deskfleet.io/sessions"
DISCONNECTED = "deskfleet.io/sessions-disconnected"
DRAINING = "deskfleet.io/draining-since"


def manifests(namespace: str, traefik: Traefik) -> list[dict[str, Any]]:
    def policy(name: str, group: str, **controls: Any) -> dict[str, Any]:
        return {"apiVersion": "deskfleet.io/v1alpha1", "kind": "AccessPolicy",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"subjects": {"groups": [group]}, "apps": {"names": [APP]},
                         "conditions": {"requireMFA": True}, "sessionControls": controls}}

    return [
        {"apiVersion": "deskfleet.io/v1alpha1", "kind": "SessionHostPool",
         "metadata": {"name": POOL, "namespace": namespace},
         "spec": {"image": "registry.northgate.example/deskfleet-vnc-desktop:1",
                  "protocol": "vnc", "port": 6080, "sessionsPerHost": 4,
                  "agent": {"sessionSource": "host"},
                  "scaling": {"minHosts": 1, "maxHosts": 3, "bufferSessions": 0,
                              "scaleInDelay": "2s", "demand": {"startupEstimate": "5s"},
                              "drain": {"forceLogoff": True, "maxWait": f"{DRAIN_SECONDS}s",
                                        "message": NOTICE, "logoffTimeout": "60s"}}}},
        {"apiVersion": "deskfleet.io/v1alpha1", "kind": "PublishedApp",
         "metadata": {"name": APP, "namespace": namespace},
         "spec": {"displayName": "Clinical desktop", "category": "Clinical",
                  "description": "Your desktop with the ward's applications.",
                  "poolRef": {"name": POOL},
                  "gateway": {"host": HOST, "path": PATH, "parentRef": {
                      "name": traefik.gateway, "namespace": traefik.namespace}}}},
        policy("clinicians-desktop", "clinicians", clipboardToClient=True, fileDownload=True),
        policy("agency-desktop", "agency-staff", clipboardToClient=False, fileDownload=False),
    ]


@dataclass
class Desk:
    """A browser tab on the desktop, with what its WebSockets carried."""

    page: Page
    frames: list[tuple[float, str, int]] = field(default_factory=list)  # (t, dir, bytes)
    sockets: list[WebSocket] = field(default_factory=list)
    closed: list[float] = field(default_factory=list)

    def canvas_origin(self) -> tuple[float, float]:
        box = self.page.eval_on_selector("#noVNC_container canvas", "e => { const r = "
                                         "e.getBoundingClientRect(); return [r.left, r.top]; }")
        return float(box[0]), float(box[1])

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """A pixel of the remote screen, as noVNC drew it."""
        rgba = self.page.evaluate(
            "([x, y]) => Array.from(document.querySelector('#noVNC_container canvas')"
            ".getContext('2d').getImageData(x, y, 1, 1).data)", [x, y])
        return int(rgba[0]), int(rgba[1]), int(rgba[2])

    def click(self, box: list[int]) -> None:
        """A click inside the remote desktop, at the middle of `box`."""
        left, top = self.canvas_origin()
        self.page.mouse.click(left + (box[0] + box[2]) / 2, top + (box[1] + box[3]) / 2)

    def gone(self) -> bool:
        """Has the desktop's WebSocket closed? (Playwright's sync API delivers events only
        while it is called: this waits a little through it.)"""
        self.page.wait_for_timeout(100)
        return bool(self.closed)

    def status(self) -> str:
        return str(self.page.eval_on_selector("#noVNC_status", "e => e.textContent"))

    def copy_from_session_clipboard(self) -> str:
        """What a user does to copy text out of the session with noVNC: open its clipboard
        panel, select the text the session sent, Ctrl+C. Returns the browser's clipboard."""
        self.page.evaluate("() => navigator.clipboard.writeText('nothing copied')")
        self.page.click("#noVNC_control_bar_handle")
        self.page.click("#noVNC_clipboard_button")
        self.page.click("#noVNC_clipboard_text")
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Control+C")
        text = str(self.page.evaluate("() => navigator.clipboard.readText()"))
        self.page.click("#noVNC_clipboard_button")  # the panel closes; the bar stays open
        return text

    def session_clipboard(self) -> str:
        return str(self.page.eval_on_selector("#noVNC_clipboard_text", "e => e.value"))


def near(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def landing_page(context: BrowserContext, workspace: Workspace, user: TestUser) -> Page:
    """The landing page in a new tab, signing in at the test issuer when asked to (the
    first time, and again once the ID token the sign-in cookie holds has expired)."""
    page = context.new_page()
    page.set_viewport_size({"width": 1100, "height": 760})
    page.goto(f"{workspace.base_url}/")
    sign_in = f"button[value={user.sub}]"  # the test issuer's sign-in page
    page.wait_for_selector(f"main, {sign_in}")
    if page.query_selector(sign_in) is not None:
        page.click(sign_in)
        page.wait_for_url(f"{workspace.base_url}/")
        page.wait_for_selector("main")
    return page


def open_desktop(page: Page, namespace: str) -> Desk:
    """Click the app on the landing page and wait for noVNC to be connected."""
    desk = Desk(page)

    def on_socket(ws: WebSocket) -> None:
        desk.sockets.append(ws)
        ws.on("framereceived", lambda f: desk.frames.append((time.monotonic(), "in", len(f))))
        ws.on("framesent", lambda f: desk.frames.append((time.monotonic(), "out", len(f))))
        ws.on("close", lambda _: desk.closed.append(time.monotonic()))

    page.on("websocket", on_socket)
    page.click(f'li.app[data-app="{namespace}/{APP}"] a')
    page.wait_for_function("() => (document.querySelector('#noVNC_status') || {})"
                           ".textContent?.startsWith('Connected')", timeout=30_000)
    return desk


def program(workdir: Path, pid: int | None = None) -> dict[str, Any]:
    """What the session's program drew (tests/support/desktop_app.py), once it has."""
    state_file = workdir / "app-state.json"

    def drawn() -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return None
        return state if pid is None or state["pid"] == pid else None

    result: dict[str, Any] = wait_until(drawn, timeout=20, what="the session's program")
    return result


def annotations(bed: Bed, namespace: str, pod: str) -> dict[str, str]:
    return ((bed.get("pod", pod, namespace) or {}).get("metadata") or {}).get(
        "annotations") or {}


def pool_status(bed: Bed, namespace: str) -> dict[str, Any]:
    return dict((bed.get("shp", POOL, namespace) or {}).get("status") or {})


def live_pods(bed: Bed, namespace: str) -> list[dict[str, Any]]:
    return sorted((p for p in bed.list("pods", namespace, f"deskfleet.io/pool={POOL}")
                   if not p["metadata"].get("deletionTimestamp")),
                  key=lambda p: p["metadata"]["creationTimestamp"])


def ready_pods(bed: Bed, namespace: str, count: int) -> list[str]:
    def ready() -> list[str] | None:
        pods = live_pods(bed, namespace)
        names = [p["metadata"]["name"] for p in pods if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or [])]
        return names if len(names) == count == len(pods) else None

    result: list[str] = wait_until(ready, timeout=60, what=f"{count} ready hosts")
    return result


def set_min_hosts(bed: Bed, namespace: str, count: int) -> None:
    bed.kubectl("patch", "shp", POOL, "-n", namespace, "--type=merge",
                "-p", json.dumps({"spec": {"scaling": {"minHosts": count}}}))


def keep_alive_cut_after(port: int, limit: float) -> float:
    """Open a keep-alive connection to Traefik's entrypoint, make one request, then say
    nothing: how long until Traefik closes it (its idle timeout, live on this entrypoint);
    infinity if it is still open after `limit` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        s.sendall(f"GET /oauth2/auth HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        s.recv(65536)
        answered = time.monotonic()
        try:
            while s.recv(65536):
                pass
        except TimeoutError:
            return float("inf")
        return time.monotonic() - answered


@dataclass
class Bench:
    bed: Bed
    namespace: str
    workspace: Workspace
    operator: Operator
    host: VncHost
    pod: str  # the reference host's pod
    stand_ins: SessionHosts
    workdir: Path
    secret: str


@pytest.fixture
def bench(bed: Bed, traefik: Traefik, gateway_bin: Path, tmp_path: Path) -> Iterator[Bench]:
    namespace = f"desk-{uuid.uuid4().hex[:6]}"
    bed.kubectl("create", "namespace", namespace)
    secret = f"NHS-{uuid.uuid4().hex[:10]}"
    try:
        with running_workspace(bed, namespace, traefik, gateway_bin, tmp_path / "workspace",
                               (CLINICIAN, AGENCY)) as workspace, \
                session_hosts(bed.env, bed.kubeconfig, namespace,
                              tmp_path / "stand-ins") as stand_ins:
            operator = Operator(bed, namespace, tmp_path / "workspace" / "operator.log",
                                extra_env=workspace.operator_env)
            operator.start()
            try:
                bed.apply(manifests(namespace, traefik))
                # The older pod is a stand-in host; the reference host is the younger one,
                # so a scale-in pass that ignored its disconnected session would pick it.
                (older,) = ready_pods(bed, namespace, 1)
                stand_ins.add(older)
                time.sleep(1.1)  # creation timestamps have whole seconds
                set_min_hosts(bed, namespace, 2)
                pod = next(p for p in ready_pods(bed, namespace, 2) if p != older)
                app = [DEBIAN_PYTHON, str(REPO / "tests" / "support" / "desktop_app.py"),
                       "--state", str(tmp_path / "app-state.json"), "--secret", secret]
                with running_vnc_host(bed, namespace, pod, POOL, tmp_path / "host",
                                      path_prefix=PATH, session_command=app) as host:
                    wait_until(lambda: annotations(bed, namespace, pod).get(SESSIONS) == "0",
                               what="the reference host's agent reporting")
                    token = workspace.token(CLINICIAN.sub)
                    traefik.wait_served(HOST, f"{PATH}/", timeout=90,
                                        until=lambda r: r.status == 302,
                                        headers={"Authorization": f"Bearer {token}"})
                    yield Bench(bed, namespace, workspace, operator, host, pod, stand_ins,
                                tmp_path, secret)
            finally:
                operator.stop()
                crashes = [line for line in operator.logs().splitlines()
                           if "Traceback" in line]
                assert not crashes, operator.logs()[-5000:]
    finally:
        bed.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_desktop_session_end_to_end(bench: Bench, traefik: Traefik, tmp_path: Path) -> None:
    try:
        session_end_to_end(bench, traefik, tmp_path)
    except BaseException:
        print(bench.host.logs())
        raise


def session_end_to_end(bench: Bench, traefik: Traefik, tmp_path: Path) -> None:
    started = time.monotonic()
    bed, ns, pod, host, workspace = (bench.bed, bench.namespace, bench.pod, bench.host,
                                     bench.workspace)
    shots = Path(os.environ.get("DESKFLEET_SCREENSHOTS", tmp_path))
    default_timeouts = os.environ.get("DESKFLEET_DESKTOP_ENTRYPOINT") == "web"
    entry_port = traefik.port if default_timeouts else traefik.short_timeouts_port
    idle = float(os.environ.get("DESKFLEET_DESKTOP_IDLE_SECONDS", 3 * SHORT_TIMEOUT_SECONDS))
    # No DNS here: the browser resolves workspace.test, on whatever port a URL names, to
    # that Traefik entrypoint (Chromium's host-resolver rules map host and port), so the
    # app's port-less URL from /launch reaches the gateway unchanged.
    hosts = {HOST: f"127.0.0.1:{entry_port}"}
    origin = f"http://{HOST}"
    # The clipboard API exists only in secure contexts: what HTTPS gives a real
    # deployment's app URL, this switch gives the bed's plain-HTTP one.
    secure = (f"--unsafely-treat-insecure-origin-as-secure={origin}",)
    timings: dict[str, float] = {}

    # 1. No clipboard to the device for the agency nurse.
    with chromium(tmp_path / "agency", hosts=hosts, args=secure) as browser:
        browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
        desk = open_desktop(landing_page(browser, workspace, AGENCY), ns)
        drawn = program(bench.workdir)
        wait_until(lambda: near(desk.pixel(*PROBE), rgb(drawn["colour"])),
                   what="her desktop's program on screen")
        desk.click(drawn["copyButton"])  # "Copy patient ID", inside the session
        time.sleep(2)
        assert desk.session_clipboard() == ""
        assert bench.secret not in desk.copy_from_session_clipboard()
        files = desk.page.evaluate(f"() => fetch('{PATH}/files/').then(r => r.status)")
        assert files == 403  # no file download for her either
        desk.click(drawn["logoffButton"])  # she logs off inside the desktop
        wait_until(lambda: host.sessions() == [], what="her session ended")
        wait_until(desk.gone, what="her WebSocket closed")
        (bench.workdir / "app-state.json").unlink()  # the next desktop's program writes anew
    assert "agency.nurse@northgate.example" in host.log_path.read_text()

    # 2. The clinician's desktop in the browser.
    with chromium(tmp_path / "patel", hosts=hosts, args=secure) as browser:
        browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
        landing = landing_page(browser, workspace, CLINICIAN)
        clicked = time.monotonic()
        desk = open_desktop(landing, ns)
        drawn = program(bench.workdir)
        wait_until(lambda: near(desk.pixel(*PROBE), rgb(drawn["colour"])),
                   what="the session's program on screen")
        timings["click to desktop"] = time.monotonic() - clicked
        assert desk.page.url.startswith(f"{origin}{PATH}/vnc.html")
        desk.page.screenshot(path=str(shots / "desktop-session.png"))
        desk.click(drawn["copyButton"])
        wait_until(lambda: desk.session_clipboard() == bench.secret,
                   what="the session's clipboard in noVNC")
        assert desk.copy_from_session_clipboard() == bench.secret  # allowed for him
        assert desk.page.evaluate(f"() => fetch('{PATH}/files/').then(r => r.status)") == 200
        upload = desk.page.evaluate(f"() => fetch('{PATH}/files/notes.txt', "
                                    "{method: 'PUT', body: 'x'}).then(r => r.status)")
        assert upload == 403  # download allowed to him, upload not
        wait_until(lambda: annotations(bed, ns, pod).get(SESSIONS) == "1"
                   and annotations(bed, ns, pod).get(DISCONNECTED) == "0",
                   what="the agent reporting 1 active session")

        # 3. No input at all; meanwhile Traefik cuts an idle keep-alive connection.
        cut: list[float] = []
        probe = threading.Thread(target=lambda: cut.append(keep_alive_cut_after(
            entry_port, limit=idle + 30)))
        probe.start()
        socket_count, quiet_from = len(desk.sockets), time.monotonic()
        desk.page.wait_for_timeout(idle * 1000)  # not time.sleep: frames are seen as they come
        frames = [f for f in desk.frames if f[0] >= quiet_from]
        probe.join(timeout=60)
        assert desk.status().startswith("Connected") and not desk.closed
        assert len(desk.sockets) == socket_count == 1  # the same WebSocket, never reopened
        assert near(desk.pixel(*PROBE), rgb(drawn["colour"]))
        limit = 180 if default_timeouts else SHORT_TIMEOUT_SECONDS  # Traefik's idleTimeout
        assert cut and limit - 1 < cut[0] < limit + 3, cut
        print(f"\n[desktop] idle {idle:.0f}s through the "
              f"{'default' if default_timeouts else 'short-timeout'} entrypoint: the "
              f"WebSocket stayed open ({len(frames)} frames, "
              f"{sum(f[2] for f in frames)} bytes in that time); a keep-alive connection "
              f"idle on the same entrypoint was closed after {cut[0]:.1f}s")

        # 4. The tab closes: the session is kept, disconnected, and counts.
        desk.page.close()
        wait_until(lambda: annotations(bed, ns, pod).get(DISCONNECTED) == "1"
                   and annotations(bed, ns, pod).get(SESSIONS) == "1",
                   what="the agent reporting 1 disconnected session")
        assert [s["state"] for s in host.sessions()] == ["disconnected"]
        set_min_hosts(bed, ns, 0)  # a surplus host: the scale-in pass must choose
        older = next(p for p in bench.stand_ins.hosts)
        wait_until(lambda: DRAINING in annotations(bed, ns, older), timeout=30,
                   what="the scale-in pass draining the empty host")
        time.sleep(3)  # more passes
        status = pool_status(bed, ns)
        assert DRAINING not in annotations(bed, ns, pod), status.get("scalingReason")
        assert pod in [p["metadata"]["name"] for p in live_pods(bed, ns)]
        labels = (bed.get("pod", pod, ns) or {})["metadata"]["labels"]
        assert labels["deskfleet.io/busy"] == "true"  # the PodDisruptionBudget covers it
        assert status["disconnectedSessions"] == 1
        print(f"[desktop] tab closed: 1 disconnected session; scale-in drained the empty "
              f"host, not this one ({status.get('scalingReason')})")

        reopened = time.monotonic()
        desk = open_desktop(landing_page(browser, workspace, CLINICIAN), ns)
        wait_until(lambda: near(desk.pixel(*PROBE), rgb(drawn["colour"])),
                   what="the same program's colour after the reconnect")
        timings["reopen to desktop"] = time.monotonic() - reopened
        assert program(bench.workdir)["pid"] == drawn["pid"]  # the same program, still running
        wait_until(lambda: annotations(bed, ns, pod).get(DISCONNECTED) == "0",
                   what="the agent reporting the session active again")

        # 5. A drain with a short deadline: notice, logoff at the deadline, host gone.
        wait_until(lambda: older not in [p["metadata"]["name"] for p in live_pods(bed, ns)],
                   timeout=60, what="the empty host removed")
        set_min_hosts(bed, ns, 2)
        newer = wait_until(lambda: next((p["metadata"]["name"] for p in live_pods(bed, ns)
                                         if p["metadata"]["name"] != pod), None),
                           what="a host to take over")
        bench.stand_ins.add(newer, "active", "active")
        wait_until(lambda: annotations(bed, ns, newer).get(SESSIONS) == "2",
                   what="the new host's sessions reported")
        set_min_hosts(bed, ns, 0)
        told = wait_until(lambda: (a := annotations(bed, ns, pod)).get(
            "deskfleet.io/logoff-deadline") and a, timeout=30, what="the drain's deadline")
        deadline = told["deskfleet.io/logoff-deadline"]
        assert told["deskfleet.io/drain-message"] == NOTICE
        wait_until(lambda: near(desk.pixel(*NOTICE_PROBE), AMBER), timeout=20,
                   what="the notice inside the desktop")
        desk.page.screenshot(path=str(shots / "desktop-drain-notice.png"))
        notice = json.loads((host.drain_dir / "notice.json").read_text())
        assert (notice["message"], notice["deadline"]) == (NOTICE, deadline)
        assert near(desk.pixel(*PROBE), rgb(drawn["colour"]))  # still working under it
        wait_until(desk.gone, timeout=DRAIN_SECONDS + 30, what="the logoff at the deadline")
        logged_off = time.time()
        deadline_at = seconds(deadline)
        assert logged_off >= deadline_at, "logged off before the deadline"
        wait_until(lambda: host.sessions() == [], what="the host reporting no session")
        wait_until(host.mirror.gone.is_set, timeout=60, what="the host's pod removed")
        gone = time.time()
    print(f"[desktop] drain: notice with a {DRAIN_SECONDS}s deadline shown in the session; "
          f"logged off {logged_off - deadline_at:.1f}s after the deadline; pod removed "
          f"{gone - logged_off:.1f}s later")
    print(f"[desktop] click to desktop {timings['click to desktop']:.1f}s, reopen "
          f"{timings['reopen to desktop']:.1f}s; the whole test took "
          f"{time.monotonic() - started:.0f}s")


def seconds(text: str) -> float:
    moment = parse_time(text)
    assert moment is not None, text
    return moment.timestamp()
