"""``openwop``: a small command line for the people who operate runs, built on :class:`OpenwopClient`.

    openwop runs create WORKFLOW_ID [--inputs JSON] [--wait]
    openwop runs get RUN_ID
    openwop runs watch RUN_ID            # follow live until it ends or waits on a human
    openwop runs cancel RUN_ID [--reason TEXT]
    openwop runs fork RUN_ID --mode replay|branch [--from-seq N]
    openwop runs resolve RUN_ID NODE_ID --value JSON  |  openwop runs resolve --token TOKEN --value JSON

The host comes from ``--base-url`` or ``OPENWOP_BASE_URL``, the key from ``OPENWOP_API_KEY`` (never a flag,
so it stays out of shell history). ``--json`` prints machine-readable output for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .client import OpenwopClient
from .errors import OpenwopError
from .models import RunEvent
from .waiting import WaitResult, describe_event

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openwop", description="Operate OpenWOP v1 runs.")
    parser.add_argument("--base-url", default=os.environ.get("OPENWOP_BASE_URL"), help="host URL (OPENWOP_BASE_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait (watch, --wait)")
    groups = parser.add_subparsers(dest="group", required=True)
    runs = groups.add_parser("runs", help="create, inspect and steer runs").add_subparsers(
        dest="command", required=True
    )

    create = runs.add_parser("create", help="start a run")
    create.add_argument("workflow_id")
    create.add_argument("--inputs", default=None, help="inputs as a JSON object")
    create.add_argument("--tag", action="append", dest="tags", help="tag (repeatable)")
    create.add_argument("--idempotency-key", default=None)
    create.add_argument("--wait", action="store_true", help="wait for the run to end")

    for name, text in (("get", "show a run's snapshot"), ("watch", "follow a run live")):
        runs.add_parser(name, help=text).add_argument("run_id")

    cancel = runs.add_parser("cancel", help="cancel a run")
    cancel.add_argument("run_id")
    cancel.add_argument("--reason", default=None)

    fork = runs.add_parser("fork", help="replay or branch a run from an event sequence")
    fork.add_argument("run_id")
    fork.add_argument("--mode", choices=("replay", "branch"), required=True)
    fork.add_argument("--from-seq", type=int, default=None)

    resolve = runs.add_parser("resolve", help="answer an interrupt")
    resolve.add_argument("run_id", nargs="?")
    resolve.add_argument("node_id", nargs="?")
    resolve.add_argument("--token", default=None, help="resolve with a signed token instead of run and node")
    resolve.add_argument("--value", required=True, help='resume value as JSON, e.g. \'{"action": "accept"}\'')
    return parser


def _json_arg(name: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"openwop: {name} is not valid JSON ({exc}); quote it, e.g. '{{\"key\": 1}}'.") from None


def _emit(args: argparse.Namespace, value: Any, text: str) -> None:
    if args.json:
        print(json.dumps(value, default=str))
    else:
        print(text)


def _watch(client: OpenwopClient, args: argparse.Namespace, run_id: str) -> WaitResult:
    def show(event: RunEvent) -> None:
        if args.json:
            print(json.dumps(event.to_wire(), default=str), flush=True)
            return
        line = describe_event(event)
        if line:
            print(f"[{event.sequence:>4}] {line}", flush=True)

    result = client.wait_for_run(run_id, timeout=args.timeout, stop_on_interrupt=True, on_event=show)
    if not args.json:
        if result.interrupt:
            print(f"waiting: {result.interrupt.title} (node {result.interrupt.node_id}, {result.interrupt.kind})")
        print(f"status: {result.status}")
    return result


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (0 ok, 1 run failed, 2 usage or API error)."""
    args = _parser().parse_args(argv)
    if not args.base_url:
        print("openwop: set --base-url or OPENWOP_BASE_URL to the host's URL.", file=sys.stderr)
        return 2
    try:
        with OpenwopClient(args.base_url, api_key=os.environ.get("OPENWOP_API_KEY") or None) as client:
            return _dispatch(client, args)
    except OpenwopError as exc:
        print(f"openwop: {exc}", file=sys.stderr)
        return 2


def _dispatch(client: OpenwopClient, args: argparse.Namespace) -> int:
    command = args.command
    if command == "create":
        created = client.runs_create(
            args.workflow_id, _json_arg("--inputs", args.inputs), tags=args.tags, idempotency_key=args.idempotency_key
        )
        _emit(args, created.to_wire(), f"{created.run_id} {created.status}")
        if args.wait:
            return _exit_code(_watch(client, args, created.run_id))
        return 0
    if command == "get":
        snapshot = client.runs_get(args.run_id)
        _emit(args, snapshot.to_wire(), json.dumps(snapshot.to_wire(), indent=2, default=str))
        return 0
    if command == "watch":
        return _exit_code(_watch(client, args, args.run_id))
    if command == "cancel":
        result = client.runs_cancel(args.run_id, reason=args.reason)
        _emit(args, result.to_wire(), f"{result.run_id} {result.status}")
        return 0
    if command == "fork":
        fork = client.runs_fork(args.run_id, mode=args.mode, from_seq=args.from_seq)
        _emit(args, fork.to_wire(), f"{fork.run_id} forked from {fork.source_run_id or args.run_id}")
        return 0
    value = _json_arg("--value", args.value)
    if args.token:
        resolution = client.interrupts_resolve_by_token(args.token, value)
    elif args.run_id and args.node_id:
        resolution = client.interrupts_resolve_by_run(args.run_id, args.node_id, value)
    else:
        print("openwop: resolve needs RUN_ID NODE_ID, or --token TOKEN.", file=sys.stderr)
        return 2
    _emit(args, resolution.to_wire(), f"resolved: run status {resolution.status or 'unknown'}")
    return 0


def _exit_code(result: WaitResult) -> int:
    return 1 if result.outcome in ("failed", "cancelled", "terminal-unknown") else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
