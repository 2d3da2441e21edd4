"""Read the downward-API file of a pod's annotations. Pure.

The kubelet writes one line per annotation, sorted by key: `key="value"`, the value
quoted as Go's `strconv.Quote` does (backslash escapes, `\\xNN`, `\\uNNNN`,
`\\UNNNNNNNN`; printable Unicode left as is). A line that does not parse is skipped: the
file is the kubelet's, and one odd annotation must not blind the agent to the others.
"""

from __future__ import annotations

import re

_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\", '"': '"', "'": "'"}
# An escape, or a run of plain characters (which may not hold a bare quote).
_TOKEN = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)|[^\\"]+')


def go_unquote(quoted: str) -> str:
    """The inverse of Go's strconv.Quote; raises ValueError on anything else."""
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise ValueError(f"not a quoted string: {quoted!r}")
    body = quoted[1:-1]
    raw = bytearray()
    pos = 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if match is None:
            raise ValueError(f"bare quote or trailing backslash in {quoted!r}")
        code = match.group(1)
        if code is None:
            raw += match.group(0).encode()
        elif code[0] == "x":
            raw.append(int(code[1:], 16))  # a byte: may be part of a UTF-8 sequence
        elif code[0] in "uU":
            raw += chr(int(code[1:], 16)).encode()
        elif code[0].isdigit():
            raw.append(int(code, 8))
        elif code in _SIMPLE:
            raw += _SIMPLE[code].encode()
        else:
            raise ValueError(f"unknown escape \\{code} in {quoted!r}")
        pos = match.end()
    return raw.decode("utf-8", errors="replace")


def parse_annotations(text: str) -> dict[str, str]:
    annotations: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, quoted = line.partition("=")
        if not sep or not key:
            continue
        try:
            annotations[key] = go_unquote(quoted)
        except ValueError:
            continue
    return annotations
