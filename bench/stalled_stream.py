"""Completion noticed under stream faults: a 503 burst on the events endpoint, a stream cut every N events,
and a host restart.

The host is ``bench/clockhost.py`` (as for ``bench.completion_latency``): it prints the monotonic time at which
it appends each run's ``run.completed``; this process notes when the waiter is done, and the difference is the
latency. ``conformance-delay`` runs of 1-4 s, ``--batch`` at a time, each waited for right after its creation.
The fault of each scenario lasts as long as the batch's runs (the worst case):

- ``burst``: the host's ``fail_requests`` switch refuses every ``GET /v1/runs/{id}/events`` with a 503; the
  run's snapshot stays readable.
- ``cut``: the host's ``drop_sse_after_events`` switch cuts every event stream abruptly after ``--cut-every``
  event frames (each reconnect resumes from ``Last-Event-ID`` and is cut again ``--cut-every`` frames later).
- ``restart``: ``--restart-after`` seconds into each batch the host's HTTP server goes down (open streams cut,
  connections refused) for ``--down`` seconds and comes back on the same port with its state (runs keep
  executing meanwhile, as on a host with a database). The time the host was down is not counted in the
  latency (nothing can notice a run then): the latency is the time the host was reachable between
  ``run.completed`` and the waiter being done.

The waiters keep the default retry policy, as users have it, and are:

- ``OpenwopRunTrigger.run()`` (the Airflow trigger, driven as a triggerer's event loop drives it), and
- ``AsyncOpenwopClient.wait_for_run`` (the core waiter the Prefect tasks and flow use too).

While the stream cannot be reopened the waiter reads the snapshot right after each failed connection and then
every ``openwop_core.waiting.STALL_CHECK_INTERVAL`` seconds of the reconnect backoff, so the latency is bounded
by that interval plus one request, whatever the backoff; a waiter with an ``on_event`` callback (the trigger,
which logs progress) gives the stream one more check to deliver the run's last events itself, but only when the
stream's next reconnect comes before that check (issue #15: before, it always waited, up to two intervals in
all). Before the snapshot reads a 4 s run was noticed ~98 s late by the trigger during a burst, and the core
waiter raised ``ServerError`` after ~100 s (issue #12, item 11).

    .venv-bench/bin/python -m bench.stalled_stream [--runs 40] [--batch 10] [--scenarios burst,cut,restart]
        [--cut-every 2] [--restart-after 1.0] [--down 2.0] [--no-write]
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench import _airflow
from bench import completion_latency as latency
from bench._common import API_KEY, HostProcess, goal, header, options, percentile, publish, table
from bench.completion_latency import EmissionClock, Waiter

EVENTS_ROUTE = "GET /v1/runs/{runId}/events"
#: Goal: a finished run is noticed within a few seconds whatever the stream does.
GOAL_P99_S = 5.0
SCENARIOS = ("burst", "cut", "restart")


class OutageClock(EmissionClock):
    """Emission times, plus when the host was down (``DOWN t`` / ``UP t`` lines of the clock host)."""

    def __init__(self) -> None:
        super().__init__()
        self.outages: list[tuple[float, float | None]] = []

    def on_line(self, line: str) -> None:
        """Parse one line of the host's stdout."""
        if line.startswith(("DOWN ", "UP ")):
            kind, at = line.split()
            with self._changed:
                if kind == "DOWN":
                    self.outages.append((float(at), None))
                else:
                    self.outages[-1] = (self.outages[-1][0], float(at))
                self._changed.notify_all()
        else:
            super().on_line(line)

    def downtime(self, start: float, end: float) -> float:
        """Seconds of ``start``..``end`` the host was down (waits for an outage under way to end)."""
        with self._changed:
            self._changed.wait_for(lambda: all(up is not None for _, up in self.outages), 60)
            return sum(max(0.0, min(end, up or end) - max(start, down)) for down, up in self.outages)


def set_faults(base_url: str, faults: dict[str, Any]) -> None:
    """Replace the host-wide fault switches (``{}``: none)."""
    response = httpx.post(
        f"{base_url}/_devhost/faults", json=faults, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )
    response.raise_for_status()


def fault_switch(scenario: str, host: HostProcess, args: Any) -> Callable[[bool], None]:
    """What ``completion_latency.measure`` calls (in a thread) before (True) and after (False) each batch."""
    if scenario == "burst":  # 503 on every events request (a count no batch uses up)
        faults: dict[str, Any] = {"fail_requests": [{"route": EVENTS_ROUTE, "status": 503, "count": 1_000_000}]}
    elif scenario == "cut":
        faults = {"drop_sse_after_events": args.cut_every}
    else:

        def restart(on: bool) -> None:
            if on:
                command = f"RESTART {args.down}\n"
                threading.Timer(args.restart_after, lambda: _tell(host, command)).start()

        return restart
    return lambda on: set_faults(host.base_url, faults if on else {})


def _tell(host: HostProcess, line: str) -> None:
    assert host.proc.stdin is not None
    host.proc.stdin.write(line)
    host.proc.stdin.flush()


async def measure(
    host: HostProcess, clock: OutageClock, waiter: Waiter, scenario: str, args: Any, seed: int
) -> tuple[list[float], int]:
    """Latencies (s) of ``args.runs`` ``conformance-delay`` runs of 1-4 s, ``args.batch`` at a time, each waited
    for right after its creation under ``scenario``'s fault (the host's downtime not counted); and how many
    waits reported the run as completed."""

    async def wait(run_id: str) -> tuple[float, str]:
        done_at, status = await waiter(run_id)
        emitted = await asyncio.to_thread(clock.emitted, run_id)
        return done_at - await asyncio.to_thread(clock.downtime, emitted, done_at), status

    measured = await latency.measure(
        host.base_url,
        clock,
        wait,
        args.runs,
        (1000, 4000),
        args.batch,
        seed,
        host.pid,
        during_batch=fault_switch(scenario, host, args),
    )
    return [ms / 1000.0 for ms in measured.latencies], measured.correct


