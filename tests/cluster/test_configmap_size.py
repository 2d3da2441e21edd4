"""A namespace's catalog larger than a ConfigMap can hold as readable JSON, written by the
operator's catalog pass to the real API server and read back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deskfleet.controllers.apps import CatalogSnapshot, reconcile_catalog
from deskfleet.kube.client import Kube, KubeError, load_api_client
from deskfleet.kube.compare import needs_apply
from deskfleet.render.catalog import read_catalog
from deskfleet.settings import Settings

from ..conftest import Bed

API = "deskfleet.io/v1alpha1"


def bodies(namespace: str, apps: int, policies: int) -> tuple[list[dict[str, Any]],
                                                              list[dict[str, Any]]]:
    app_bodies = [{"apiVersion": API, "kind": "PublishedApp",
                   "metadata": {"name": f"app-{i}", "namespace": namespace,
                                "uid": f"a{i}", "generation": 1, "labels": {"ward": "all"}},
                   "spec": {"displayName": f"App {i}", "poolRef": {"name": "desk"},
                            "gateway": {"host": "w.example", "path": f"/app-{i}"}}}
                  for i in range(apps)]
    policy_bodies = [{"apiVersion": API, "kind": "AccessPolicy",
                      "metadata": {"name": f"p-{i}", "namespace": namespace,
                                   "uid": f"p{i}", "generation": 1},
                      "spec": {"subjects": {"groups": [f"clinical-staff-group-{i}"]},
                               "apps": {"selector": {"matchLabels": {"ward": "all"}}}}}
                     for i in range(policies)]
    return app_bodies, policy_bodies


def test_a_catalog_over_the_configmap_limit_is_stored_compressed(bed: Bed,
                                                                 namespace: str) -> None:
    kube = Kube(load_api_client(bed.kubeconfig))
    settings = Settings()
    apps, policies = bodies(namespace, apps=3000, policies=40)
    snap = CatalogSnapshot(namespace, apps, {}, None, policies)

    assert not reconcile_catalog(kube, settings, snap).errors
    live = bed.get("configmap", settings.catalog_name, namespace)
    assert live is not None and "data" not in live
    document = read_catalog(live)
    assert len(document["apps"]) == 3000
    assert len(document["apps"][0]["allowedGroups"]) == 40
    # Readable, the same catalog is over the limit: the API server refuses it.
    with pytest.raises(KubeError, match=r"(?i)too (large|long)"):
        kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "readable", "namespace": namespace},
                    "data": {"catalog.json": json.dumps(document, indent=2)}})
    # A second pass over the same apps finds nothing to write.
    assert not needs_apply({"binaryData": live["binaryData"]}, live)
    again = CatalogSnapshot(namespace, apps, {}, live, policies)
    before = live["metadata"]["resourceVersion"]
    assert not reconcile_catalog(kube, settings, again).errors
    after = bed.get("configmap", settings.catalog_name, namespace)
    assert after is not None and after["metadata"]["resourceVersion"] == before

    # Back under the limit, it is readable JSON again and the compressed key is gone.
    small = CatalogSnapshot(namespace, apps[:5], {}, after, policies)
    assert not reconcile_catalog(kube, settings, small).errors
    shrunk = bed.get("configmap", settings.catalog_name, namespace)
    assert shrunk is not None and "binaryData" not in shrunk
    assert len(read_catalog(shrunk)["apps"]) == 5
