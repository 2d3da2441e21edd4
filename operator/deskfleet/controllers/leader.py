"""Leader election through a coordination.k8s.io Lease, as kube-controller-manager and
controller-runtime do it.

Every replica runs Kopf's watches and keeps its caches warm; only the Lease holder's
workers reconcile. A holder renews every `renew` seconds; a standby takes over once the
Lease has not been renewed for `duration` seconds (compare-and-swap on resourceVersion,
so two replicas never both win). A holder that shuts down cleanly releases the Lease, so
a rolling update hands over at once.

Why not Kopf's peering: it pauses the watch streams, but not work an operator schedules
itself (requeues, the resync timer), and it pauses every replica when two share a
priority. A Lease gates exactly the place where writes happen: the workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..clock import format_time, parse_time
from ..kube.client import Kube, KubeError

log = logging.getLogger("deskfleet.leader")


class LeaderElector:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str,
                 duration: float = 15.0, renew: float = 5.0,
                 on_elected: Callable[[], None] | None = None,
                 on_deposed: Callable[[], None] | None = None) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration, self.renew = duration, renew
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.leading = asyncio.Event()
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"

    def _spec(self, previous: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        transitions = int((previous or {}).get("leaseTransitions") or 0)
        taking_over = (previous or {}).get("holderIdentity") != self.identity
        stamp = format_time(now, micro=True)  # a Lease's times are MicroTime
        acquired = stamp if taking_over else (previous or {}).get("acquireTime", stamp)
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.duration),
                "acquireTime": acquired, "renewTime": stamp,
                "leaseTransitions": transitions + (1 if taking_over and previous else 0)}

    def try_acquire(self) -> bool:
        """One round: create, renew, or take over an expired Lease. Blocking."""
        now = datetime.now(UTC)
        try:
            lease = self.kube.request("GET", self.path)
        except KubeError as err:
            if not err.not_found:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(None, now)}
            try:
                self.kube.request("POST", self.path.rsplit("/", 1)[0], body=body)
                return True
            except KubeError as create_err:
                if create_err.conflict:
                    return False  # another replica created it first
                raise
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = parse_time(spec.get("renewTime"))  # unreadable: expired
        expired = renewed is None or now - renewed > timedelta(
            seconds=int(spec.get("leaseDurationSeconds") or self.duration))
        if holder and holder != self.identity and not expired:
            return False
        lease["spec"] = self._spec(spec, now)
        try:
            self.kube.request("PUT", self.path, body=lease)  # resourceVersion: CAS
            return True
        except KubeError as err:
            if err.conflict:
                return False
            raise

    def release(self) -> None:
        try:
            lease = self.kube.request("GET", self.path)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["renewTime"] = format_time(datetime(1970, 1, 1, tzinfo=UTC),
                                                         micro=True)
                self.kube.request("PUT", self.path, body=lease)
        except KubeError as err:
            log.warning("could not release the lease: %s", err)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    won = await loop.run_in_executor(None, self.try_acquire)
                except KubeError as err:
                    log.warning("leader election: %s", err)
                    won = False
                if won and not self.leading.is_set():
                    log.info("elected leader", extra={"identity": self.identity})
                    self.leading.set()
                    if self.on_elected:
                        self.on_elected()
                elif not won and self.leading.is_set():
                    log.warning("lost leadership; standing by")
                    self.leading.clear()
                    if self.on_deposed:
                        self.on_deposed()
                await asyncio.sleep(self.renew if won else self.renew / 2)
        finally:
            if self.leading.is_set():
                await loop.run_in_executor(None, self.release)
