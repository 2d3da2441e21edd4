"""Every controller the operator runs, and what that asks of its RBAC.

Adding a kind: its API model (`api/<kind>.py`, registered in `api/kinds.py`), its
controller (`controllers/<kind>.py`, declaring a `Controller`), one line here, and its
rules in the chart's ClusterRole (tests/unit/test_rbac.py says which). `handlers.py`
registers the watches and indexes, `workers.py` runs the passes, and the resync, the
cache and the Events come with the declaration.
"""

from __future__ import annotations

from types import MappingProxyType

from ..api.kinds import BY_KIND as API_KINDS
from ..kube.resources import CHILD_TYPES, CHILD_VERBS, POD, POD_VERBS
from . import apps, catalog, policies, pools
from .controller import Controller

CONTROLLERS: tuple[Controller, ...] = (
    pools.CONTROLLER, apps.CONTROLLER, policies.CONTROLLER, catalog.CONTROLLER)
WATCHED = tuple(c for c in CONTROLLERS if c.plural)
_BY_KIND = MappingProxyType(dict((c.kind, c) for c in CONTROLLERS))
# A child's owner label holds its owner's kind in lower case (render/meta.py).
OWNER_OF_CHILD = MappingProxyType(dict((c.kind.lower(), c) for c in CONTROLLERS
                                       if c.owns_children))


def controller_for(kind: str) -> Controller | None:
    return _BY_KIND.get(kind)


OWN_VERBS = ("get", "list", "watch")  # its own kinds: watched, never changed...
STATUS_VERBS = ("patch",)  # ...but for their status
OWNER_VERBS = ("update",)  # on <kind>/finalizers: owner references with blockOwnerDeletion


def operator_rules() -> dict[tuple[str, str], tuple[str, ...]]:
    """(API group, resource) -> the verbs the operator uses on it: the table the chart's
    ClusterRole must grant, no more."""
    rules: dict[tuple[str, str], tuple[str, ...]] = {
        (t.group, t.plural): CHILD_VERBS for t in CHILD_TYPES}
    for ctl in WATCHED:
        t = API_KINDS[ctl.kind].resource
        rules[(t.group, t.plural)] = OWN_VERBS
        rules[(t.group, f"{t.plural}/status")] = STATUS_VERBS
        if ctl.owns_children:
            rules[(t.group, f"{t.plural}/finalizers")] = OWNER_VERBS
    rules[(POD.group, POD.plural)] = POD_VERBS
    rules[("", "events")] = ("create",)
    return rules
