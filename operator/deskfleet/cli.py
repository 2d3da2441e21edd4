"""The `deskfleet` command line: one thin function per subcommand."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import manifests

Command = Callable[[argparse.Namespace], int]


def _cmd_crds(args: argparse.Namespace) -> int:
    from .api.crdgen import all_crds

    crds = all_crds()
    if not args.out:
        sys.stdout.write(manifests.dump_all(crds))
        return 0
    stale = []
    for out in args.out:
        for crd in crds:
            path = Path(out) / f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"
            text = manifests.dump_all([crd])
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print("CRDs drifted from the models; run `deskfleet crds --out crds "
              "--out charts/deskfleet/crds`:\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from .render.offline import render_files

    try:
        children = render_files([Path(f) for f in args.filename])
    except manifests.ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(manifests.dump_all(children))
    from .settings import Settings

    if not Settings().portal_url:
        print("warning: DESKFLEET_PORTAL_URL is not set, so these routes ask no portal and "
              "enforce no AccessPolicy (the operator reports each app Degraded, "
              "AccessNotEnforced); set it as the chart does to see the enforcing routes",
              file=sys.stderr)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import socket
    import uuid

    from .controllers.runner import run_operator

    election = None
    if args.leader_election:
        namespace = args.lease_namespace or os.environ.get("POD_NAMESPACE") or "default"
        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        election = {"namespace": namespace, "name": args.lease_name, "identity": identity,
                    "duration": args.lease_duration, "renew": args.lease_duration / 3}
    return run_operator(
        namespaces=args.namespace,
        liveness_port=args.liveness_port,
        metrics_port=args.metrics_port,
        verbose=args.verbose,
        bind_address=args.bind_address,
        election=election,
    )


def _cmd_portal(args: argparse.Namespace) -> int:
    from .portal.run import run_portal
    from .portal.settings import SettingsError, load_settings

    try:
        settings = load_settings(listen_address=args.listen_address, port=args.port,
                                 internal_port=args.internal_port,
                                 namespaces=args.namespace or None)
    except SettingsError as err:
        print(f"deskfleet portal: {err}", file=sys.stderr)
        return 2
    return run_portal(settings)


def _cmd_explain(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime

    from .policy import Request, evaluate, who_can_open
    from .policy.explain import (
        decision_to_dict,
        format_decision,
        format_who_can_open,
        rows_to_dict,
    )
    from .policy.sources import from_cluster, from_files, split

    try:
        if args.filename:
            bodies = from_files([Path(f) for f in args.filename])
        else:
            if not args.namespace:
                print("error: give -f FILE, or -n NAMESPACE to ask the cluster",
                      file=sys.stderr)
                return 2
            bodies = from_cluster(args.namespace)
        policies, apps, namespace = split(bodies, args.namespace)
    except manifests.ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    app = args.app or args.who_can_open
    if app not in apps:
        print(f"error: no PublishedApp {app!r} in namespace {namespace}", file=sys.stderr)
        return 2
    if args.who_can_open:
        rows = who_can_open(policies, app, apps[app])
        print(json.dumps(rows_to_dict(rows), indent=2) if args.json
              else format_who_can_open(app, rows))
        return 0
    try:
        when = datetime.fromisoformat(args.time) if args.time else datetime.now(UTC)
        request = Request(user=args.user, groups=frozenset(args.group), source_ip=args.ip,
                          country=args.country, mfa=args.mfa, time=when)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    decision = evaluate(policies, app, apps[app], request)
    print(json.dumps(decision_to_dict(decision, request), indent=2) if args.json
          else format_decision(decision, request))
    return 0 if decision.allowed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deskfleet",
        description="Remote-workspace infrastructure on Kubernetes: session-host pools, "
        "published apps and access policies.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the cluster in KUBECONFIG")
    run.add_argument("-n", "--namespace", action="append", default=[],
                     help="watch this namespace (repeatable; glob patterns allowed); "
                     "all namespaces when omitted")
    run.add_argument("--leader-election", action="store_true",
                     help="several replicas: only the holder of a Lease acts")
    run.add_argument("--lease-name", default="deskfleet-leader")
    run.add_argument("--lease-namespace", default="",
                     help="where the Lease lives (default: POD_NAMESPACE, else default)")
    run.add_argument("--lease-duration", type=float, default=15.0,
                     help="seconds without renewal before a standby takes over")
    run.add_argument("--liveness-port", type=int, default=8080,
                     help="port of the /healthz endpoint (0 to disable)")
    run.add_argument("--metrics-port", type=int, default=9090,
                     help="port of the Prometheus /metrics endpoint (0 to disable)")
    run.add_argument("--bind-address", default="127.0.0.1",
                     help="address of the metrics and health endpoints (0.0.0.0 in a pod)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_cmd_run)

    portal = sub.add_parser(
        "portal", help="serve the landing page and the authorization endpoint gateways "
        "call on every request (settings: DESKFLEET_PORTAL_* variables, see "
        "docs/portal.md)")
    portal.add_argument("-n", "--namespace", action="append", default=[],
                        help="serve this namespace's apps (repeatable); all when omitted")
    portal.add_argument("--listen-address", help="default 127.0.0.1 (0.0.0.0 in a pod)")
    portal.add_argument("--port", type=int, help="public port (default 8080)")
    portal.add_argument("--internal-port", type=int,
                        help="metrics, health and stats port (default 9090)")
    portal.set_defaults(func=_cmd_portal)

    crds = sub.add_parser("crds", help="print or write the CRDs generated from the models")
    crds.add_argument("--out", action="append", default=[],
                      help="write one file per CRD into this directory (repeatable)")
    crds.add_argument("--check", action="store_true",
                      help="fail if the files in --out differ from the models")
    crds.set_defaults(func=_cmd_crds)

    from .agent.cli import add_arguments as add_agent_arguments
    from .agent.cli import run_cli as run_agent

    agent = sub.add_parser("agent", help="count this host's sessions and report them "
                           "(runs as a sidecar of every session host)")
    add_agent_arguments(agent)
    agent.set_defaults(func=run_agent)

    explain = sub.add_parser(
        "explain", help="may this user open this app, with which controls, and why; "
        "or who can open an app")
    source = explain.add_argument_group("where the policies come from")
    source.add_argument("-f", "--filename", action="append", default=[],
                        help="YAML files or directories (repeatable); else the cluster")
    source.add_argument("-n", "--namespace", help="the namespace of the app")
    question = explain.add_mutually_exclusive_group(required=True)
    question.add_argument("--app", help="the PublishedApp to open")
    question.add_argument("--who-can-open", metavar="APP", help="the reverse view")
    explain.add_argument("--user", default="", help="user name or e-mail")
    explain.add_argument("--group", action="append", default=[], help="a group (repeatable)")
    explain.add_argument("--ip", default="127.0.0.1", help="the client's source address")
    explain.add_argument("--country", help="ISO 3166 country of the source address")
    explain.add_argument("--mfa", action="store_true", help="the user completed MFA")
    explain.add_argument("--time", help="ISO 8601 with offset (default: now)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(func=_cmd_explain)

    from .simulation import add_arguments as add_simulation_arguments
    from .simulation import run_cli as run_simulation

    simulate = sub.add_parser(
        "simulate", help="a simulated hospital day: deskfleet's autoscaling against static "
        "peak sizing, an HPA-style autoscaler and the clairvoyant bound")
    add_simulation_arguments(simulate)
    simulate.set_defaults(func=run_simulation)

    render = sub.add_parser(
        "render", help="print the manifests the operator would create, offline")
    render.add_argument("-f", "--filename", action="append", required=True,
                        help="a YAML file or directory of deskfleet manifests (repeatable)")
    render.set_defaults(func=_cmd_render)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
