"""The labels deskfleet sets on what it creates and reads back: one neutral module, so
the API types, the render, the scaling shell and the controllers agree on a name without
importing one another."""

from __future__ import annotations

MANAGED_BY = {"app.kubernetes.io/managed-by": "deskfleet"}
POOL_LABEL = "deskfleet.io/pool"
APP_LABEL = "deskfleet.io/app"
ACCEPTING_LABEL = "deskfleet.io/accepting"  # hosts with free slots that are not draining
BUSY_LABEL = "deskfleet.io/busy"  # hosts with sessions: the PDB protects exactly these
OWNER_KIND_LABEL = "deskfleet.io/owner-kind"
OWNER_NAME_LABEL = "deskfleet.io/owner-name"
REVISION_LABEL = "deskfleet.io/revision"  # the pod template a host runs (render/revision.py)
