"""Clients for the gateway tests, from a chosen loopback source address (the tests'
stand-in for a client's country): a plain HTTP/1.1 request with any headers that follows
no redirects and returns whatever status came back, and a WebSocket round trip."""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            host: str | None = None, source: str = "127.0.0.1", body: bytes | None = None,
            timeout: float = 10) -> Response:
    """Send one request to `url` from the loopback address `source`. `host` sets the
    Host header (the gateway routes on it) while the connection goes to the URL's
    address."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname and parts.scheme == "http", url
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout,
                                      source_address=(source, 0))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    all_headers = dict(headers or {})
    if host:
        all_headers["Host"] = host
    try:
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def websocket_roundtrip(url: str, *, host: str | None = None, message: str = "ping",
                        headers: dict[str, str] | None = None, source: str = "127.0.0.1",
                        timeout: float = 10) -> tuple[Any, str]:
    """Open a WebSocket to `url` (ws://...) from `source`, read the stand-in host's
    greeting (its JSON description of the upgrade request), send `message` and return
    (greeting, echo)."""
    async def run() -> tuple[Any, str]:
        connector = aiohttp.TCPConnector(local_addr=(source, 0))
        all_headers = {**(headers or {}), **({"Host": host} if host else {})}
        async with aiohttp.ClientSession(connector=connector) as session, \
                session.ws_connect(url, headers=all_headers,
                                   timeout=aiohttp.ClientWSTimeout(ws_close=timeout)) as ws:
            greeting = await ws.receive_json(timeout=timeout)
            await ws.send_str(message)
            echo = await ws.receive_str(timeout=timeout)
            return greeting, echo

    return asyncio.run(run())
