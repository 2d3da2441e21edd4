"""Kopf's change detection, switched off.

For every watch event Kopf deep-copies the body into an "essence" and diffs it against
the last handled one, for its on.create/on.update/on.field handlers and its daemons'
idle timers. This operator registers none of those (only indexes and event handlers;
each kind says itself what of an event matters, controllers/fanout.py), so the copy was
pure cost: at 10,000 apps the deep copies, managedFields included, were 4% of the
interpreter's time while the apps arrived (py-spy). `NoDiffBase` keeps nothing and
diffs nothing; tests/unit/test_diffbase.py fails should a changing handler appear."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
              ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence
              ) -> None:
        return None
