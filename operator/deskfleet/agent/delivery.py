"""Put the operator's drain instructions where the host can see them.

Files in the agent's shared in-memory volume, each replaced atomically (written aside,
then renamed), so the host never reads half a document. A file that says nothing new
is not rewritten: hosts may watch them with inotify.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .contract import DrainInstruction, logoff_document, notice_document


@dataclass(frozen=True)
class DeliveryPaths:
    draining: Path | None  # exists while draining (the contract's version 0, kept)
    notice: Path | None
    logoff: Path | None


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o644)  # the host runs as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _keep(path: Path | None, text: str | None) -> bool:
    """Make the file hold `text` (None: no file); True if it changed."""
    if path is None:
        return False
    if text is None:
        if path.exists():
            path.unlink()
            return True
        return False
    if path.exists() and path.read_text() == text:
        return False
    write_atomically(path, text)
    return True


def _json(doc: dict[str, object] | None) -> str | None:
    return None if doc is None else json.dumps(doc, indent=2, sort_keys=True) + "\n"


def deliver(instruction: DrainInstruction, paths: DeliveryPaths) -> bool:
    """Bring the files in line with the instruction; True if any changed."""
    changed = _keep(paths.draining, "draining\n" if instruction.draining else None)
    changed |= _keep(paths.notice, _json(notice_document(instruction)))
    changed |= _keep(paths.logoff, _json(logoff_document(instruction)))
    return changed