def trigger_waiter() -> Waiter:
    """Wait with ``OpenwopRunTrigger.run()``; done when it yields its TriggerEvent."""
    from openwop_airflow.triggers.run import OpenwopRunTrigger

    async def wait(run_id: str) -> tuple[float, str]:
        events = OpenwopRunTrigger(run_id=run_id, openwop_conn_id=_airflow.CONN_ID).run()
        event = await events.__anext__()
        done_at = time.monotonic()
        await events.aclose()
        return done_at, str(event.payload.get("run_status"))

    return wait


def core_waiter(client: object) -> Waiter:
    """Wait with ``AsyncOpenwopClient.wait_for_run`` (default retry policy)."""

    async def wait(run_id: str) -> tuple[float, str]:
        result = await client.wait_for_run(run_id, timeout=300)  # type: ignore[attr-defined]
        return time.monotonic(), result.status

    return wait


def row(scenario: str, name: str, latencies: list[float], correct: int, runs: int) -> list[str]:
    """One table row (seconds)."""
    return [
        scenario,
        name,
        str(runs) if correct == runs else f"{len(latencies)} ({correct} completed)",
        f"{percentile(latencies, 50):.2f}",
        f"{percentile(latencies, 99):.2f}",
        f"{sum(latencies) / len(latencies):.2f}",
        f"{max(latencies):.2f}",
    ]


def describe(scenario: str, args: Any) -> str:
    """What the fault of ``scenario`` is, for the table."""
    if scenario == "burst":
        return "503 on every `GET /v1/runs/{id}/events`"
    if scenario == "cut":
        return f"every stream cut after {args.cut_every} event frames"
    return f"host down {args.down:g} s, {args.restart_after:g} s into each batch"


def main(argv: list[str] | None = None) -> int:
    """Measure both waiters under each fault, print the table, write it to docs/benchmarks.md."""
    parser = options("completion noticed under stream faults", runs=40, batch=10, seed=11, cut_every=2)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: burst,cut,restart")
    parser.add_argument("--restart-after", type=float, default=1.0, help="seconds into each batch (restart)")
    parser.add_argument("--down", type=float, default=2.0, help="seconds the host stays down (restart)")
    args = parser.parse_args(argv)
    scenarios = [name for name in args.scenarios.split(",") if name]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    machine = header("Completion noticed under stream faults")
    logging.getLogger("openwop_core").setLevel(logging.ERROR)  # one warning per refused reconnect otherwise
    clock = OutageClock()
    with latency.clock_host(clock) as host:

        async def scenario() -> dict[tuple[str, str], tuple[list[float], int]]:
            from openwop_core import AsyncOpenwopClient

            results: dict[tuple[str, str], tuple[list[float], int]] = {}
            for index, fault in enumerate(scenarios):
                seed = args.seed + 10 * index
                print(f"{fault}: OpenwopRunTrigger: {args.runs} runs, {args.batch} at a time ...", flush=True)
                results[fault, "trigger"] = await measure(host, clock, trigger_waiter(), fault, args, seed)
                async with AsyncOpenwopClient(host.base_url, api_key=API_KEY) as client:
                    print(f"{fault}: AsyncOpenwopClient.wait_for_run: {args.runs} runs ...", flush=True)
                    results[fault, "core"] = await measure(host, clock, core_waiter(client), fault, args, seed + 1)
            return results

        results = asyncio.run(scenario())

    names = {"trigger": "OpenwopRunTrigger.run()", "core": "AsyncOpenwopClient.wait_for_run"}
    rows = [row(describe(f, args), names[w], *results[f, w], args.runs) for f, w in results]
    text = table(["fault", "waiter", "runs", "p50 s", "p99 s", "mean s", "max s"], rows)
    from openwop_core.waiting import STALL_CHECK_INTERVAL

    worst = {f: max(percentile(results[f, w][0], 99) for w in names) for f in scenarios}
    all_correct = all(correct == args.runs for _, correct in results.values())
    goals = [
        *(
            goal(
                f"{fault}: completion noticed within {GOAL_P99_S:.0f} s at p99 by both waiters: {p99:.2f} s",
                p99 < GOAL_P99_S,
            )
            for fault, p99 in worst.items()
        ),
        goal("every wait reported its run as completed", all_correct),
        f"- bounded by the snapshot read every {STALL_CHECK_INTERVAL:g} s while the stream cannot be (re)opened, "
        "plus one request. A waiter that logs progress events (the trigger) gives the stream one more check to "
        "deliver the run's last events itself only when its next reconnect comes before that check (after a cut "
        "stream); a stream refused again and again (a burst, a host down) is not waited for: the last events are "
        "read from the poll endpoint at once (before, the trigger waited one more check: p50 3.03 s / p99 5.06 s "
        "in the burst at load 17). Before the snapshot reads, the trigger noticed a 4 s run ~98 s late during a "
        "burst and the core waiter raised `ServerError` after ~100 s.",
    ]
    intro = (
        "From the host appending `run.completed` to the waiter being done (the host's downtime not counted), "
        f"`conformance-delay` runs of 1-4 s, {args.batch} at a time, {args.runs} per waiter and fault, the fault "
        "on for as long as each batch's runs last, default retry policy:"
    )
    shown = [text, "\n".join(goals)]
    heading = "## 5. Completion noticed under stream faults"
    publish("burst", heading, machine, [intro, *shown], shown, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
