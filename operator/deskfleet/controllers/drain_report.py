"""Tell people about the steps of a forced logoff: an Event and a counter each, once.

The steps are edges the scaling shell saw itself write (a deadline first announced, a
logoff first asked for) or act on (a host removed once its logoff time ran out), so a
pass that changes nothing reports nothing, and an operator restart repeats nothing.
"""

from __future__ import annotations

from typing import Any

from ..api.sessionhostpool import SessionHostPoolSpec
from ..kube.client import Kube
from ..metrics import DRAIN_NOTICES, FORCED_REMOVALS, LOGOFFS_REQUESTED
from .events import EventRecorder, post_event
from .scaling import ScalingResult


def report_drains(kube: Kube, body: dict[str, Any], spec: SessionHostPoolSpec,
                  scaled: ScalingResult, events: EventRecorder | None = None) -> None:
    meta = body["metadata"]
    labels = (meta["namespace"], meta["name"])
    notices = {n.host: n for n in scaled.decision.notices}
    for host, deadline in scaled.deadlines_given:
        DRAIN_NOTICES.labels(*labels).inc()
        message = notices[host].message if host in notices else ""
        post_event(kube, body, "Normal", "LogoffNotice",
                   f"{host}: its users were told they will be logged off at {deadline}: "
                   f"{message}", events)
    for host in scaled.logoffs_asked:
        LOGOFFS_REQUESTED.labels(*labels).inc()
        post_event(kube, body, "Normal", "LogoffRequested",
                   f"{host}: the logoff deadline has passed; the host was asked to log "
                   f"its users off (it is removed once it reports no session, or "
                   f"{spec.scaling.drain.logoff_timeout} from now)", events)
    for host in scaled.forced_removals:
        FORCED_REMOVALS.labels(*labels).inc()
        post_event(kube, body, "Warning", "HostRemovedAfterLogoffTimeout",
                   f"{host}: removed with sessions still reported, "
                   f"{spec.scaling.drain.logoff_timeout} after it was asked to log its "
                   f"users off (past the deadline of its notice)", events)
