"""``openwop-devhost`` / ``python -m openwop_devhost``: serve the local OpenWOP host.

Logs where it listens and which workflows it loaded; never logs the API key itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from .faults import FaultConfigError, Faults
from .http.app import DEFAULT_API_KEY, create_app
from .server import bind_socket, make_server
from .webhooks import is_loopback
from .workflows.loading import WorkflowLoadError

logger = logging.getLogger("openwop_devhost")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="openwop-devhost",
        description="Run a local OpenWOP v1 host (in memory) for tests, examples and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3737, help="TCP port; 0 picks a free one (default 3737)")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"bearer API key clients must send (default: $OPENWOP_API_KEY, else {DEFAULT_API_KEY!r})",
    )
    parser.add_argument("--workflows", default=None, metavar="DIR", help="folder of *.json workflow definitions")
    parser.add_argument(
        "--keepalive", type=float, default=15.0, metavar="SECONDS", help="SSE keepalive interval (default 15)"
    )
    parser.add_argument(
        "--token-ttl", type=float, default=1800.0, metavar="SECONDS", help="interrupt token lifetime (default 1800)"
    )
    parser.add_argument(
        "--allow-insecure-webhooks",
        action="store_true",
        help="allow http:// webhooks to loopback receivers (default: https only)",
    )
    parser.add_argument(
        "--run-pages",
        choices=["public", "api-key"],
        default=None,
        help="who may open a run's HTML page (what a browser gets at /v1/runs/{id}): 'public' needs no API key "
        "(default when --host is a loopback address), 'api-key' asks for it (default otherwise)",
    )
    parser.add_argument(
        "--faults", default=None, metavar="JSON", help="fault switches as JSON, e.g. '{\"latency_ms\": 50}'"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (default info)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if args.api_key:
        api_key, key_source = args.api_key, "from --api-key"
    elif os.environ.get("OPENWOP_API_KEY"):
        api_key, key_source = os.environ["OPENWOP_API_KEY"], "from $OPENWOP_API_KEY"
    else:
        api_key, key_source = DEFAULT_API_KEY, f"default development key {DEFAULT_API_KEY!r}"
    faults = None
    if args.faults:
        try:
            faults = Faults.from_dict(json.loads(args.faults))
        except (ValueError, FaultConfigError) as exc:
            logger.error("invalid --faults: %s", exc)
            return 2
    run_pages = args.run_pages or ("public" if is_loopback(args.host) else "api-key")
    try:
        app = create_app(
            api_key,
            workflows_dir=args.workflows,
            keepalive_interval=args.keepalive,
            faults=faults,
            token_ttl_seconds=args.token_ttl,
            allow_insecure_webhooks=args.allow_insecure_webhooks,
            run_pages=run_pages,
        )
    except (WorkflowLoadError, ValueError) as exc:
        logger.error("cannot start: %s", exc)
        return 2
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 2
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    state = app.state.devhost
    logger.info("openwop devhost listening on http://%s:%d (API key: set, %s)", host, port, key_source)
    logger.info("loaded %d workflows: %s", len(state.workflows), ", ".join(sorted(state.workflows)))
    logger.info(
        "run pages: a browser opening http://%s:%d/v1/runs/<run id> gets an HTML page (%s)",
        host,
        port,
        "no API key needed" if run_pages == "public" else "only with the API key",
    )
    if faults is not None:
        logger.info("fault switches: %s", json.dumps(faults.to_dict()))
    server = make_server(app, state, log_level=args.log_level, abrupt=lambda: False, graceful_timeout=2)
    # uvicorn re-raises the stop signal to the handler that was installed before it; make that a
    # no-op so Ctrl-C / SIGTERM end with a clean exit status after the graceful shutdown.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _ignore_signal)
    server.run(sockets=[sock])
    logger.info("openwop devhost stopped")
    return 0


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    return None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
