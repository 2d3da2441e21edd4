"""`deskfleet agent`: its command-line options, and the shell that starts the loop."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _path(text: str) -> Path | None:
    return Path(text) if text else None


def add_arguments(agent: argparse.ArgumentParser) -> None:
    agent.add_argument("--pod", default=os.environ.get("POD_NAME", ""))
    agent.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", ""))
    agent.add_argument("--port", type=int, required=True, help="the session port")
    agent.add_argument("--session-source", choices=["tcp", "host"], default="tcp",
                       help="count established TCP connections on the session port (tcp), "
                       "or read the host's own report, see docs/session-contract.md (host)")
    agent.add_argument("--host-report-file", default="/run/deskfleet-host/sessions.json",
                       help="the host's report (session source host)")
    agent.add_argument("--host-report-url", default="",
                       help="read the report from this local URL instead of the file")
    agent.add_argument("--host-report-max-age", type=float, default=90.0,
                       help="a report written longer ago than this (seconds) is not used")
    agent.add_argument("--proc-net", default="/proc/self/net",
                       help="where the TCP tables are (the pod's network namespace)")
    agent.add_argument("--annotations-file", default="/etc/deskfleet/podinfo/annotations",
                       help="the downward-API file of the pod's annotations ('' to ignore)")
    agent.add_argument("--drain-file", default="/run/deskfleet/draining",
                       help="created while draining, for the host to read ('' to disable)")
    agent.add_argument("--notice-file", default="/run/deskfleet/notice.json",
                       help="the drain notice for the host to show ('' to disable)")
    agent.add_argument("--logoff-file", default="/run/deskfleet/logoff.json",
                       help="the logoff request for the host to act on ('' to disable)")
    agent.add_argument("--interval", type=float, default=2.0, help="seconds between counts")
    agent.add_argument("--heartbeat", type=float, default=30.0,
                       help="report at least this often even if unchanged (seconds)")
    agent.add_argument("--metrics-port", type=int, default=15090, help="0 to disable")


def run_cli(args: argparse.Namespace) -> int:
    import logging

    from ..kube.client import Kube, load_api_client
    from .reporter import Agent, AgentConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.pod or not args.namespace:
        print("error: --pod and --namespace (or POD_NAME and POD_NAMESPACE) are required",
              file=sys.stderr)
        return 2
    config = AgentConfig(
        pod=args.pod, namespace=args.namespace, port=args.port, source=args.session_source,
        proc_net=Path(args.proc_net), host_report_file=Path(args.host_report_file),
        host_report_url=args.host_report_url or None,
        host_report_max_age=args.host_report_max_age,
        annotations_file=_path(args.annotations_file), drain_file=_path(args.drain_file),
        notice_file=_path(args.notice_file), logoff_file=_path(args.logoff_file),
        interval=args.interval, heartbeat=args.heartbeat, metrics_port=args.metrics_port)
    Agent(config, Kube(load_api_client(), field_manager="deskfleet-agent")).run()
    return 0
