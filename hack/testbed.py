#!/usr/bin/env python3
"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and kwok simulating the nodes.

    python hack/testbed.py up [--dir .testbed] [--nodes 3]   # start, write kubeconfig
    python hack/testbed.py down [--dir .testbed]             # stop everything started
    python hack/testbed.py env [--dir .testbed]              # print export lines
    python hack/testbed.py restart --component kube-apiserver [--downtime 3]
        # stop one component, start it again with the same flags on the same ports

When KUBECONFIG names an existing cluster (kind, k3d, a real one) and --dir holds no
test bed, `up` uses that cluster instead of building or starting anything, and `down`
leaves it alone.

Only the standard library and `openssl` are used, so it runs before any virtualenv
exists. The binaries come from hack/build-controlplane.sh (built once, cached).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "hack" / "build-controlplane.sh"
# A loopback range, so that a Service's ClusterIP is an address a local process can
# listen on: the gateway end-to-end tests (tests/support/) put stand-in session hosts on
# ClusterIP:port, and a real gateway on this machine dials them there.
SERVICE_CIDR = "127.96.0.0/16"
API_SERVICE_IP = "127.96.0.1"  # the `kubernetes` Service: the first address of the range
# Pod IPs stay outside loopback: EndpointSlice validation refuses loopback addresses, and
# the endpoint controller must publish kwok's Pods (tests watch hosts leave the Service).
# Nothing ever dials a Pod IP; kwok's Pods run nothing.
POD_CIDR = "10.244.0.1/16"


@dataclass
class State:
    dir: str
    bin: str
    kubeconfig: str
    external: bool = False
    apiserver_port: int = 0
    etcd_port: int = 0
    pids: dict[str, int] | None = None
    # Each component's command line, so `restart` brings it back on the same ports with
    # the same flags (the kubeconfig and every client's settings stay valid).
    argv: dict[str, list[str]] | None = None


def log(msg: str) -> None:
    print(f"[testbed] {msg}", file=sys.stderr, flush=True)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now and never handed out before by this process: a port is only
    reserved once its server binds it, and two servers started one after the other
    (two operator replicas, each with two ports) were once given the same one."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def build_binaries() -> Path:
    out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE,
                         text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(pki: Path) -> None:
    """A CA, the API server's serving cert, an admin client cert, the SA signing key."""
    pki.mkdir(parents=True, exist_ok=True)
    serving_ext = (
        f"subjectAltName=IP:127.0.0.1,IP:{API_SERVICE_IP},DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth\n")
    ext_path = pki / "serving.ext"
    # Made again when the address plan changed under a kept bed directory.
    if (pki / "admin.crt").exists() and ext_path.exists() and \
            ext_path.read_text() == serving_ext:
        return
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=deskfleet-testbed-ca", cwd=pki)
    ext_path.write_text(serving_ext)
    (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subj, ext in (("apiserver", "/CN=kube-apiserver", "serving.ext"),
                            ("admin", "/O=system:masters/CN=testbed-admin", "client.ext")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", subj, cwd=pki)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "3650", "-out", f"{name}.crt", "-extfile", ext,
                cwd=pki)
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, pki: Path, port: int) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "deskfleet-testbed",
        "clusters": [{"name": "deskfleet-testbed", "cluster": {
            "server": f"https://127.0.0.1:{port}", "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": "testbed-admin", "user": {
            "client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")}}],
        "contexts": [{"name": "deskfleet-testbed", "context": {
            "cluster": "deskfleet-testbed", "user": "testbed-admin"}}],
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    path.chmod(0o600)


def spawn(name: str, argv: list[str], logs: Path) -> int:
    out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    # A new session: the processes outlive this script and are stopped by `down`.
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def launch(state: State, name: str, argv: list[str], logs: Path) -> None:
    """Spawn a component and record its pid and command line in the state."""
    assert state.pids is not None and state.argv is not None
    state.argv[name] = argv
    state.pids[name] = spawn(name, argv, logs)


