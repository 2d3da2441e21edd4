"""A pool's revisions: which pod template its hosts run. Pure.

Every change of the hosts' pod template (image, command, env, resources, placement, the
agent's image or arguments, ...) restarts hosts, so it makes a new revision: a short
hash of the template, as the Deployment controller names its ReplicaSets
(`pod-template-hash`). Each revision runs as its own Deployment, `<pool>-<revision>`,
whose selector and pods carry `deskfleet.io/revision`; its template therefore never
changes, and the Deployment controller never rolls anything. Which revision is current,
and how many hosts each keeps, is the scaling core's decision (scaling/rollout.py).

A Deployment of the pool without the label is the one pools had before revisions (named
after the pool, selecting every host of it): its hosts are revision "" (`LEGACY`), an
outdated revision like any other, so an upgrade rolls each pool once, sessions kept.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..labels import REVISION_LABEL

__all__ = ["LEGACY", "REVISION_LABEL", "deployment_name", "revision_label", "revision_of"]
LEGACY = ""  # the revision of a pre-revision Deployment and its pods
# The Deployment controller's alphabet for names: no vowels (no words), no 0/1/3.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_LENGTH = 10


def revision_of(template: dict[str, Any]) -> str:
    """A stable, short name of a pod template (before the revision label is added)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    out = []
    for _ in range(_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        out.append(_ALPHABET[digit])
    return "".join(out)


def deployment_name(pool: str, revision: str) -> str:
    return f"{pool}-{revision}" if revision != LEGACY else pool


def revision_label(obj: dict[str, Any]) -> str:
    """The revision of a Deployment or pod: its label, or LEGACY without one."""
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, LEGACY))
