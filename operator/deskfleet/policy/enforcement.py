"""From a namespace's AccessPolicy bodies to what the rendered children enforce: route
access, the apps' session controls in the hosts' config. Pure; shared by the operator's
reconcilers and the offline `deskfleet render`, so both produce the same manifests."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from ..api.accesspolicy import AccessPolicySpec
from ..api.parse import InvalidSpec, parse
from ..api.resource import Resource
from ..memo import Memo, spec_key
from .controls import combine_controls, most_restrictive
from .explain import rows_to_dict
from .gateway import route_access, who_can_open
from .model import RouteAccess
from .selection import PolicySet, covering, label_set

Policy = Resource[AccessPolicySpec]
T = TypeVar("T")


# By spec: the policies' status writes (thousands while a namespace converges) keep
# the PolicySet, and with it every answer it has kept.
_VALID: Memo[PolicySet] = Memo(key=spec_key)


def valid_policies(bodies: list[dict[str, Any]], version: Hashable | None = None
                   ) -> PolicySet:
    """Policies the operator can act on; invalid ones report themselves in status.
    `version`: see `Memo.get` (the watch handlers count the policies' spec changes)."""
    namespace = bodies[0].get("metadata", {}).get("namespace") if bodies else None
    return _VALID.get(namespace, bodies, _parse_valid, version=version)


# Each policy parsed once per what parsing reads of it (None: invalid). While 2,000
# policies arrive each arrival moves the version, and every pass rebuilt the set by
# parsing all of them again: a sixth of the operator's CPU at 10,000 apps (py-spy).
_PARSED: dict[Hashable, Policy | None] = {}
_PARSED_MAX = 50_000
_UNSEEN = object()  # one lookup (workers share the dict; another may clear it meanwhile)


def _parsed(body: dict[str, Any]) -> Policy | None:
    meta = body.get("metadata") or {}
    uid, generation = meta.get("uid"), meta.get("generation")
    key = None
    if uid and generation:
        key = (uid, generation, label_set(meta.get("labels") or {}))
    if key is not None and (kept := _PARSED.get(key, _UNSEEN)) is not _UNSEEN:
        return kept  # type: ignore[return-value]
    try:
        policy: Policy | None = parse(body)
    except InvalidSpec:
        policy = None
    if key is not None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()  # deleted policies' entries go too; the live ones refill
        _PARSED[key] = policy
    return policy


def _parse_valid(bodies: Sequence[dict[str, Any]]) -> PolicySet:
    return PolicySet(p for p in map(_parsed, bodies) if p is not None)


def app_labels(body: dict[str, Any]) -> dict[str, str]:
    return dict(body.get("metadata", {}).get("labels") or {})


def _per_app(policies: Iterable[Policy], question: str, app_name: str,
             labels: dict[str, str], answer: Callable[[], T]) -> T:
    """Apps covered alike share one answer when the policies are a PolicySet."""
    if isinstance(policies, PolicySet):
        return policies.per_app(question, app_name, labels, answer)
    return answer()


def access_for(policies: Iterable[Policy], app_name: str, labels: dict[str, str]
               ) -> RouteAccess:
    return _per_app(policies, "route access", app_name, labels,
                    lambda: route_access(policies, app_name, labels))


def allowed_by(policies: Iterable[Policy], app_name: str, labels: dict[str, str]) -> list[str]:
    return sorted(p.name for p in covering(policies, app_name, labels)
                  if p.spec.mode == "enforce" and p.spec.action == "allow")


def app_session_config(policies: Sequence[Policy], app_name: str, labels: dict[str, str]
                       ) -> dict[str, Any]:
    """What the hosts' agent and the gateway read for one app: the most restrictive
    controls across every grant (a safe baseline: no admitted user is looser, whichever
    grant admitted them), and each grant with its conditions so a gateway can apply the
    controls of the policies that allowed a given request."""
    return _per_app(policies, "session config", app_name, labels,
                    lambda: _session_config(policies, app_name, labels))


def _session_config(policies: Sequence[Policy], app_name: str, labels: dict[str, str]
                    ) -> dict[str, Any]:
    allows = [p for p in covering(policies, app_name, labels)
              if p.spec.mode == "enforce" and p.spec.action == "allow"]
    baseline = most_restrictive([combine_controls([p.spec.session_controls]) for p in allows]
                                ) if allows else None
    return {
        "baselineControls": baseline.wire() if baseline else None,
        "grants": rows_to_dict(who_can_open(policies, app_name, labels)),
    }
