"""Serve an aiohttp application on a loopback address from a background thread, for as
long as a `with` block lasts. The small servers of the gateway tests (stand-in hosts,
the test OIDC issuer, stand-in authorizers) are aiohttp applications served this way."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
from collections.abc import Iterator

from aiohttp import web


def _loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"test servers listen on loopback only, not {host}")


@contextlib.contextmanager
def serving(app: web.Application, host: str, port: int) -> Iterator[str]:
    """Serve `app` on host:port (a loopback address); yield its base URL."""
    _loopback(host)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"aioserver-{host}:{port}",
                              daemon=True)
    thread.start()
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, host, port, reuse_address=True).start()

    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=15)
        yield f"http://{host}:{port}"
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        loop.close()
