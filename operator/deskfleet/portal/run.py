"""`deskfleet portal`: load and check every setting, then serve until SIGTERM.

A setting that cannot work (no JWKS, an unreadable GeoIP file, no cluster credentials)
stops the portal at start with one line naming it and exit code 2 — a pod that says
why in `kubectl logs`, not a traceback loop. Losing something at runtime (the API
server, the identity provider) does not stop it: requests are refused (fail closed),
counted, and /readyz says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import aiohttp
from aiohttp import web

from .app import Portal, build_apps, describe
from .audit import AuditLog
from .client import GeoIP
from .directory import Directory
from .identity import JWKS_REFRESH_SECONDS, IdentityResolver, TokenVerifier, load_verifier
from .settings import PortalSettings
from .watch import start_reflectors

log = logging.getLogger("deskfleet.portal")


class StartupError(Exception):
    """A setting the portal cannot start with (the message names it)."""


async def _refresh_keys(verifier: TokenVerifier) -> None:
    while True:
        await asyncio.sleep(JWKS_REFRESH_SECONDS)
        await verifier.refresh(force=True)


async def serve(settings: PortalSettings, stop: asyncio.Event | None = None) -> None:
    from ..kube.client import Kube, load_api_client

    stop = stop or asyncio.Event()
    session = aiohttp.ClientSession()
    geoip: GeoIP | None = None
    try:
        try:
            verifier = await load_verifier(settings, session)
            geoip = GeoIP(settings.geoip_database) if settings.geoip_database else None
            audit = AuditLog(settings.audit_log)
        except (ValueError, OSError) as err:
            raise StartupError(str(err)) from err
        try:
            kube = Kube(load_api_client())
        except Exception as err:  # the kubernetes package raises several kinds
            raise StartupError(f"no cluster credentials (in-cluster or KUBECONFIG): {err}"
                               ) from err
        directory = Directory(namespaces=tuple(settings.namespaces))
        resolver = IdentityResolver(settings, verifier, session)
        portal = Portal(settings, directory, resolver, verifier, geoip, audit)
        log.info("portal starting: %s", describe(portal))
        watch_stop, _ = start_reflectors(kube, directory, list(settings.namespaces),
                                         asyncio.get_running_loop())
        public, internal = build_apps(portal)
        runners = [web.AppRunner(public, access_log=None)]
        if settings.internal_port:
            runners.append(web.AppRunner(internal, access_log=None))
        else:
            public.add_subapp("/-/", internal)
        ports = [settings.port, settings.internal_port]
        for runner, port in zip(runners, ports, strict=False):
            await runner.setup()
            try:
                await web.TCPSite(runner, settings.listen_address, port,
                                  reuse_address=True).start()
            except OSError as err:
                raise StartupError(f"cannot listen on {settings.listen_address}:{port}: "
                                   f"{err.strerror}") from err
        tasks = [asyncio.create_task(_refresh_keys(verifier))] if verifier else []
        log.info("portal listening on %s:%d (internal %d)", settings.listen_address,
                 settings.port, settings.internal_port)
        await stop.wait()
        watch_stop.set()
        for task in tasks:
            task.cancel()
        for runner in runners:
            await runner.cleanup()
        audit.close()
    finally:
        await session.close()
        if geoip is not None:
            geoip.close()


def run_portal(settings: PortalSettings) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    try:
        asyncio.run(main())
    except StartupError as err:
        print(f"deskfleet portal: {err}", file=sys.stderr)
        return 2
    return 0
