"""Stand-in session hosts: small HTTP (and WebSocket) servers listening on a Service's
ClusterIP:port, which on the test bed is a loopback address (hack/testbed.py's
SERVICE_CIDR). A gateway on this machine that dials the Service's ClusterIP (Traefik with
`nativeLBByDefault`, or the ingress-nginx `service-upstream` annotation) reaches them.

Every answer says which host answered and echoes the request as the host received it,
headers included, so a test sees what the gateway forwarded (identity and controls
headers from the authorizer) and that a client could not forge them:

    {"host": "desk-0", "service": "ns/desk", "port": 8080, "method": "GET",
     "path": "/epr/x", "query": "a=1", "peer": "127.0.0.1",
     "headers": [["Host", "..."], ["X-Forwarded-For", "..."], ...]}

A WebSocket upgrade on any path is accepted: the host first sends the same JSON
(with "websocket": true), then echoes every text message back.

When a Service has several hosts, they take requests in turn (as kube-proxy would spread
them); `hits` counts what each one answered.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .aioserver import serving


@dataclass
class StandInHosts:
    """What `serve_service` started: the Service's address and who answered."""

    namespace: str
    service: str
    cluster_ip: str
    ports: list[int]
    hosts: list[str]
    hits: Counter[str] = field(default_factory=Counter)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [f"http://{self.cluster_ip}:{p}" for p in self.ports]

    def headers_seen(self, name: str) -> list[list[str]]:
        """For each request received, every value of header `name` (case-insensitive)."""
        return [[v for k, v in r["headers"] if k.lower() == name.lower()]
                for r in self.requests]


def _app(state: StandInHosts, port: int) -> web.Application:
    turn = itertools.cycle(state.hosts)
    lock = threading.Lock()

    def describe(request: web.Request, host: str) -> dict[str, Any]:
        return {"host": host, "service": f"{state.namespace}/{state.service}", "port": port,
                "method": request.method, "path": request.path,
                "query": request.query_string, "peer": request.remote,
                "headers": [[k, v] for k, v in request.headers.items()]}

    async def handle(request: web.Request) -> web.StreamResponse:
        with lock:
            host = next(turn)
            state.hits[host] += 1
        info = describe(request, host)
        state.requests.append(info)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_json({**info, "websocket": True})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
            return ws
        return web.json_response(info, headers={"X-Stand-In-Host": host})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@contextlib.contextmanager
def serve_service(bed: Any, namespace: str, service: str,
                  hosts: Sequence[str] | None = None) -> Iterator[StandInHosts]:
    """Listen on every port of Service `namespace/service`, at its ClusterIP, until the
    block ends. `hosts` names the stand-in hosts behind it (default: one, named after
    the Service). `bed` is the tests' Bed (anything with `.get(kind, name, ns)`)."""
    svc = bed.get("service", service, namespace)
    assert svc, f"no Service {namespace}/{service}"
    cluster_ip = svc["spec"].get("clusterIP")
    assert cluster_ip and cluster_ip != "None", f"Service {namespace}/{service} has no ClusterIP"
    ports = [int(p["port"]) for p in svc["spec"].get("ports") or []
             if p.get("protocol", "TCP") == "TCP"]
    assert ports, f"Service {namespace}/{service} has no TCP port"
    state = StandInHosts(namespace, service, cluster_ip, ports, list(hosts or [service]))
    with contextlib.ExitStack() as stack:
        for port in ports:
            stack.enter_context(serving(_app(state, port), cluster_ip, port))
        yield state
