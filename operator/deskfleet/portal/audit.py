"""The access audit: one JSON line per decision, for the SIEM and for the security
engineer who asks "who opened what, from where, and which policy let them".

Fields (stable; docs/access-policy.md lists them): time, requestId, namespace, app,
user, groups, clientIP, country, mfa, identitySource, decision (allow / deny /
unauthenticated / fail-closed), reason (the metrics' short code), decidedBy, detail,
stepUp, dryRun ({wouldChange, allowed, decidedBy}) when dry-run policies cover the app.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import IO, Any

import orjson

from .authorize import Verdict
from .identity import Identity


def audit_record(*, request_id: str, when: datetime, namespace: str, app: str,
                 identity: Identity | None, client_ip: str, country: str | None,
                 verdict: Verdict, kind: str = "authz") -> dict[str, Any]:
    decision = verdict.decision
    record: dict[str, Any] = {
        "time": when.isoformat(timespec="milliseconds"),
        "kind": kind,
        "requestId": request_id,
        "namespace": namespace,
        "app": app,
        "user": identity.user if identity else None,
        "groups": sorted(identity.groups) if identity else [],
        "clientIP": client_ip,
        "country": country,
        "mfa": identity.mfa if identity else False,
        "identitySource": identity.source if identity else None,
        "decision": verdict.outcome,
        "reason": verdict.reason,
        "decidedBy": list(decision.decided_by) if decision else [],
        "detail": verdict.detail,
    }
    if verdict.step_up:
        record["stepUp"] = True
    if decision is not None and decision.dry_run is not None:
        record["dryRun"] = {"wouldChange": decision.dry_run_would_change,
                            "allowed": decision.dry_run.allowed,
                            "decidedBy": list(decision.dry_run.decided_by)}
    return record


class AuditLog:
    """Appends lines to stdout or a file, one write per line (a crash loses none)."""

    def __init__(self, target: str = "-") -> None:
        self._own = target != "-"
        self._out: IO[bytes] = open(target, "ab") if self._own else sys.stdout.buffer  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        self._out.write(orjson.dumps(record) + b"\n")
        self._out.flush()

    def close(self) -> None:
        if self._own:
            self._out.close()
