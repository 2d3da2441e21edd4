"""Whether the TLS Secret an app's Ingress names exists: a `get` by name, on demand.

The operator never needs a Secret's content, and RBAC cannot grant metadata alone: any
`list`/`watch` of Secrets would let its token read every key in the cluster (a Kopf
watch would also hold them all in memory). So it only `get`s the names its apps give,
asking for PartialObjectMetadata so that no key material crosses the wire, and never
lists them: a stolen token cannot enumerate Secrets. Answers are reused for a few
seconds, since many apps usually share one host's certificate; an app whose Secret is
missing is looked at again every minute (`RECHECK_SECONDS`). Without the grant (chart
value `checkTlsSecrets: false`) nothing is asked and nothing is reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..kube.client import Kube, KubeError
from ..kube.resources import ResourceType

log = logging.getLogger(__name__)

SECRET = ResourceType("v1", "Secret", "secrets")
TTL_SECONDS = 10.0
RECHECK_SECONDS = 60.0
REFUSED_SECONDS = 600.0  # after a 403, ask again this much later (the grant may come)


class SecretChecker:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, bool | None]] = {}
        self._lock = threading.Lock()
        self._refused_until = 0.0  # RBAC said no: ask nobody until then
        self._warned = False

    def exists(self, kube: Kube, namespace: str, name: str) -> bool | None:
        """True or False; None when the API server would not say (no grant, an error):
        a check that cannot be made reports nothing rather than a false alarm."""
        now = self._clock()
        if now < self._refused_until:
            return None
        with self._lock:
            seen = self._seen.get((namespace, name))
        if seen and now - seen[0] < TTL_SECONDS:
            return seen[1]
        try:
            found: bool | None = kube.get_metadata(SECRET, namespace, name) is not None
        except KubeError as err:
            if err.status == 403:
                self._refused_until = now + REFUSED_SECONDS
                if not self._warned:
                    self._warned = True
                    log.warning("may not get Secrets: the TLS Secrets Ingress routes name "
                                "are not checked (chart value checkTlsSecrets)")
            found = None
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[(namespace, name)] = (now, found)
        return found
