"""Which apps a policy covers: `apps.names` OR `apps.selector`, with the API server's own
label-selector semantics, so `kubectl get papp -l ...` and a policy agree on the set."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..api.accesspolicy import AccessPolicySpec
from ..api.common import LabelSelector, LabelSelectorRequirement
from ..render.meta import Resource

Policy = Resource[AccessPolicySpec]


def _requirement_holds(req: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    values = req.values or []
    match req.operator:
        case "In":
            return req.key in labels and labels[req.key] in values
        case "NotIn":
            # As in Kubernetes: an object without the key satisfies NotIn.
            return req.key not in labels or labels[req.key] not in values
        case "Exists":
            return req.key in labels
        case "DoesNotExist":
            return req.key not in labels
    raise ValueError(f"unknown selector operator {req.operator!r}")  # pragma: no cover


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """All matchLabels and all matchExpressions must hold; `{}` selects everything."""
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    return all(_requirement_holds(r, labels) for r in selector.match_expressions or [])


def app_selected(policy_spec: AccessPolicySpec, app_name: str,
                 app_labels: Mapping[str, str]) -> bool:
    """Whether the policy covers the app: listed by name, or selected by label.

    A policy with neither names nor a selector covers nothing (admission refuses it, but
    an object written under an older CRD must not silently cover every app).
    """
    apps = policy_spec.apps
    if app_name in apps.names:
        return True
    return apps.selector is not None and selector_matches(apps.selector, app_labels)


def _order_key(policy: Policy) -> tuple[int, str, str]:
    return (-policy.spec.priority, policy.name, policy.namespace)


def ordered(policies: Iterable[Policy]) -> list[Policy]:
    """Priority highest first, then name: the one order every report uses."""
    out = sorted(policies, key=_order_key)
    keys = [_order_key(p) for p in out]
    if len(set(keys)) < len(keys):
        # Names are unique per namespace, so this is odd input (the same policy twice,
        # or two namespaces' policies mixed): the spec breaks the tie, so that even then
        # no result depends on the input order. Serialising specs is dear: only here.
        out.sort(key=lambda p: (*_order_key(p), p.spec.model_dump_json()))
    return out


def covering(policies: Iterable[Policy], app_name: str,
             app_labels: Mapping[str, str]) -> list[Policy]:
    """The policies that cover the app, in report order (filtered before sorting: an
    app is covered by a few of a namespace's policies, and the sort key is not cheap)."""
    return ordered(p for p in policies if app_selected(p.spec, app_name, app_labels))
