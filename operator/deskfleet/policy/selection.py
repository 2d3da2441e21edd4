"""Which apps a policy covers: `apps.names` OR `apps.selector`, with the API server's own
label-selector semantics, so `kubectl get papp -l ...` and a policy agree on the set."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import Any, TypeVar, cast

from ..api.accesspolicy import AccessPolicySpec, AppSelection
from ..api.common import LabelSelector, LabelSelectorRequirement
from ..api.resource import Resource

Policy = Resource[AccessPolicySpec]
T = TypeVar("T")


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
    return app_selected_by(policy_spec.apps, app_name, app_labels)


def app_selected_by(apps: AppSelection, app_name: str, app_labels: Mapping[str, str]) -> bool:
    """`app_selected` for the `apps` part of a policy alone."""
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


LabelSet = tuple[tuple[str, str], ...]


def label_set(labels: Mapping[str, str]) -> LabelSet:
    return tuple(sorted(labels.items()))


class PolicySet(tuple[Policy, ...]):
    """A namespace's valid policies, with answers about apps kept.

    Which policies cover an app depends only on its labels, and on its name when some
    policy lists apps by name. A namespace of thousands of apps has a few label sets, so
    this turns apps x policies selector evaluations per catalog pass (20 million at
    10,000 apps and 2,000 policies) into label sets x policies. What is derived from the
    covering policies alone (an app's route access, its session config) is kept the
    same way, through `per_app`."""

    _answers: dict[tuple[str, tuple[str, LabelSet]], Any]

    def __new__(cls, policies: Iterable[Policy]) -> PolicySet:
        self = super().__new__(cls, policies)
        self._answers = {}
        return self

    @cached_property
    def _named(self) -> frozenset[str]:
        # Only once asked: a policy pass, which never asks, rebuilds the set on every
        # policy that arrives.
        return frozenset(n for p in self for n in p.spec.apps.names)

    @cached_property
    def enforced_by_priority(self) -> dict[int, tuple[Policy, ...]]:
        """The enforced policies by priority: a policy conflicts only with one of its
        own priority, and a round of recounts asks for each of 2,000 policies."""
        out: dict[int, list[Policy]] = {}
        for p in self:
            if p.spec.mode == "enforce":
                out.setdefault(p.spec.priority, []).append(p)
        return {k: tuple(v) for k, v in out.items()}

    def per_app(self, question: str, app_name: str, app_labels: Mapping[str, str],
                answer: Callable[[], T]) -> T:
        """`answer()`, computed once per question and set of apps covered alike. The
        answer must depend on the app only through the policies covering it, and is
        shared: callers must not change it."""
        key = (question, (app_name if app_name in self._named else "",
                          label_set(app_labels)))
        if key not in self._answers:
            self._answers[key] = answer()
        return cast(T, self._answers[key])

    def covering(self, app_name: str, app_labels: Mapping[str, str]) -> tuple[Policy, ...]:
        return self.per_app("covering", app_name, app_labels,
                            lambda: tuple(_covering(self, app_name, app_labels)))

    def not_covering(self, app_name: str, app_labels: Mapping[str, str]) -> tuple[str, ...]:
        """The names of the set's policies that do not cover the app, sorted."""
        def answer() -> tuple[str, ...]:
            cover = {p.name for p in self.covering(app_name, app_labels)}
            return tuple(sorted({p.name for p in self} - cover))
        return self.per_app("not covering", app_name, app_labels, answer)


def _covering(policies: Iterable[Policy], app_name: str,
              app_labels: Mapping[str, str]) -> list[Policy]:
    # Filtered before sorting: an app is covered by a few of a namespace's policies,
    # and the sort key is not cheap.
    return ordered(p for p in policies if app_selected(p.spec, app_name, app_labels))


def covering(policies: Iterable[Policy], app_name: str,
             app_labels: Mapping[str, str]) -> list[Policy]:
    """The policies that cover the app, in report order."""
    if isinstance(policies, PolicySet):
        return list(policies.covering(app_name, app_labels))
    return _covering(policies, app_name, app_labels)


class GroupedLabels:
    """Names grouped by their labels, kept up to date one object at a time (the watch
    handlers feed it each app's labels as they change), so a policy pass does not
    regroup a namespace's 10,000 apps whenever one of them arrives. Not thread-safe:
    updated and read on the event loop; `frozen` is what a worker may hold."""

    def __init__(self) -> None:
        self._groups: dict[LabelSet, set[str]] = {}
        self._frozen: LabelGroups | None = None

    def move(self, name: str, old: Mapping[str, str] | None,
             new: Mapping[str, str] | None) -> None:
        """`name`'s labels went from `old` to `new` (None: it was not there / is gone)."""
        before = label_set(old) if old is not None else None
        after = label_set(new) if new is not None else None
        if before == after:
            return
        if before is not None and (names := self._groups.get(before)) is not None:
            names.discard(name)
            if not names:
                del self._groups[before]
        if after is not None:
            self._groups.setdefault(after, set()).add(name)
        self._frozen = None

    def frozen(self) -> LabelGroups:
        """An immutable copy, made again only after a change."""
        if self._frozen is None:
            self._frozen = LabelGroups.of(self._groups)
        return self._frozen

    def __bool__(self) -> bool:
        return bool(self._groups)


class LabelGroups:
    """A namespace's apps grouped by their labels: which apps a policy covers is then
    one selector check per label set, not one per app."""

    def __init__(self, apps: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        groups: dict[LabelSet, set[str]] = {}
        for name, labels in apps:
            groups.setdefault(label_set(labels), set()).add(name)
        self._set(groups)

    @classmethod
    def of(cls, groups: Mapping[LabelSet, Iterable[str]]) -> LabelGroups:
        """From apps already grouped (GroupedLabels keeps a namespace's so)."""
        self = cls.__new__(cls)
        self._set(groups)
        return self

    def _set(self, groups: Mapping[LabelSet, Iterable[str]]) -> None:
        self._groups = [(dict(labels), frozenset(names)) for labels, names in groups.items()
                        if names]
        self._names = frozenset().union(*(names for _, names in self._groups))

    def covered_by(self, apps: AppSelection) -> list[str]:
        """The names a policy with `apps` covers (`app_selected`), sorted."""
        out = {n for n in apps.names if n in self._names}
        selector = apps.selector
        if selector is not None:
            for labels, names in self._groups:
                if selector_matches(selector, labels):
                    out.update(names)
        return sorted(out)
