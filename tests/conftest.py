"""Fixtures: the real control plane (once per run), a namespace per test, and a deskfleet
operator process per test that needs one.

Tests under tests/cluster are marked `cluster`. If the bed cannot come up they fail;
they never skip, so a CI run cannot pass without having exercised the real thing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CRDS = REPO / "crds"
EXAMPLES = REPO / "examples"
FIXED_TIME = "2026-11-24T11:00:00+00:00"
PORTAL_URL = "http://deskfleet-portal.deskfleet.svc:8080"


def _load_testbed_module() -> Any:
    if "testbed" in sys.modules:  # once: free_port remembers the ports it handed out
        return sys.modules["testbed"]
    spec = importlib.util.spec_from_file_location("testbed", REPO / "hack" / "testbed.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["testbed"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.cluster)


@dataclass
class Bed:
    kubeconfig: str
    bin: str
    state: Any
    env: dict[str, str] = field(default_factory=dict)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kubectl = str(Path(self.bin) / "kubectl") if self.bin else "kubectl"
        proc = subprocess.run([kubectl, *args], input=stdin, capture_output=True, text=True,
                              env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        proc = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args).stdout)["items"]
        return items

    def apply(self, docs: list[dict[str, Any]] | str, namespace: str | None = None,
              check: bool = True, dry_run: bool = False) -> subprocess.CompletedProcess[str]:
        text = docs if isinstance(docs, str) else yaml.safe_dump_all(docs)
        args = ["apply", "--server-side", "--field-manager=test", "--force-conflicts",
                "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        if dry_run:
            args.append("--dry-run=server")
        return self.kubectl(*args, stdin=text, check=check)

    def metrics(self) -> str:
        return self.kubectl("get", "--raw", "/metrics").stdout


def gateway_bin() -> Path:
    """hack/build-gateway.sh's bin dir (Traefik, oauth2-proxy, gateway CRDs): built once,
    cached outside the repository."""
    proc = subprocess.run(["bash", str(REPO / "hack" / "build-gateway.sh")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"hack/build-gateway.sh failed:\n{proc.stderr[-5000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


def free_port() -> int:
    return int(_load_testbed_module().free_port())


def wait_until(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2,
               what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def open_bed(directory: Path) -> Bed:
    """The test bed in `directory` (started unless it runs), with the CRDs the tests
    need: deskfleet's, Gateway API's and Traefik's, and the example hospital's
    cluster-scoped parts."""
    testbed = _load_testbed_module()
    state = testbed.up(directory, nodes=3)
    env = {**os.environ, "KUBECONFIG": state.kubeconfig}
    if state.bin:
        env["PATH"] = f"{state.bin}{os.pathsep}{env['PATH']}"
    b = Bed(kubeconfig=state.kubeconfig, bin=state.bin, state=state, env=env)
    b.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    if state.bin:
        b.kubectl("apply", "--server-side", "-f", str(Path(state.bin) /
                                                        "gateway-api-crds.yaml"))
        # The operator's default gateway flavour renders traefik.io Middlewares beside
        # each HTTPRoute: their CRDs come with the gateway build (cached; a no-op here).
        b.kubectl("apply", "--server-side", "-f", str(gateway_bin() / "traefik-crds.yaml"))
    b.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    # Cluster-scoped parts of the example hospital (the PriorityClass its PACS pool uses).
    b.kubectl("apply", "--server-side", "-f", str(EXAMPLES / "00-namespace.yaml"))
    return b


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    testbed = _load_testbed_module()
    directory = Path(os.environ.get("DESKFLEET_TESTBED_DIR") or
                     tmp_path_factory.mktemp("testbed"))
    b = open_bed(directory)
    try:
        yield b
    finally:
        if not os.environ.get("DESKFLEET_KEEP_TESTBED"):
            testbed.down(directory)


@pytest.fixture
def namespace(bed: Bed) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    bed.kubectl("create", "namespace", name)
    wait_until(lambda: "default" in bed.kubectl("get", "sa", "-n", name, "-o", "name",
                                                check=False).stdout, what="default SA")
    yield name
    bed.kubectl("delete", "namespace", name, "--wait=false", check=False)


class Operator:
    """`deskfleet run` as a real process, scoped to the test's namespace."""

    def __init__(self, bed: Bed, namespace: str, log_path: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.bed, self.namespace, self.log_path = bed, namespace, log_path
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.liveness_port = 0
        self.metrics_port = 0
        # The scheduling clock (see deskfleet/clock.py), pinned so that schedule phases
        # do not depend on when the suite runs: a Tuesday 11:00 in London, outside the
        # example pools' storm and night phases. Tests that need another time write it.
        self.clock_file = log_path.parent / "clock"
        self.clock_file.write_text(FIXED_TIME)

    def start(self) -> None:
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        env = {**self.bed.env, **self.settings_env, **self.extra_env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deskfleet", "run", "-n", self.namespace,
             "--liveness-port", str(self.liveness_port),
             "--metrics-port", str(self.metrics_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_until(self.live, timeout=30, what="operator /healthz")

    @property
    def settings_env(self) -> dict[str, str]:
        """The operator's DESKFLEET_* settings in these tests."""
        return {"DESKFLEET_RESYNC_SECONDS": "600",
                "DESKFLEET_SCALING_PERIOD_SECONDS": "1",
                "DESKFLEET_CLOCK_FILE": str(self.clock_file),
                "DESKFLEET_PORTAL_URL": PORTAL_URL,
                "DESKFLEET_AUTH_SIGNIN": "https://auth.northgate.example/oauth2/start"}

    def live(self) -> bool:
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def operator(bed: Bed, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    op = Operator(bed, namespace, tmp_path / "operator.log")
    op.start()
    yield op
    op.stop()
    crashes = [line for line in op.logs().splitlines() if "Traceback" in line]
    assert not crashes, f"operator logged a traceback:\n{op.logs()[-5000:]}"


def example_docs(namespace: str) -> list[dict[str, Any]]:
    """The example hospital, moved into the test's namespace."""
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc["kind"] in ("Namespace", "PriorityClass"):
                continue
            doc["metadata"]["namespace"] = namespace
            docs.append(doc)
    return docs
