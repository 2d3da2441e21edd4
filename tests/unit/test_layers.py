"""The package's rooms import in one direction: the API types at the bottom, the pure
cores (policy, render, scaling) above them, the shells (controllers, portal, agent, CLI)
on top. A cycle between rooms — a core reaching into a sibling that reaches back, or
the API types importing a core — fails here, naming the imports that close it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "deskfleet"

# Each room and the rooms it may import (besides the neutral leaf modules below).
NEUTRAL = {"labels", "contracts", "clock", "conditions", "memo", "manifests", "settings",
           "logcontext", "kube"}
ALLOWED: dict[str, set[str]] = {
    "api": set(),
    "policy": {"api"},
    "scaling": {"api"},
    "render": {"api", "policy"},
    "portal_stats": {"scaling"},
    "simulation": {"api", "scaling"},
    "agent": {"api"},
}


def room_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def imports() -> dict[str, set[tuple[str, str]]]:
    """room -> {(imported room, importing file)} for relative imports inside the package."""
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        room = room_of(path)
        here = list(path.relative_to(PACKAGE).parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
            target = [*base, *(node.module or "").split(".")] if node.module else base
            targets = [target[0]] if target and target[0] else [a.name for a in node.names]
            for t in targets:
                if t != room:
                    out[room].add((t, str(path.relative_to(PACKAGE))))
    return out


def test_cores_import_only_downwards() -> None:
    found = imports()
    wrong = []
    for room, allowed in ALLOWED.items():
        for target, where in sorted(found.get(room, ())):
            is_room = (PACKAGE / target).is_dir() or (PACKAGE / f"{target}.py").exists()
            if is_room and target not in allowed | NEUTRAL:
                wrong.append(f"{where} imports {target}")
    assert not wrong, "imports against the layering:\n  " + "\n  ".join(wrong)


def test_no_import_cycle_between_rooms() -> None:
    graph = {room: {t for t, _ in targets} for room, targets in imports().items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a]
                    if a < b and reaches(b, a, {b}))
    assert not cycles, f"rooms that import each other (directly or through others): {cycles}"
