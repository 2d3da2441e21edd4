"""Kubernetes Events for what a person should notice. Posted on transitions only, so a
quiet cluster gets no Event writes."""

from __future__ import annotations

import logging
from typing import Any

from ..conditions import now_rfc3339
from ..kube.client import Kube, KubeError

log = logging.getLogger(__name__)


def post_event(kube: Kube, body: dict[str, Any], type_: str, reason: str, message: str
               ) -> None:
    meta = body["metadata"]
    now = now_rfc3339()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": body["apiVersion"], "kind": body["kind"],
                           "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta.get("uid", "")},
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "deskfleet"},
        "reportingComponent": "deskfleet",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        kube.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=event)
    except KubeError as err:  # an Event is best effort; never fail a reconcile on it
        log.warning("could not post event %s: %s", reason, err)
