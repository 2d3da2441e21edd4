"""The catalog ConfigMap: readable JSON while it fits, compressed when it does not, and a
clear refusal when even that is over a ConfigMap's limit."""

from __future__ import annotations

import os
from typing import Any

import pytest

from deskfleet.render.catalog import build_catalog, read_catalog
from deskfleet.render.configdata import MAX_DOCUMENT_BYTES, DocumentTooLarge


def entries(count: int, groups: int = 2, noise: int = 0) -> list[dict[str, Any]]:
    return [{"name": f"app-{i}", "displayName": f"App {i}",
             "description": os.urandom(noise).hex(),  # random: does not compress
             "category": f"Tier {i % 10}", "url": f"https://w.example/app-{i}",
             "pool": f"pool-{i % 50}", "protocol": "rdp", "ready": True,
             "launch": f"https://w.example/app-{i}",
             "allowedGroups": [f"group-{g}" for g in range(groups)], "allowedUsers": [],
             "requireMFA": True} for i in range(count)]


def test_a_small_catalog_is_readable_json() -> None:
    cm = build_catalog("ward", "deskfleet-catalog", entries(10))
    assert cm is not None and "binaryData" not in cm
    assert "\n  " in cm["data"]["catalog.json"]  # indented for kubectl readers
    assert [a["name"] for a in read_catalog(cm)["apps"]][:2] == ["app-0", "app-1"]


def test_a_large_catalog_is_compressed_deterministically_and_reads_back() -> None:
    many = entries(3000, groups=40)  # about 5 MB of readable JSON
    cm = build_catalog("ward", "deskfleet-catalog", many)
    assert cm is not None and "data" not in cm
    packed = cm["binaryData"]["catalog.json.gz"]
    assert len(packed) * 3 // 4 <= MAX_DOCUMENT_BYTES
    document = read_catalog(cm)
    assert len(document["apps"]) == 3000 and document["apps"][0]["allowedGroups"][39] == "group-39"
    # The same apps give the same bytes: an unchanged pass has nothing to apply.
    again = build_catalog("ward", "deskfleet-catalog", list(reversed(many)))
    assert again is not None and again["binaryData"]["catalog.json.gz"] == packed


def test_a_catalog_too_large_even_compressed_is_refused_naming_the_namespace() -> None:
    with pytest.raises(DocumentTooLarge, match=r"namespace ward .*2000 apps.*split the apps"):
        build_catalog("ward", "deskfleet-catalog", entries(2000, noise=600))
