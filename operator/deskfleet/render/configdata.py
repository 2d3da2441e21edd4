"""JSON documents kept in ConfigMaps: readable when they fit, gzip-compressed when not.

A ConfigMap holds at most 1 MiB. The documents the operator publishes (a namespace's
catalog, a pool's host config) grow with apps x grants, so one that does not fit as
indented JSON is stored compressed under the `binaryData` key `<key>.gz` instead, as
Helm stores large releases. Exactly one of the two keys is present; `read_document`
reads either, and a reader of the mounted files does the same."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson

# The API server refuses a ConfigMap whose data exceed 1 MiB; this leaves room for the
# metadata and for the apply's own overhead.
MAX_DOCUMENT_BYTES = 900 * 1024


class DocumentTooLarge(ValueError):
    pass


def encode_document(key: str, document: Any, what: str, remedy: str) -> dict[str, Any]:
    """The `data` or `binaryData` of a ConfigMap holding `document` under `key`.

    Raises DocumentTooLarge, naming `what` and the `remedy`, when even compressed it
    does not fit."""
    # orjson, not json: a pool's host config is re-rendered on every pass over the pool,
    # and json's indenting encoder (pure Python) took an eighth of the operator's CPU at
    # 10,000 apps.
    compact = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    if len(compact) <= MAX_DOCUMENT_BYTES // 2:
        readable = orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        if len(readable) <= MAX_DOCUMENT_BYTES:
            return {"data": {key: readable.decode()}}
    # mtime=0: the same document compresses to the same bytes, so a pass over unchanged
    # objects finds nothing to apply.
    packed = gzip.compress(compact, mtime=0)
    if len(packed) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(
            f"{what} takes {len(packed)} bytes even compressed, over the "
            f"{MAX_DOCUMENT_BYTES} a ConfigMap can hold; {remedy}")
    return {"binaryData": {f"{key}.gz": base64.b64encode(packed).decode()}}


def read_document(configmap: dict[str, Any], key: str) -> Any:
    """The document stored under `key` by `encode_document`, in whichever form."""
    packed = (configmap.get("binaryData") or {}).get(f"{key}.gz")
    if packed is not None:
        return orjson.loads(gzip.decompress(base64.b64decode(packed)))
    return orjson.loads((configmap.get("data") or {})[key])