def wait_for(what: str, check, timeout: float, pids: dict[str, int], logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for name, pid in pids.items():
            if not alive(pid):
                tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"[testbed] {name} exited while waiting for {what}:\n{tail}")
        time.sleep(0.2)
    raise SystemExit(f"[testbed] timed out after {timeout:.0f}s waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as dead
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def apiserver_ready(pki: Path, port: int) -> bool:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=ctx,
                                    timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def kubectl(state: State, *args: str, stdin: str | None = None) -> str:
    return subprocess.run([str(Path(state.bin) / "kubectl"), "--kubeconfig", state.kubeconfig,
                           *args], input=stdin, check=True, capture_output=True,
                          text=True).stdout


def node_manifest(name: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                                "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                "topology.kubernetes.io/zone": f"zone-{name[-1]}"}},
        "status": {"allocatable": {"cpu": "64", "memory": "512Gi", "pods": "1000"},
                   "capacity": {"cpu": "64", "memory": "512Gi", "pods": "1000"}},
    }


# A session host image takes as long to start as its tag says when the tag ends in
# `-starts-in-<seconds>s` (`desktop:2-starts-in-10s`): tests of what users meet while
# new hosts boot (a logon storm mid-rollout) need hosts that are not Ready at once. Any
# other image is Ready as soon as kwok sees it. The delay is given as a moment (created
# + seconds), not a duration: kwok restarts a duration on every update of the pod, and
# agents annotate their pods every few seconds.
STARTS_IN = ('(.spec.containers[0].image | capture("-starts-in-(?<s>[0-9]+)s$") | .s '
             '| tonumber) as $s | .metadata.creationTimestamp | fromdate + $s | todate')


def kwok_stages(bin_dir: Path, directory: Path) -> Path:
    """kwok's stock stages (cached with the binaries) with the pod-ready stage delayed
    as STARTS_IN says; an image without the suffix gives no value, hence no delay."""
    stock = (bin_dir / "kwok-stages.yaml").read_text()
    anchor = "  name: pod-ready\nspec:\n"
    if anchor not in stock:
        raise SystemExit(f"no pod-ready stage in {bin_dir / 'kwok-stages.yaml'}")
    delay = ("  delay:\n    durationMilliseconds: 0\n    durationFrom:\n      jq:\n"
             f"        expression: '{STARTS_IN}'\n")
    path = directory / "kwok-stages.yaml"
    path.write_text(stock.replace(anchor, anchor + delay, 1))
    return path


def up(directory: Path, nodes: int) -> State:
    existing = load_state(directory)
    if existing and existing.pids and all(alive(p) for p in existing.pids.values()):
        log(f"already running (kubeconfig {existing.kubeconfig})")
        return existing
    external = os.environ.get("KUBECONFIG")
    if external and Path(external).exists() and not existing:
        log(f"using the cluster in KUBECONFIG={external}; nothing is built or started")
        state = State(dir=str(directory), bin="", kubeconfig=external, external=True)
        save_state(state)
        return state
    if existing:
        down(directory)

    started = time.monotonic()
    bin_dir = build_binaries()
    directory.mkdir(parents=True, exist_ok=True)
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    pki = directory / "pki"
    make_pki(pki)
    shutil.rmtree(directory / "etcd", ignore_errors=True)  # every bed starts empty
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    kubeconfig = directory / "kubeconfig"
    write_kubeconfig(kubeconfig, pki, api_port)
    b = str(bin_dir)
    pids: dict[str, int] = {}
    state = State(dir=str(directory), bin=b, kubeconfig=str(kubeconfig),
                  apiserver_port=api_port, etcd_port=etcd_port, pids=pids, argv={})

    launch(state, "etcd", [
        f"{b}/etcd", "--name=testbed", f"--data-dir={directory / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
        f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
        f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
        f"--initial-cluster=testbed=http://127.0.0.1:{peer_port}",
        "--listen-metrics-urls=", "--unsafe-no-fsync", "--log-level=warn",
        "--quota-backend-bytes=8589934592",
    ], logs)
    save_state(state)
    launch(state, "kube-apiserver", [
        f"{b}/kube-apiserver", f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--secure-port={api_port}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true", "--profiling=false",
        "--max-requests-inflight=1000", "--max-mutating-requests-inflight=500",
        "--event-ttl=1h",
    ], logs)
    save_state(state)
    wait_for("kube-apiserver /readyz", lambda: apiserver_ready(pki, api_port), 90, pids, logs)

    common = [f"--kubeconfig={kubeconfig}", "--bind-address=127.0.0.1", "--leader-elect=false"]
    launch(state, "kube-controller-manager", [
        f"{b}/kube-controller-manager", *common, f"--secure-port={free_port()}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}", f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20",
        "--concurrent-gc-syncs=40", "--kube-api-qps=200", "--kube-api-burst=400",
    ], logs)
    launch(state, "kube-scheduler", [
        f"{b}/kube-scheduler", *common, f"--secure-port={free_port()}",
    ], logs)
    launch(state, "kwok", [
        f"{b}/kwok", f"--kubeconfig={kubeconfig}",
        f"--config={kwok_stages(bin_dir, directory)}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1", "--server-address=",
        # Heartbeats through Leases, as kubelets do; without it nodes flap NotReady.
        "--node-lease-duration-seconds=40",
    ], logs)
    save_state(state)

    manifests = "\n---\n".join(json.dumps(node_manifest(f"kwok-node-{i}")) for i in range(nodes))
    kubectl(state, "apply", "-f", "-", stdin=manifests)

    def default_sa() -> bool:  # pods can be created once the SA controller has run
        return "default" in kubectl(state, "get", "sa", "-n", "default", "-o", "name")

    wait_for("simulated nodes Ready", lambda: nodes_ready(state, nodes), 60, pids, logs)
    wait_for("default ServiceAccount", default_sa, 60, pids, logs)
    log(f"up in {time.monotonic() - started:.1f}s: {nodes} nodes, "
        f"kube-apiserver {api_version(state)} on https://127.0.0.1:{api_port}")
    return state


def nodes_ready(state: State, nodes: int | None = None) -> bool:
    """Every node Ready (and `nodes` of them, if given); False while the API is away."""
    try:
        out = kubectl(state, "get", "nodes", "-o",
                      "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}")
    except subprocess.CalledProcessError:
        return False
    statuses = out.split()
    return bool(statuses) and all(s == "True" for s in statuses) and (
        nodes is None or len(statuses) == nodes)


def _own_state(directory: Path, component: str) -> State:
    state = load_state(directory)
    if not state or state.external:
        raise SystemExit(f"[testbed] no test bed of ours in {directory}")
    if not state.argv or not state.pids or component not in state.argv:
        raise SystemExit(f"[testbed] unknown component {component!r} (or a bed started "
                         "before restarts were supported: run `down` and `up` again)")
    return state


def stop_component(directory: Path, component: str, sig: int = signal.SIGTERM) -> None:
    """Stop one component of a running bed (its process group), leaving the rest up.
    SIGTERM lets it shut down cleanly; SIGKILL is a crash. `start_component` brings it
    back."""
    state = _own_state(directory, component)
    assert state.pids is not None
    pid = state.pids[component]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
    log(f"stopped {component} (pid {pid}, {signal.Signals(sig).name})")


def start_component(directory: Path, component: str, timeout: float = 90) -> State:
    """Start a stopped component again with the command line `up` recorded (same ports,
    same flags, same data directory), then wait until the whole bed is healthy: every
    process running, the API server ready, every node Ready."""
    state = _own_state(directory, component)
    assert state.pids is not None and state.argv is not None
    logs, pki = directory / "logs", directory / "pki"
    if alive(state.pids[component]):
        raise SystemExit(f"[testbed] {component} is still running")
    ports = {"kube-apiserver": state.apiserver_port, "etcd": state.etcd_port}
    if component in ports:  # the old listener must be gone, or the new one cannot bind
        wait_for(f"port {ports[component]} to be free", lambda: port_free(ports[component]),
                 30, {}, logs)
    state.pids[component] = spawn(component, state.argv[component], logs)
    save_state(state)
    wait_for("kube-apiserver /readyz", lambda: apiserver_ready(pki, state.apiserver_port),
             timeout, state.pids, logs)
    wait_for("nodes Ready", lambda: nodes_ready(state), timeout, state.pids, logs)
    log(f"started {component} again (pid {state.pids[component]})")
    return state


def restart(directory: Path, component: str, downtime: float = 0.0,
            sig: int = signal.SIGTERM) -> State:
    """Stop `component`, keep it down for `downtime` seconds, start it again with the
    same flags on the same ports, and wait until the bed is healthy."""
    stop_component(directory, component, sig)
    time.sleep(downtime)
    return start_component(directory, component)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def api_version(state: State) -> str:
    out = subprocess.run([str(Path(state.bin) / "kube-apiserver"), "--version"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out.split()[-1]


def down(directory: Path) -> None:
    state = load_state(directory)
    if not state:
        log("nothing to stop")
        return
    if state.external:
        log("external cluster: left alone")
        (directory / "state.json").unlink(missing_ok=True)
        return
    # Reverse start order: nodes and controllers first, etcd last.
    for name, pid in reversed(list((state.pids or {}).items())):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
        log(f"stopped {name}")
    (directory / "state.json").unlink(missing_ok=True)


def save_state(state: State) -> None:
    Path(state.dir, "state.json").write_text(json.dumps(asdict(state), indent=2))


def load_state(directory: Path) -> State | None:
    path = directory / "state.json"
    if not path.exists():
        return None
    return State(**json.loads(path.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "env", "restart"])
    parser.add_argument("--dir", default=str(REPO / ".testbed"))
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--component", default="kube-apiserver",
                        help="what `restart` restarts: etcd, kube-apiserver, "
                        "kube-controller-manager, kube-scheduler or kwok")
    parser.add_argument("--downtime", type=float, default=0.0,
                        help="seconds `restart` keeps the component stopped")
    args = parser.parse_args()
    directory = Path(args.dir).resolve()
    if args.action == "up":
        state = up(directory, args.nodes)
        print(f"export KUBECONFIG={state.kubeconfig}")
        if state.bin:
            print(f"export PATH={state.bin}:$PATH")
    elif args.action == "down":
        down(directory)
    elif args.action == "restart":
        restart(directory, args.component, args.downtime)
    else:
        state = load_state(directory)
        if not state:
            raise SystemExit("[testbed] not running")
        print(f"export KUBECONFIG={state.kubeconfig}")
        if state.bin:
            print(f"export PATH={state.bin}:$PATH")


if __name__ == "__main__":
    main()
