"""The session port: Debian's websockify serving Debian's noVNC, with deskfleet's checks.

websockify is used as the library it is (its `WebSocketProxy` server, one process per
connection, and its request handler), with a handler subclass that:

- serves noVNC under the app's path prefix (the gateway does not rewrite paths), and
  sends `<prefix>/` to `vnc.html` with the settings this host needs (connect at once,
  the desktop sized to the browser, the WebSocket at `<prefix>/websockify`);
- on the WebSocket upgrade, reads the user and the session controls the gateway copied
  from the portal's answer, asks the supervisor for the user's desktop (a new one, or
  theirs again), and only then bridges the WebSocket to that desktop's Xvnc; records
  the connection with websockify's recorder when the controls require it;
- serves the session's file transfer area, `<prefix>/files/`, per request as the
  controls allow: GET (download) with `fileDownload`, PUT (upload) with `fileUpload`,
  to the desktop's owner only.

Needs Debian's python3-websockify (run with Debian's python3).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from websockify.websocketproxy import ProxyRequestHandler, WebSocketProxy

from .controls import Controls, ControlsError, baseline, choose, refusals
from .web import FILE_NAME, novnc_location, read_host_config, relative

log = logging.getLogger("deskfleet-vnc-host.proxy")
USER_HEADER, CONTROLS_HEADER = "X-Deskfleet-User", "X-Deskfleet-Controls"


def ask(control: str, request: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(control)
        sock.sendall(json.dumps(request).encode() + b"\n")
        answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())
    return answer


class Handler(ProxyRequestHandler):
    # --- who is asking, with which controls -------------------------------------------

    def settings(self) -> argparse.Namespace:
        return self.server.deskfleet

    def relative(self) -> str | None:
        return relative(self.settings().path_prefix, self.path)

    def user(self) -> str | None:
        value = self.headers.get(USER_HEADER)
        return unquote(value) if value else None

    def controls(self) -> tuple[Controls, str]:
        try:
            pool = baseline(read_host_config(Path(self.settings().host_config)))
        except (OSError, ValueError) as err:
            log.warning("host config unreadable: %s", err)
            pool = None
        return choose(self.headers.get(CONTROLS_HEADER), pool)

    def refuse(self, status: int, reason: str) -> None:
        log.info("refused %s %s for %s: %s", self.command, self.path, self.user(), reason)
        body = (reason + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # A refused upload's body is never read: the connection cannot carry another
        # request (the gateway keeps its connections to the host alive), so it closes.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    # --- the desktop's WebSocket --------------------------------------------------------

    def handle_upgrade(self) -> None:
        s = self.settings()
        if self.relative() != "/websockify":
            self.refuse(404, "no WebSocket here")
            return
        user = self.user()
        if user is None:
            self.refuse(403, "no user: the request did not come through the portal")
            return
        try:
            controls, source = self.controls()
        except ControlsError as err:
            self.refuse(403, f"session controls: {err}")
            return
        problems = refusals(controls, can_record=bool(s.recordings))
        if problems:
            self.refuse(403, "; ".join(problems))
            return
        try:
            answer = ask(s.control, {"op": "logon", "user": user, "controls": controls.wire()})
        except (OSError, ValueError) as err:
            self.refuse(503, f"the host supervisor does not answer: {err}")
            return
        if not answer.get("ok"):
            self.refuse(int(answer.get("status", 403)), str(answer.get("reason")))
            return
        self.server.target_host, self.server.target_port = "127.0.0.1", int(answer["port"])
        if controls.recording:
            Path(s.recordings).mkdir(parents=True, exist_ok=True)
            self.record = os.path.join(s.recordings, f"{answer['session'].strip(':')}-"
                                       f"{time.strftime('%Y%m%dT%H%M%S')}")
        log.info("desktop %s for %s (%s session, controls from the %s%s)", answer["session"],
                 user, "new" if answer.get("new") else "its", source,
                 ", recorded" if controls.recording else "")
        super().handle_upgrade()

    # --- pages and files ----------------------------------------------------------------

    def do_GET(self) -> None:
        rel = self.relative()
        if rel is None:
            self.send_error(404)
        elif rel in ("", "/"):
            self.send_response(302)
            self.send_header("Location", novnc_location(self.settings().path_prefix))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif rel == "/files" or rel.startswith("/files/"):
            self.transfer(rel[len("/files"):].lstrip("/"))
        elif rel == "/websockify":
            self.send_error(400, "WebSocket only")
        else:
            super().do_GET()  # websockify's: noVNC's files (translate_path below)

    def do_PUT(self) -> None:
        rel = self.relative()
        if rel is not None and rel.startswith("/files/"):
            self.transfer(rel[len("/files/"):])
        else:
            self.send_error(405)

    def translate_path(self, path: str) -> str:
        rel = relative(self.settings().path_prefix, path)
        return str(super().translate_path(rel or "/"))

    def transfer(self, name: str) -> None:
        """The desktop's ~/Transfer: download (GET) and upload (PUT), per the request's
        controls, for the desktop's owner."""
        s = self.settings()
        user = self.user()
        try:
            controls, _ = self.controls()
        except ControlsError as err:
            self.refuse(403, f"session controls: {err}")
            return
        upload = self.command == "PUT"
        if not (controls.file_upload if upload else controls.file_download):
            self.refuse(403, f"file {'upload' if upload else 'download'} is not allowed "
                        "for you here")
            return
        if user is None:
            self.refuse(403, "no user: the request did not come through the portal")
            return
        try:
            session = ask(s.control, {"op": "session", "user": user}).get("session")
        except (OSError, ValueError) as err:
            self.refuse(503, f"the host supervisor does not answer: {err}")
            return
        if not session or session.get("user") != user:
            self.refuse(403, "you have no desktop on this host")
            return
        area = Path(session["transfer"])
        if not name and not upload:
            self.send_json({"files": [{"name": p.name, "size": p.stat().st_size}
                                      for p in sorted(area.iterdir())
                                      if p.is_file() and FILE_NAME.match(p.name)]})
            return
        name = unquote(name)
        if not FILE_NAME.match(name):
            self.refuse(400, "file names are letters, digits, '.', '_', '-' and spaces")
            return
        if upload:
            self.receive(area / name)
        else:
            self.send_file(area / name)

    def send_json(self, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, path: Path) -> None:
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Disposition", f'attachment; filename="{path.name}"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def receive(self, path: Path) -> None:
        try:
            size = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.refuse(411, "Content-Length required")
            return
        if size < 0 or size > self.settings().max_upload_bytes:
            self.refuse(413, "file too large")
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as out:
            left = size
            while left:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
        if left:
            Path(tmp).unlink(missing_ok=True)
            self.refuse(400, "the upload was cut short")
            return
        os.replace(tmp, path)
        log.info("upload by %s: %s (%d bytes)", self.user(), path.name, size)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", required=True, help="host:port")
    p.add_argument("--control", required=True, help="the supervisor's unix socket")
    p.add_argument("--path-prefix", default="/")
    p.add_argument("--novnc", default="/usr/share/novnc")
    p.add_argument("--host-config", default="/etc/deskfleet/host.json")
    p.add_argument("--recordings", default="")
    p.add_argument("--max-upload-bytes", type=int, default=50 * 1024 * 1024)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.umask(0o077)  # recordings and uploads: readable by this user only
    host, _, port = args.listen.rpartition(":")
    # No TLS here (the gateway terminates it): no certificate, so websockify says so.
    server = WebSocketProxy(RequestHandlerClass=Handler, listen_host=host,
                            listen_port=int(port), web=args.novnc, file_only=True,
                            cert="/nonexistent/no-tls.pem", target_host="127.0.0.1",
                            target_port=1)
    server.deskfleet = args
    server.start_server()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
