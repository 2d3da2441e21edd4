"""Process state has one home: the Runtime (controllers/runtime.py) owns every piece of
state an operator process keeps between passes, each with a bounded lifetime
(controllers/process.py; docs/design.md, "Process state"). A module of controllers/
that keeps mutable state of its own at module level — a dict, set or list, or an object
built by a call, other than the one RUNTIME — fails here, naming it."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

CONTROLLERS = Path(__file__).resolve().parents[2] / "operator" / "deskfleet" / "controllers"

# Calls whose result is a value that cannot change: constants may be built with them.
IMMUTABLE_CALLS = {"frozenset", "tuple", "str", "int", "float", "bool", "bytes", "ResourceType",
                   "timedelta", "getLogger", "TypeVar", "MappingProxyType", "re.compile",
                   "compile", "ContextVar", "Controller"}  # a frozen declaration
ALLOWED_NAMES = {"RUNTIME", "log", "__all__"}


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else ""
        return f"{base}.{func.attr}" if f"{base}.{func.attr}" in IMMUTABLE_CALLS else func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _frozen_argument(call: str, arg: ast.expr) -> bool:
    """A mutable value that only the immutable one built of it ever sees: the items of
    frozenset({...}) or tuple(... for ...), the copy in MappingProxyType(dict(...))."""
    if call in ("frozenset", "tuple"):
        if isinstance(arg, ast.Set | ast.List):
            return all(_immutable(e) for e in arg.elts)
        return isinstance(arg, ast.GeneratorExp)
    if call == "MappingProxyType":
        return isinstance(arg, ast.Dict) or (
            isinstance(arg, ast.Call) and _call_name(arg) == "dict")
    return False


def _immutable(value: ast.expr) -> bool:
    """A value built only of constants, tuples, frozensets, names of other constants,
    arithmetic and calls that make immutable values."""
    if isinstance(value, ast.Constant | ast.Name | ast.Attribute | ast.Lambda):
        return True
    if isinstance(value, ast.Tuple):
        return all(_immutable(e) for e in value.elts)
    if isinstance(value, ast.Set):  # only as the argument of frozenset (below)
        return False
    if isinstance(value, ast.BinOp):
        return _immutable(value.left) and _immutable(value.right)
    if isinstance(value, ast.UnaryOp):
        return _immutable(value.operand)
    if isinstance(value, ast.JoinedStr):
        return True
    if isinstance(value, ast.Subscript):  # a lookup in a constant table
        return _immutable(value.value)
    if isinstance(value, ast.Call):
        name = _call_name(value)
        return (name in IMMUTABLE_CALLS
                and all(_immutable(a) or _frozen_argument(name, a) for a in value.args)
                and all(_immutable(k.value) for k in value.keywords))
    return False  # dict/list/set literals and comprehensions, objects built by calls


def module_state(path: Path) -> list[str]:
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.AugAssign):  # a module-level counter
            targets, value = [node.target], ast.List(elts=[])
        else:
            continue
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if any(n in ALLOWED_NAMES for n in names):
            continue
        if all(n[:1].isupper() and not n.isupper() for n in names) and (
                isinstance(value, ast.Subscript | ast.BinOp)
                or (isinstance(value, ast.Call) and _call_name(value) == "TypeVar")):
            continue  # a type alias or variable: Key = tuple[str, str, str]
        if not all(n.lstrip("_").isupper() for n in names) or not _immutable(value):
            found.append(f"{path.name}:{node.lineno} {', '.join(names) or ast.unparse(targets[0])}"
                         f" = {ast.unparse(value)[:60]}")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Global):
            found.append(f"{path.name}:{node.lineno} global {', '.join(node.names)}")
    return found


def test_no_module_level_mutable_state_in_controllers() -> None:
    found = [f for path in sorted(CONTROLLERS.glob("*.py")) for f in module_state(path)]
    assert not found, ("module-level state in controllers/ (it belongs to the Runtime, "
                       "controllers/process.py):\n  " + "\n  ".join(found))


def test_the_check_sees_each_kind_of_module_state(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "GONE: set[str] = set()\n_written = {}\nITEMS = [1]\nRECORDER = EventRecorder()\n"
        "_n = 0\ncache = None\nOK = (1, 'a')\nFROZEN = frozenset({'a'})\nLIMIT = 64 * 1024\n"
        "KINDS = BY_KIND[('v1', 'Pod')]\nRUNTIME = Runtime()\n"
        "VIEW = MappingProxyType(dict(A))\nPAIRS = tuple((a, b) for a, b in X)\n"
        "TABLE = dict(A)\n"
        "def f():\n    global _n\n    _n += 1\n")
    found = [line.split(" ", 1)[1] for line in module_state(source)]
    assert [f.split(" =")[0] for f in found] == [
        "GONE", "_written", "ITEMS", "RECORDER", "_n", "cache", "TABLE", "global _n"]


# --- lifetimes -----------------------------------------------------------------------------

def test_gone_is_bounded_and_forgets_an_object_whose_deletion_is_seen() -> None:
    from deskfleet.controllers.process import Gone

    gone = Gone(capacity=3)
    for uid in ("u1", "u2", "u3", "u4", "", "u5"):
        gone.add(uid)
    assert len(gone) == 3 and "u1" not in gone and "u2" not in gone and "u5" in gone
    assert gone.version == 5  # every uid added moves it (the empty uid is no object)
    gone.discard("u4")
    assert "u4" not in gone and len(gone) == 2


def test_a_deleted_pool_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    from deskfleet.controllers import handlers
    from deskfleet.controllers.process import ProcessState, Rendered
    from deskfleet.controllers.registry import controller_for
    from deskfleet.controllers.runtime import RUNTIME

    process = ProcessState()
    monkeypatch.setattr(RUNTIME, "process", process)
    process.gone.add("pool-uid")
    process.rendered.put(("ward", "desk"), Rendered("k", None, [], 10))  # type: ignore[arg-type]
    process.rendered.put(("ward", "other"), Rendered("k", None, [], 10))  # type: ignore[arg-type]
    process.replicas.put(("ward", "desk-abc", "d1"), 3, 2)
    body = {"metadata": {"name": "desk", "namespace": "ward", "uid": "pool-uid"}}
    on_event = handlers._event_handler(controller_for("SessionHostPool"))
    asyncio.run(on_event(namespace="ward", name="desk", body=body, type="DELETED"))
    assert "pool-uid" not in process.gone and len(process.rendered) == 1
    process.forget_child("Deployment", "ward", "desk-abc")  # its Deployments go with it
    assert len(process.replicas) == 0


def test_the_watch_handlers_forget_what_a_deleted_object_left() -> None:
    from deskfleet.controllers import handlers
    from deskfleet.controllers.registry import controller_for
    from deskfleet.controllers.runtime import RUNTIME

    body = {"metadata": {"name": "epr", "namespace": "ward", "uid": "app-uid"}}
    RUNTIME.process.gone.add("app-uid")
    try:
        on_event = handlers._event_handler(controller_for("PublishedApp"))
        asyncio.run(on_event(namespace="ward", name="epr", body=body, type="DELETED"))
        assert "app-uid" not in RUNTIME.process.gone
    finally:
        RUNTIME.process.gone.discard("app-uid")
        RUNTIME.facts.swap(("PublishedApp", "ward", "epr"), None)
