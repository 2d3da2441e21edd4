"""The operator's side of the portal's `/v1/stats`: every few seconds, read each portal
replica's counters, keep them in `RUNTIME.portal_stats`, and queue the pools whose logon
demand changed (their scaling pass reads it) and, at most once a minute, the dry-run
policies whose figures changed (their status reports them).

Replicas are found from the portal's internal Service's EndpointSlices
(DESKFLEET_PORTAL_STATS_SERVICE, which the chart sets), or listed outright
(DESKFLEET_PORTAL_STATS_URLS, for a portal outside the cluster). A replica that does not
answer is skipped; if none answers, `demand_signal()` says so and pools report it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from ..api.kinds import ACCESS_POLICY, SESSION_HOST_POOL
from ..kube.client import Kube, KubeError
from ..metrics import PORTAL_REPLICAS_REPORTING
from ..portal_stats import parse
from .runtime import RUNTIME

log = logging.getLogger("deskfleet.portal-stats")

POLICY_STATUS_PERIOD = 60.0  # dry-run counts move every request: report them calmly
SLICES = "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"


def endpoint_urls(slices: list[dict[str, Any]], port_name: str = "internal") -> list[str]:
    """`http://<address>:<port>/v1/stats` for every ready endpoint of the slices."""
    urls = []
    for item in slices:
        ports = item.get("ports") or []
        port = next((p.get("port") for p in ports if p.get("name") == port_name),
                    ports[0].get("port") if len(ports) == 1 else None)
        if not port:
            continue
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                host = f"[{address}]" if ":" in address else address
                urls.append(f"http://{host}:{port}/v1/stats")
    return sorted(set(urls))


def _discover(kube: Kube, service: str) -> list[str]:
    namespace, _, name = service.partition("/")
    listing = kube.request("GET", SLICES.format(namespace=namespace),
                           query={"labelSelector": f"kubernetes.io/service-name={name}"})
    return endpoint_urls(listing.get("items") or [])


async def _fetch(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
        if response.status != 200:
            raise ValueError(f"{url} answered {response.status}")
        return await response.json(content_type=None)


async def collect() -> None:
    settings = RUNTIME.settings
    if not (settings.portal_stats_urls or settings.portal_stats_service):
        return
    loop = asyncio.get_running_loop()
    last_policy_flush = 0.0
    pending_policies: set[tuple[str, str]] = set()
    async with aiohttp.ClientSession() as session:
        while True:
            urls = list(settings.portal_stats_urls)
            if settings.portal_stats_service and RUNTIME.kube is not None:
                try:
                    urls += await loop.run_in_executor(
                        None, _discover, RUNTIME.kube, settings.portal_stats_service)
                except KubeError as err:
                    log.warning("cannot find the portal's replicas: %s", err)
            answers = await asyncio.gather(*(_fetch(session, u) for u in urls),
                                           return_exceptions=True)
            samples = []
            for url, answer in zip(urls, answers, strict=True):
                try:
                    if isinstance(answer, BaseException):
                        raise answer
                    samples.append(parse(answer))
                except (TimeoutError, ValueError, aiohttp.ClientError, OSError) as err:
                    log.debug("portal replica %s gave no stats: %s", url, err)
            RUNTIME.portal_stats_seen = (time.monotonic(), len(samples))
            PORTAL_REPLICAS_REPORTING.set(len(samples))
            pools, policies = RUNTIME.portal_stats.add(samples, time.monotonic())
            for namespace, pool in pools:
                RUNTIME.queue.add((SESSION_HOST_POOL.kind, namespace, pool))
            pending_policies |= policies
            if pending_policies and time.monotonic() - last_policy_flush >= \
                    POLICY_STATUS_PERIOD:
                for namespace, policy in pending_policies:
                    RUNTIME.queue.add((ACCESS_POLICY.kind, namespace, policy), low=True)
                pending_policies.clear()
                last_policy_flush = time.monotonic()
            await asyncio.sleep(settings.portal_stats_period_seconds)


def demand_signal() -> str:
    """"" when the portal's counts reach the operator, else why not (for pool status)."""
    settings = RUNTIME.settings
    if not (settings.portal_stats_urls or settings.portal_stats_service):
        return ("no portal to read launches from (DESKFLEET_PORTAL_STATS_SERVICE is not "
                "set): scale-out sees only sessions that already exist")
    seen_at, replicas = RUNTIME.portal_stats_seen
    stale = time.monotonic() - seen_at > 3 * settings.portal_stats_period_seconds + 5
    if replicas == 0 or stale:
        return ("no portal replica answered /v1/stats recently: scale-out sees only "
                "sessions that already exist")
    return ""
