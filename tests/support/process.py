"""Start a helper process for a test and always stop it: its own process group, output
to a log file, a readiness check with the log's tail in the error when it never gets
ready."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _testbed() -> Any:
    """hack/testbed.py, loaded once per process (the same module tests/conftest.py uses,
    so that free_port never hands out a port twice)."""
    if "testbed" not in sys.modules:
        spec = importlib.util.spec_from_file_location("testbed", REPO / "hack" / "testbed.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["testbed"] = module
        spec.loader.exec_module(module)
    return sys.modules["testbed"]


def free_port() -> int:
    """A free port on 127.0.0.1 that this process has not handed out before."""
    return int(_testbed().free_port())


def log_tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running(argv: list[str], log_path: Path, *, ready: Callable[[], bool],
            what: str, env: dict[str, str] | None = None, timeout: float = 60,
            cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run argv until the block ends; yield once `ready()` is true.

    The process gets a session of its own, so SIGTERM (then SIGKILL after 10 s) reaches
    whatever it started too. Raises AssertionError with the log's tail if it exits or is
    not ready within `timeout` seconds."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise AssertionError(f"{what} exited with {proc.returncode} before it was "
                                     f"ready:\n{log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not ready after {timeout}s:\n"
                                     f"{log_tail(log_path)}")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_until(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2,
               what: str = "condition") -> Any:
    """The predicate's first truthy answer; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
