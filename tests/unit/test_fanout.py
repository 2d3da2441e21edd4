"""Which keys an event fans out to: only changes that other objects read travel. Each
test names the exact keys, in order, and the exact debounce of each delayed one (the
catalog 0.5 s, a pool's host config 2 s, a namespace's policies 5 s, a whole namespace
0.2 s), so a key that goes missing, appears or waits longer fails here."""

from __future__ import annotations

from functools import partial
from typing import Any

from deskfleet.api.accesspolicy import AppSelection
from deskfleet.controllers import fanout
from deskfleet.controllers.fanout import (
    Delayed,
    FactsMemory,
    app_keys,
    facts,
    policy_keys,
    pool_keys,
)
from deskfleet.controllers.registry import controller_for


def app(generation: int = 1, labels: dict[str, str] | None = None, pool: str = "desk",
        ready: bool = False) -> dict[str, Any]:
    return {"metadata": {"generation": generation, "labels": labels or {"tier": "a"}},
            "spec": {"poolRef": {"name": pool}},
            "status": {"conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}}


CATALOG = Delayed(("catalog", "ns", ""), 0.5)
POLICIES = Delayed(("policies", "ns", ""), 5.0)


def pool_config(pool: str) -> Delayed:
    return Delayed(("SessionHostPool", "ns", pool), 2.0)


def test_a_new_app_reaches_its_pool_the_catalog_and_the_policies() -> None:
    keys = app_keys("ns", "pacs", None, facts("PublishedApp", app()))
    assert keys == [("PublishedApp", "ns", "pacs"), CATALOG, pool_config("desk"), POLICIES]


def test_an_apps_own_status_write_reaches_at_most_the_catalog() -> None:
    before = facts("PublishedApp", app())
    # The operator's status write with nothing others read changed: nothing to do.
    assert app_keys("ns", "pacs", before, facts("PublishedApp", app())) == []
    # Ready flipped: the catalog shows readiness, so it is refreshed (debounced).
    keys = app_keys("ns", "pacs", before, facts("PublishedApp", app(ready=True)))
    assert keys == [CATALOG]
    # A spec change re-checks the app itself and re-renders its pool's host config; the
    # policies select by label, which did not change.
    assert app_keys("ns", "pacs", before, facts("PublishedApp", app(generation=2))) == [
        ("PublishedApp", "ns", "pacs"), CATALOG, pool_config("desk")]


def test_moving_an_app_reaches_the_old_and_the_new_pool() -> None:
    keys = app_keys("ns", "pacs", facts("PublishedApp", app(pool="old")),
                    facts("PublishedApp", app(generation=2, pool="new")))
    assert keys == [("PublishedApp", "ns", "pacs"), CATALOG, pool_config("new"),
                    pool_config("old")]


def test_relabelling_an_app_reaches_the_policies_that_select_by_label() -> None:
    keys = app_keys("ns", "pacs", facts("PublishedApp", app()),
                    facts("PublishedApp", app(labels={"tier": "b"})))
    assert keys == [("PublishedApp", "ns", "pacs"), CATALOG, pool_config("desk"), POLICIES]


def test_a_deleted_app_reaches_everything_that_read_it() -> None:
    keys = app_keys("ns", "pacs", facts("PublishedApp", app()), None)
    assert keys == [("PublishedApp", "ns", "pacs"), CATALOG, pool_config("desk"), POLICIES]


def test_an_app_moving_its_route_reaches_the_other_claimants_but_not_itself_twice() -> None:
    def routed(host: str) -> dict[str, Any]:
        body = app()
        body["spec"]["gateway"] = {"host": host, "path": "/epr"}
        return body

    keys = app_keys("ns", "pacs", facts("PublishedApp", routed("a.example.org")),
                    facts("PublishedApp", {**routed("b.example.org"),
                                           "metadata": {"generation": 2,
                                                        "labels": {"tier": "a"}}}),
                    rivals=[("other", "epr"), ("ns", "pacs"), ("ns", "epr"), ("ns", "epr")])
    assert keys == [("PublishedApp", "ns", "pacs"), ("PublishedApp", "ns", "epr"),
                    ("PublishedApp", "other", "epr"), CATALOG, pool_config("desk")]


def test_pool_fans_out_to_its_apps_only_on_spec_or_readiness() -> None:
    old = facts("SessionHostPool", app())
    assert pool_keys("ns", "desk", old, facts("SessionHostPool", app()), ["a", "b"]) == []
    ready = pool_keys("ns", "desk", old, facts("SessionHostPool", app(ready=True)), ["a", "b"])
    assert ready == [("PublishedApp", "ns", "a"), ("PublishedApp", "ns", "b"), CATALOG]
    spec = pool_keys("ns", "desk", old, facts("SessionHostPool", app(generation=2)), ["a"])
    assert spec == [("SessionHostPool", "ns", "desk"), ("PublishedApp", "ns", "a"), CATALOG]
    assert pool_keys("ns", "desk", old, None, []) == [("SessionHostPool", "ns", "desk"),
                                                      CATALOG]


def policy(generation: int = 1, tier: str | None = "a", ready: bool = False,
           labels: dict[str, str] | None = None) -> dict[str, Any]:
    apps = {"selector": {"matchLabels": {"tier": tier}}} if tier else {"names": 7}
    return {"metadata": {"generation": generation, "labels": labels or {}},
            "spec": {"subjects": {"groups": ["g"]}, "apps": apps},
            "status": {"conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}}


def tiers(apps: Any) -> list[str] | None:
    """The namespace's apps: pacs and ris in tier a (pool desk), lab in tier b (pool lab)."""
    if not isinstance(apps.get("names", []), list):
        return None
    tier = apps["selector"]["matchLabels"]["tier"]
    return {"a": ["pacs", "ris"], "b": ["lab"]}.get(tier, [])


def pool_of(app: str) -> str:
    return "lab" if app == "lab" else "desk"


def test_policy_spec_changes_reach_the_apps_it_covered_or_covers() -> None:
    old = facts("AccessPolicy", policy())
    keys = partial(policy_keys, "ns", "p", covered=tiers, pool_of=pool_of)
    assert keys(old, facts("AccessPolicy", policy(ready=True))) == []  # status only
    # A policy's labels select nothing and nobody reads them: nothing to do.
    assert keys(old, facts("AccessPolicy", policy(labels={"x": "y"}))) == []
    # From tier a to tier b: the apps it no longer covers and those it now does, their
    # pools' host config, the other policies' conflicts, the catalog. Nothing else.
    assert keys(old, facts("AccessPolicy", policy(generation=2, tier="b"))) == [
        ("AccessPolicy", "ns", "p"), Delayed(("PublishedApp", "ns", "lab"), 0.2),
        Delayed(("PublishedApp", "ns", "pacs"), 0.2),
        Delayed(("PublishedApp", "ns", "ris"), 0.2), pool_config("desk"), pool_config("lab"),
        POLICIES, CATALOG]
    assert keys(None, facts("AccessPolicy", policy(tier="c"))) == [  # covers nothing yet
        ("AccessPolicy", "ns", "p"), POLICIES, CATALOG]
    assert keys(old, None) == [  # deleted: the routes it opened must close
        ("AccessPolicy", "ns", "p"), Delayed(("PublishedApp", "ns", "pacs"), 0.2),
        Delayed(("PublishedApp", "ns", "ris"), 0.2), pool_config("desk"), POLICIES, CATALOG]
    # A selection that cannot be read: the whole namespace, on doubt.
    assert keys(old, facts("AccessPolicy", policy(generation=2, tier=None))) == [
        ("AccessPolicy", "ns", "p"), Delayed(("namespace", "ns", ""), 0.2)]


def test_memory_returns_the_previous_facts_and_forgets_deleted_objects() -> None:
    memory = FactsMemory()
    key = ("PublishedApp", "ns", "pacs")
    assert memory.swap(key, {"generation": 1}) is None
    assert memory.swap(key, {"generation": 2}) == {"generation": 1}
    assert memory.swap(key, None) == {"generation": 2}
    assert memory.swap(key, {"generation": 3}) is None


def declared_swap(memory: FactsMemory, key: tuple[str, str, str],
                  body: dict[str, Any] | None) -> None:
    """As the watch handler does, with what the kind's controller declares."""
    ctl = controller_for(key[0])
    assert ctl is not None
    memory.swap(key, None if body is None else ctl.facts(body), ctl.versioned_by)


def covered(memory: FactsMemory, namespace: str, tier: str) -> list[str]:
    apps = AppSelection.model_validate({"selector": {"matchLabels": {"tier": tier}}})
    return memory.label_groups("PublishedApp", namespace).covered_by(apps)


def test_apps_stay_grouped_by_labels_one_event_at_a_time() -> None:
    memory = FactsMemory()
    pacs, ris = ("PublishedApp", "ns", "pacs"), ("PublishedApp", "ns", "ris")
    declared_swap(memory, pacs, app())  # appeared, tier a
    declared_swap(memory, ris, app())
    assert covered(memory, "ns", "a") == ["pacs", "ris"]
    before = memory.label_groups("PublishedApp", "ns")
    declared_swap(memory, pacs, app(ready=True, generation=2))  # no label change
    assert memory.label_groups("PublishedApp", "ns") is before  # nothing regrouped
    declared_swap(memory, pacs, app(labels={"tier": "b"}))
    assert covered(memory, "ns", "a") == ["ris"] and covered(memory, "ns", "b") == ["pacs"]
    assert before.covered_by(  # a worker's copy stands
        AppSelection.model_validate({"names": ["pacs"]})) == ["pacs"]
    declared_swap(memory, ris, None)  # went away
    assert covered(memory, "ns", "a") == [] and covered(memory, "other", "a") == []
    declared_swap(memory, pacs, None)
    assert memory.label_groups("PublishedApp", "ns").covered_by(
        AppSelection.model_validate({"selector": {}})) == []


def test_policy_versions_move_only_when_their_specs_do() -> None:
    memory = FactsMemory()
    policy = ("AccessPolicy", "ns", "p")
    declared_swap(memory, policy, app())
    assert memory.version("AccessPolicy", "ns") == 1
    declared_swap(memory, policy, app(ready=True))  # status only
    declared_swap(memory, policy, app(labels={"x": "y"}))  # labels only
    assert memory.version("AccessPolicy", "ns") == 1
    declared_swap(memory, policy, app(generation=2))
    assert memory.version("AccessPolicy", "ns") == 2
    assert memory.version("AccessPolicy", "other") == 0
    declared_swap(memory, policy, None)
    assert memory.version("AccessPolicy", "ns") == 3


def managed(*entries: tuple[str, str]) -> dict[str, Any]:
    return {"metadata": {"managedFields": [{"manager": m, "time": t} for m, t in entries]}}


def test_own_echo_only_when_the_operator_wrote_last() -> None:
    mine = managed(("kube-controller-manager", "2026-11-24T10:00:00Z"),
                   ("deskfleet", "2026-11-24T10:00:05Z"))
    assert fanout.own_echo(mine, "deskfleet")
    status = managed(("deskfleet", "2026-11-24T10:00:05Z"),
                     ("kube-controller-manager", "2026-11-24T10:00:07Z"))
    assert not fanout.own_echo(status, "deskfleet")
    tie = managed(("deskfleet", "2026-11-24T10:00:05Z"), ("kubectl-edit", "2026-11-24T10:00:05Z"))
    assert not fanout.own_echo(tie, "deskfleet")
    assert not fanout.own_echo({"metadata": {}}, "deskfleet")
