"""Decisions and the who-can-open view as text for an auditor, and as JSON-able dicts.

Pure formatting: everything shown comes from the AccessDecision; nothing is re-evaluated here,
so the text can never disagree with what was enforced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .model import AccessDecision, AccessRow, Controls, Outcome, Request

_PERMISSIONS = (
    ("clipboard to host", "clipboard_to_host"),
    ("clipboard to client", "clipboard_to_client"),
    ("file upload", "file_upload"),
    ("file download", "file_download"),
    ("printing", "printing"),
)
_REQUIREMENTS = (("recording", "recording"), ("watermark", "watermark"))


def format_seconds(seconds: int | None) -> str:
    """5400 -> "1h30m"; None -> "no limit"."""
    if seconds is None:
        return "no limit"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def _controls_table(controls: Controls) -> list[str]:
    rows = [(label, "allowed" if getattr(controls, attr) else "blocked")
            for label, attr in _PERMISSIONS]
    rows += [(label, "on" if getattr(controls, attr) else "off") for label, attr in _REQUIREMENTS]
    rows += [("idle timeout", format_seconds(controls.idle_timeout_seconds)),
             ("max session", format_seconds(controls.max_session_seconds))]
    return [f"  {label:<21}{value}" for label, value in rows]


def describe_request(request: Request) -> str:
    groups = ", ".join(sorted(request.groups)) or "none"
    return (f"user {request.user} (groups: {groups}) from {request.source_ip}"
            f" ({request.country or 'country unknown'}), MFA {'yes' if request.mfa else 'no'},"
            f" at {request.time.isoformat()}")


def _outcome_line(outcome: Outcome) -> str:
    if outcome.allowed:
        return f"allowed by {', '.join(outcome.decided_by)}"
    if outcome.decided_by:
        return f"denied by {', '.join(outcome.decided_by)}"
    return "denied, no policy matched"


def _dry_run_line(decision: AccessDecision) -> str:
    if decision.dry_run is None:
        return f"Dry run: no dry-run policy covers {decision.app}."
    if decision.dry_run_would_change:
        return ("Dry run: enforcing the dry-run policies WOULD CHANGE this decision: "
                f"{_outcome_line(decision.dry_run)}.")
    return "Dry run: enforcing the dry-run policies would not change this decision."


def format_decision(decision: AccessDecision, request: Request | None = None) -> str:
    """The whole story of one decision, in the order an auditor asks it."""
    verdict = "ALLOWED" if decision.allowed else "DENIED"
    lines = [f"Decision: {verdict} to open {decision.app}"]
    if request is not None:
        lines.append(f"Request:  {describe_request(request)}")
    lines.append(f"Reason:   {decision.reason}")
    if decision.controls is not None:
        lines += ["", "Session controls (most restrictive of the allows):"]
        lines += _controls_table(decision.controls)
    by_name = {m.policy: m for m in decision.matches}
    lines += ["", "Decided by:"]
    lines += [f"  {name} ({by_name[name].action}, priority {by_name[name].priority})"
              for name in decision.decided_by] or ["  no policy matched"]
    lines += ["", "Policies covering the app (priority order):"]
    for m in decision.matches:
        verdict = "applies" if m.applies else "no"
        mode = "" if m.enforced else ", dry run"
        lines.append(f"  [{verdict:<7}] {m.policy} ({m.action}, priority {m.priority}{mode}):"
                     f" {'; '.join(m.reasons)}")
    if not decision.matches:
        lines.append("  none")
    lines += ["", _dry_run_line(decision)]
    if decision.not_covering:
        lines.append(f"Not covering {decision.app}: {', '.join(decision.not_covering)}")
    return "\n".join(lines)


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    return {
        "allowed": outcome.allowed,
        "decidedBy": list(outcome.decided_by),
        "controls": outcome.controls.wire() if outcome.controls else None,
    }


def decision_to_dict(decision: AccessDecision, request: Request | None = None) -> dict[str, Any]:
    """camelCase and JSON-able (`json.dumps` takes it as is)."""
    out: dict[str, Any] = {"app": decision.app, **_outcome_dict(decision.outcome),
                           "reason": decision.reason}
    if request is not None:
        out["request"] = {
            "user": request.user, "groups": sorted(request.groups),
            "sourceIP": request.source_ip, "country": request.country, "mfa": request.mfa,
            "time": request.time.isoformat(),
        }
    out["matches"] = [
        {"policy": m.policy, "action": m.action, "priority": m.priority, "mode": m.mode,
         "applies": m.applies, "reasons": list(m.reasons)}
        for m in decision.matches
    ]
    out["dryRun"] = None
    if decision.dry_run is not None:
        out["dryRun"] = {**_outcome_dict(decision.dry_run),
                         "wouldChange": decision.dry_run_would_change}
    out["notCovering"] = list(decision.not_covering)
    return out


def _scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def format_who_can_open(app_name: str, rows: Sequence[AccessRow]) -> str:
    """The reverse view: every enforced allow for the app, its terms and its overrides."""
    if not rows:
        return f"Nobody can open {app_name}: no enforced allow policy covers it."
    lines = [f"Who can open {app_name}:"]
    for row in rows:
        who = [f"groups {', '.join(row.groups)}"] if row.groups else []
        who += [f"users {', '.join(row.users)}"] if row.users else []
        lines += ["", f"  {row.policy} (priority {row.priority}): {'; '.join(who)}",
                  f"    when:     {'; '.join(row.conditions) or 'always'}"]
        if row.controls:
            controls = ", ".join(f"{k}={_scalar(v)}" for k, v in sorted(row.controls.items()))
            lines.append(f"    controls: {controls}")
        unless = "; ".join(row.overridable_by) or "no enforced deny can override"
        lines.append(f"    unless:   {unless}")
    return "\n".join(lines)


def rows_to_dict(rows: Sequence[AccessRow]) -> list[dict[str, Any]]:
    return [
        {"policy": r.policy, "priority": r.priority, "groups": list(r.groups),
         "users": list(r.users), "conditions": list(r.conditions), "controls": r.controls,
         "overridableBy": list(r.overridable_by)}
        for r in rows
    ]
