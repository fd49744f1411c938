"""``openwop``: a small command line for the people who operate runs, built on :class:`OpenwopClient`.

    openwop runs create WORKFLOW_ID [--inputs JSON] [--wait]
    openwop runs get RUN_ID
    openwop runs watch RUN_ID            # follow live until it ends or waits on a human
    openwop runs cancel RUN_ID [--reason TEXT]
    openwop runs fork RUN_ID --mode replay|branch [--from-seq N]
    openwop runs resolve RUN_ID NODE_ID --value JSON  |  openwop runs resolve --token TOKEN --value JSON

The host comes from ``--base-url`` or ``OPENWOP_BASE_URL``, the key from ``OPENWOP_API_KEY`` (never a flag,
so it stays out of shell history). ``--json`` prints machine-readable output for scripts. The common options
(``--base-url``, ``--json``, ``--timeout``) go before or after the command.

Exit codes: 0 ok (for ``watch`` and ``--wait``: the run completed or waits on someone), 1 the run failed or
was cancelled, 2 a usage error or an error from the host (the message says which and what to do), 130 Ctrl-C.
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
from .models import RunEvent, RunSnapshot
from .waiting import ProgressLines, WaitResult

__all__ = ["main", "run"]


class _UsageError(Exception):
    """A command line the CLI can tell is wrong before calling the host (exit code 2)."""


def _common(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes; on the subcommands they default to "not given" so that an option
    placed before the command is not overwritten."""
    parent = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS if suppress else None)
    parent.add_argument("--base-url", help="host URL (default: $OPENWOP_BASE_URL)")
    parent.add_argument("--json", action="store_true", help="print JSON for scripts (one document per line)")
    parent.add_argument("--timeout", type=float, help="longest wait in seconds (watch, --wait)")
    return parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openwop",
        description="Operate OpenWOP v1 runs. The API key is read from $OPENWOP_API_KEY.",
        parents=[_common(suppress=False)],
    )
    common = [_common(suppress=True)]
    groups = parser.add_subparsers(dest="group", required=True)
    runs = groups.add_parser("runs", help="create, inspect and steer runs", parents=common).add_subparsers(
        dest="command", required=True
    )

    create = runs.add_parser("create", help="start a run", parents=common)
    create.add_argument("workflow_id")
    create.add_argument("--inputs", default=None, help="inputs as a JSON object")
    create.add_argument("--tag", action="append", dest="tags", help="tag (repeatable)")
    create.add_argument("--idempotency-key", default=None)
    create.add_argument("--wait", action="store_true", help="then follow the run until it ends or waits on someone")

    for name, text in (("get", "show a run's snapshot"), ("watch", "follow a run live")):
        runs.add_parser(name, help=text, parents=common).add_argument("run_id")

    cancel = runs.add_parser("cancel", help="cancel a run", parents=common)
    cancel.add_argument("run_id")
    cancel.add_argument("--reason", default=None)

    fork = runs.add_parser("fork", help="replay or branch a run from an event sequence", parents=common)
    fork.add_argument("run_id")
    fork.add_argument("--mode", choices=("replay", "branch"), required=True)
    fork.add_argument("--from-seq", type=int, default=None)

    resolve = runs.add_parser("resolve", help="answer an interrupt", parents=common)
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
        raise _UsageError(f"{name} is not valid JSON ({exc}); quote it, e.g. '{{\"key\": 1}}'.") from None


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _emit(args: argparse.Namespace, value: Any, text: str) -> None:
    print(_dumps(value) if args.json else text, flush=True)


def _watch(client: OpenwopClient, args: argparse.Namespace, run_id: str) -> WaitResult:
    describe = ProgressLines()

    def show(event: RunEvent) -> None:
        if args.json:
            print(_dumps(event.to_wire()), flush=True)
            return
        line = describe(event)
        if line:
            print(f"[{event.sequence:>4}] {line}", flush=True)

    result = client.wait_for_run(run_id, timeout=args.timeout, stop_on_interrupt=True, on_event=show)
    interrupt = result.interrupt
    if args.json:
        # the last line: how the wait ended (events have a "type"; this has an "outcome")
        summary: dict[str, Any] = {"runId": result.run_id, "status": result.status, "outcome": result.outcome}
        summary["outputs"] = result.outputs if result.outcome == "completed" else None
        summary["error"] = result.snapshot.error.to_wire() if result.snapshot.error else None
        summary["interrupt"] = interrupt.to_wire() if interrupt else None
        print(_dumps(summary), flush=True)
        return result
    if interrupt:
        print(f"waiting: {interrupt.title} (node {interrupt.node_id}, {interrupt.kind})")
        print(f"answer with: openwop runs resolve {result.run_id} {interrupt.node_id} --value JSON")
    print(f"status: {result.status}")
    _print_result(result.snapshot)
    return result


def _print_result(snapshot: RunSnapshot) -> None:
    if snapshot.status == "completed":
        print(f"outputs: {_dumps(snapshot.outputs)}")
    elif snapshot.error:
        print(f"error: {snapshot.error.code}: {snapshot.error.message}")


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (0 ok, 1 run failed, 2 usage or API error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage and the error (or --help)
        return exc.code if isinstance(exc.code, int) else 2
    base_url = args.base_url or os.environ.get("OPENWOP_BASE_URL")
    if not base_url:
        print("openwop: set --base-url or OPENWOP_BASE_URL to the host's URL.", file=sys.stderr)
        return 2
    try:
        with OpenwopClient(base_url, api_key=os.environ.get("OPENWOP_API_KEY") or None) as client:
            return _dispatch(client, args)
    except (OpenwopError, _UsageError) as exc:
        print(f"openwop: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("openwop: interrupted (the run goes on on the host).", file=sys.stderr)
        return 130


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
        if args.json:
            _emit(args, snapshot.to_wire(), "")
        else:
            print(f"{snapshot.run_id} {snapshot.status} (workflow {snapshot.workflow_id or '?'})")
            _print_result(snapshot)
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
        raise _UsageError("resolve needs RUN_ID NODE_ID, or --token TOKEN.")
    _emit(args, resolution.to_wire(), f"resolved: run status {resolution.status or 'unknown'}")
    return 0


def _exit_code(result: WaitResult) -> int:
    return 1 if result.outcome in ("failed", "cancelled", "terminal-unknown") else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
