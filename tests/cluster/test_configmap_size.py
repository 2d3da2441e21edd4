"""Documents larger than a ConfigMap can hold as readable JSON — a namespace's catalog, a
pool's host config — written by the operator's passes to the real API server and read
back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deskfleet.controllers.catalog import CatalogSnapshot, reconcile_catalog
from deskfleet.controllers.pools import PoolSnapshot, reconcile_pool
from deskfleet.kube.client import Kube, KubeError, load_api_client
from deskfleet.kube.compare import needs_apply
from deskfleet.render.catalog import read_catalog
from deskfleet.render.configdata import read_document
from deskfleet.settings import Settings

from ..conftest import Bed
from ..support.revisions import current_deployment

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


def test_a_pool_host_config_over_the_limit_is_stored_compressed(bed: Bed,
                                                                namespace: str) -> None:
    """Forty apps each granted by 200 policies: about 2 MB of readable host config."""
    kube = Kube(load_api_client(bed.kubeconfig))
    settings = Settings()
    apps, policies = bodies(namespace, apps=40, policies=200)
    bed.apply([{"apiVersion": API, "kind": "SessionHostPool",
                "metadata": {"name": "desk", "namespace": namespace},
                "spec": {"image": "registry.example/desktop:1"}}])
    pool = bed.get("shp", "desk", namespace)
    assert pool is not None

    def config() -> dict[str, Any] | None:
        return bed.get("configmap", "desk-host-config", namespace)

    assert not reconcile_pool(kube, settings, PoolSnapshot(pool, [], apps=apps,
                                                           policies=policies)).errors
    live = config()
    assert live is not None and "data" not in live
    document = read_document(live, "host.json")
    assert len(document["apps"]) == 40 and len(document["apps"]["app-0"]["grants"]) == 200
    readable = json.dumps(document, indent=2)
    assert len(readable) > 1024 * 1024  # would not have fitted
    # A second pass over the same apps and policies writes no config.
    children = [c for c in [config(), current_deployment(bed, namespace, "desk")] if c]
    again = PoolSnapshot(pool, children, apps=apps, policies=policies)
    assert not reconcile_pool(kube, settings, again).errors
    after = config()
    assert after is not None
    assert after["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
