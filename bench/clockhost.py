"""The local OpenWOP host in a process of its own, printing the moment it emits each terminal event.

It is ``openwop_devhost.DevHost`` plus one engine listener (the hook the host's webhooks use): when a
run's ``run.completed`` / ``run.failed`` / ``run.cancelled`` is appended to its log (before any stream
sends it), the listener prints ``EMIT <run_id> <time.monotonic()>``. ``CLOCK_MONOTONIC`` is one clock for
the whole machine on Linux, so the benchmark process can subtract it from its own ``time.monotonic()``.

    python -m bench.clockhost --api-key K    # prints "listening on http://127.0.0.1:N", then EMIT lines

A line ``RESTART <seconds>`` on its stdin restarts the HTTP server (``DevHost.stop()``, which cuts every open
stream abruptly, then ``start()`` on the same port after that many seconds; runs keep executing meanwhile, as
on a host that keeps its state across a restart); it prints ``DOWN <t>`` before and ``UP <t>`` after.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from openwop_devhost import DevHost

TERMINAL = frozenset({"run.completed", "run.failed", "run.cancelled"})


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser(description="local OpenWOP host that reports terminal-event emission times")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--keepalive", type=float, default=15.0)
    args = parser.parse_args(argv)
    write = sys.stdout.write
    flush = sys.stdout.flush

    def on_event(run: Any, event: Any) -> None:
        if event.type in TERMINAL:
            emitted = time.monotonic()
            write(f"EMIT {run.run_id} {emitted:.6f}\n")
            flush()

    with DevHost(api_key=args.api_key, keepalive_interval=args.keepalive) as host:
        host.app.state.devhost.engine.listeners.insert(0, on_event)
        print(f"listening on {host.base_url}", flush=True)
        for line in sys.stdin:  # until stdin closes; "RESTART s": down for s seconds (runs go on), then up
            if line.startswith("RESTART "):
                write(f"DOWN {time.monotonic():.6f}\n")
                flush()
                host.stop()
                time.sleep(float(line.split()[1]))
                host.start()
                write(f"UP {time.monotonic():.6f}\n")
                flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
