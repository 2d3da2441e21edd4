from __future__ import annotations

from deskfleet.kube.compare import is_subset, needs_apply

DESIRED = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "s", "namespace": "n", "labels": {"a": "b"}},
           "spec": {"ports": [{"port": 3389, "targetPort": "session"}],
                    "selector": {"x": "y"}}}


def live(**spec_overrides: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "n", "labels": {"a": "b", "extra": "1"},
                         "resourceVersion": "7", "uid": "u"},
            "spec": {"ports": [{"port": 3389, "targetPort": "session", "protocol": "TCP"}],
                     "selector": {"x": "y"}, "clusterIP": "10.96.0.9", **spec_overrides},
            "status": {}}


def test_server_added_fields_are_ignored() -> None:
    assert not needs_apply(DESIRED, live())


def test_missing_or_changed_fields_need_apply() -> None:
    assert needs_apply(DESIRED, None)
    assert needs_apply(DESIRED, live(selector={"x": "z"}))
    assert needs_apply(DESIRED, live(ports=[]))
    changed = live()
    del changed["metadata"]["labels"]["a"]
    assert needs_apply(DESIRED, changed)


def test_object_being_deleted_needs_apply() -> None:
    gone = live()
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert needs_apply(DESIRED, gone)


def test_quantities_compare_by_value() -> None:
    assert is_subset({"cpu": "0.5", "memory": "1024Mi"}, {"cpu": "500m", "memory": "1Gi"})
    assert not is_subset({"cpu": "2"}, {"cpu": "1"})
    assert is_subset({"port": 53}, {"port": "53"})
    assert not is_subset({"enabled": True}, {"enabled": "true"})


def test_lists_compare_whole_and_in_order() -> None:
    assert not is_subset([1, 2], [2, 1])
    assert not is_subset([1], [1, 2])


def test_the_cache_keeps_a_configmaps_documents_as_digests_that_compare_as_the_text() -> None:
    from deskfleet.controllers.cache import slim
    from deskfleet.kube.compare import Digest

    document = '{"apps": {"epr": {"clipboard": "none"}}}' * 1000
    rendered = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "desk-host-config", "namespace": "ward"},
                "data": {"host.json": document}, "binaryData": {"catalog.json.gz": "H4sI"}}
    live = slim({**rendered, "metadata": {**rendered["metadata"], "uid": "u",
                                          "managedFields": [{"manager": "deskfleet"}]}})
    kept = live["data"]["host.json"]
    assert isinstance(kept, Digest) and len(kept) == len(document)
    assert "managedFields" not in live["metadata"]
    assert not needs_apply(rendered, live)  # the same documents: no request
    changed = {**rendered, "data": {"host.json": document.replace("none", "both")}}
    assert needs_apply(changed, live)
    longer = {**rendered, "data": {"host.json": document + " "}}
    assert needs_apply(longer, live)
    assert Digest.of(document) == Digest.of(document) and Digest.of("a") != "b"
    other = {"kind": "Secret", "data": {"x": document}}
    assert slim(other)["data"]["x"] == document and isinstance(slim(other)["data"]["x"], str)


def test_cached_bodies_share_their_strings_and_equal_what_was_watched() -> None:
    import json

    import kopf

    from deskfleet.controllers.cache import slim

    def watched() -> kopf.Body:  # as decoded from a watch stream: every string anew
        return kopf.Body(json.loads(json.dumps({**live(), "metadata": {
            **live()["metadata"], "managedFields": [{"manager": "deskfleet"}]}})))

    one, two = slim(watched()), slim(watched())
    expected = live()
    assert one == expected and two == expected  # nothing but managedFields left out
    assert next(iter(one["spec"])) is next(iter(two["spec"]))  # a key, shared
    assert one["spec"]["ports"][0]["protocol"] is two["spec"]["ports"][0]["protocol"]
    long = "x" * 100  # long texts stay as they were: they rarely repeat
    assert slim(kopf.Body({"data": {"a": long}}))["data"]["a"] == long
