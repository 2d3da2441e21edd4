"""Status is written through the kinds' status models (api/*Status, which generate the
CRDs): every field a reconciler writes is one the model knows, with the type it says;
the document goes out camelCase with fieldValidation=Strict. A recording fake stands in
for the API server (named as such: tests/unit only)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from deskfleet.api.parse import InvalidSpec
from deskfleet.conditions import Cond
from deskfleet.controllers.status import status_document, write_invalid, write_status


class RecordingKube:
    """Fake Kube: records merge patches, answers nothing else."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def merge_patch(self, rtype: Any, namespace: str, name: str, patch: dict[str, Any],
                    subresource: str = "", strict: bool = False) -> dict[str, Any]:
        self.patches.append({"path": rtype.path(namespace, name, subresource),
                             "patch": patch, "strict": strict})
        return {}


def body(kind: str = "SessionHostPool", status: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    return {"apiVersion": "deskfleet.io/v1alpha1", "kind": kind,
            "metadata": {"name": "desk", "namespace": "ward", "uid": "u1", "generation": 3},
            "status": status or {}}


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deskfleet.controllers.status.post_event", lambda *a: None)


def test_a_pool_status_is_written_camel_case_and_strict() -> None:
    kube = RecordingKube()
    fields = {"readyHosts": 2, "desiredHosts": 3, "hosts": "2/3", "rollout": None,
              "lastScaling": {"direction": "up", "reason": "storm", "fromHosts": 2,
                              "toHosts": 3, "time": "2026-12-02T08:00:00Z"}}
    assert write_status(kube, body(), fields, [Cond("Ready", True, "HostsReady", "ok")])
    [write] = kube.patches
    assert write["path"] == ("/apis/deskfleet.io/v1alpha1/namespaces/ward/"
                             "sessionhostpools/desk/status")
    assert write["strict"] is True
    status = write["patch"]["status"]
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        **fields, "observedGeneration": 3}
    [ready] = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "Ready", "True", "HostsReady", 3)


@pytest.mark.parametrize("kind,fields,field", [
    ("SessionHostPool", {"readyHost": 2}, "readyHost"),  # misspelt
    ("SessionHostPool", {"readyHosts": "2"}, "readyHosts"),  # a string, not a count
    ("PublishedApp", {"url": 5}, "url"),
    ("AccessPolicy", {"inEffect": "yes"}, "inEffect"),
    ("AccessPolicy", {"appsMatched": 1, "bogus": True}, "bogus"),
    ("SessionHostPool", {"lastScaling": {"direction": "sideways", "time": "t", "fromHosts": 1,
                                         "toHosts": 1, "reason": ""}}, "direction"),
])
def test_a_field_the_model_does_not_know_fails_the_write_loudly(
        kind: str, fields: dict[str, Any], field: str) -> None:
    kube = RecordingKube()
    with pytest.raises(ValidationError, match=field):
        write_status(kube, body(kind), fields, [])
    assert kube.patches == []


def test_an_unchanged_status_writes_nothing() -> None:
    kube = RecordingKube()
    first = body()
    write_status(kube, first, {"sessions": 4}, [Cond("Ready", True, "HostsReady")])
    stored = body(status=kube.patches[0]["patch"]["status"])
    assert not write_status(kube, stored, {"sessions": 4}, [Cond("Ready", True, "HostsReady")])
    assert len(kube.patches) == 1


def test_an_invalid_spec_is_reported_by_field() -> None:
    kube = RecordingKube()
    err = InvalidSpec("SessionHostPool", "ward/desk",
                      ["spec.schedule.timeZone: unknown time zone 'Mars/Olympus'"])
    write_invalid(kube, body(), err)
    conditions = {c["type"]: c for c in kube.patches[0]["patch"]["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == conditions["Degraded"]["reason"] == "InvalidSpec"
    assert "spec.schedule.timeZone" in conditions["Degraded"]["message"]


def test_none_stays_none_to_clear_what_was_written_before() -> None:
    assert status_document("SessionHostPool", {"rollout": None}) == {"rollout": None}


def test_a_status_list_the_cache_keeps_as_a_digest_compares_as_the_list() -> None:
    """An app's `allowedBy` is held by the operator's cache as a digest (cache.slim,
    `Controller.compared_status`): the pass must still write nothing when it is the same
    list and write when one name differs."""
    from deskfleet.controllers.cache import slim
    from deskfleet.controllers.registry import controller_for
    from deskfleet.kube.compare import ValueDigest

    app = controller_for("PublishedApp")
    assert app is not None and app.compared_status == ("allowedBy",)
    names = [f"policy-{i}" for i in range(200)]
    kube = RecordingKube()
    fields = {"url": "https://desk.example.org/epr", "allowedBy": names}
    write_status(kube, body("PublishedApp"), fields, [Cond("Ready", True, "RouteOpen", "")])
    written = kube.patches[0]["patch"]["status"]
    cached = slim(body("PublishedApp", written), compared_status=app.compared_status)
    assert isinstance(cached["status"]["allowedBy"], ValueDigest)
    assert cached["status"]["url"] == fields["url"] and cached["status"]["conditions"]

    assert not write_status(kube, cached, fields, [Cond("Ready", True, "RouteOpen", "")])
    assert write_status(kube, cached, {**fields, "allowedBy": names[:-1]},
                        [Cond("Ready", True, "RouteOpen", "")])
    assert kube.patches[-1]["patch"]["status"]["allowedBy"] == names[:-1]
