"""`deskfleet run`: start Kopf with deskfleet's handlers."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .. import logcontext
from ..metrics import serve


def run_operator(namespaces: list[str], liveness_port: int,
                 metrics_port: int, verbose: bool, bind_address: str = "127.0.0.1",
                 election: dict[str, Any] | None = None) -> int:
    from . import handlers  # noqa: F401 - registers the handlers
    from .runtime import RUNTIME

    RUNTIME.election = election
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON)
    logcontext.install()
    if metrics_port:
        serve(metrics_port, bind_address)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if not verbose:
        # Kopf's line per handler per watch event ("Handler 'app_event' succeeded.") is
        # thousands of lines a minute at hospital scale and costs real CPU; deskfleet's
        # own lines say what each reconcile changed.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    liveness = f"http://{bind_address}:{liveness_port}/healthz" if liveness_port else None
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        # Replicas coordinate through a Lease (controllers/leader.py), not Kopf peering;
        # without --leader-election every process acts (right for one replica).
        standalone=True,
        liveness_endpoint=liveness,
    )
    return 0
