"""Triggerer density: 1,000 concurrent ``OpenwopRunTrigger.run()`` waits in one asyncio loop of one process,
as in Airflow's triggerer, on runs that finish at staggered times.

The host runs in a process of its own (``python -m openwop_devhost --keepalive 15``); RSS and CPU are
those of this benchmark process only (psutil). Phases:

1. set-up (not measured): 1,000 ``conformance-cancellable`` runs are created whose delays end 40-50 s
   later, 10 ms apart; imports and a few warm-up waits are done first, then ``gc.collect()`` and the
   baseline RSS;
2. establish: 1,000 triggers start at once; each reads the connection, borrows the shared client, reads
   the snapshot and opens its SSE stream. Measured: wall time until 1,000 connections are open and the
   process has gone quiet (under 5% of a core for 0.5 s), and CPU seconds;
3. idle: all 1,000 waits open, nothing happens but the host's ``:keepalive`` comments (every 15 s per
   stream). Measured: CPU of this process as % of one core over a 10 s window;
4. completion: the runs finish over 10 s. Measured: every trigger fired one ``success`` event for its own
   run with status ``completed``, how late each noticed (its event's wall time minus the host's
   ``completedAt``, millisecond timestamps), CPU seconds.

Peak RSS is sampled every 50 ms through phases 2-4; reported minus the baseline, in all and per wait.
How many HTTP clients the triggers built (``shared_client_count``) is read during the idle phase; as a
contrast, a child process measures what building one ``AsyncOpenwopClient`` per wait would cost (each holds
its own connection pool and TLS context): 250 are built and the cost scaled to the number of waits.

Goals: under 100 MB added for 1,000 waits; idle CPU under 5% of one core; all 1,000 correct.

    .venv-bench/bin/python -m bench.triggerer_density [--waits 1000] [--no-write]
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import pstats
import resource
import subprocess
import sys
import threading
import time
from typing import Any

import psutil

from bench import _airflow
from bench._common import (
    API_KEY,
    ROOT,
    devhost_process,
    goal,
    header,
    options,
    percentile,
    publish,
    table,
)

MB = 1024 * 1024
FIRST_END = 40.0  # seconds after creation at which the first run ends
STAGGER_MS = 10
IDLE_WINDOW = 15.0  # one whole keepalive period of the host: every stream gets its keepalive once


class RssSampler(threading.Thread):
    """Samples this process's RSS every ``interval`` seconds and keeps the peak."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0
        self._stop_event = threading.Event()
        self._process = psutil.Process()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        """Stop sampling; the peak RSS in bytes."""
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return self.peak


def raise_fd_limit(wanted: int) -> None:
    """Lift the soft open-files limit (often 1,024) towards ``wanted``: each wait holds a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard)
        )


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of ``process`` so far."""
    times = process.cpu_times()
    return times.user + times.system


def open_streams(process: psutil.Process, port: int) -> int:
    """Established TCP connections from this process to the host (streams plus idle pooled ones)."""
    return sum(
        1
        for c in process.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


async def scenario(base_url: str, waits: int, profile: str | None = None) -> dict[str, Any]:
    """Phases 1-4 in one event loop; returns the raw measurements."""
    from openwop_airflow.hooks.client_cache import shared_client_count
    from openwop_airflow.triggers.run import OpenwopRunTrigger
    from openwop_core import AsyncOpenwopClient

    process = psutil.Process()
    port = int(base_url.rsplit(":", 1)[1])

    async def fire(run_id: str) -> tuple[dict[str, Any], float]:
        trigger = OpenwopRunTrigger(run_id=run_id, openwop_conn_id=_airflow.CONN_ID)
        events = [event async for event in trigger.run()]
        if len(events) != 1:
            return {"status": f"{len(events)} events"}, time.time()
        return events[0].payload, time.time()

    # 1. set-up: warm-up waits (imports, pydantic and Airflow lazy set-up), then the runs, then the baseline
    async with AsyncOpenwopClient(base_url, api_key=API_KEY) as client:
        warm = [(await client.runs_create("conformance-noop")).run_id for _ in range(5)]
        await asyncio.gather(*(fire(run_id) for run_id in warm))
        created = time.monotonic()
        run_ids: list[str] = []
        for start in range(0, waits, 50):
            batch = range(start, min(waits, start + 50))
            delays = [int(FIRST_END * 1000) + i * STAGGER_MS - int((time.monotonic() - created) * 1000) for i in batch]
            made = await asyncio.gather(
                *(client.runs_create("conformance-cancellable", {"delayMs": max(1, d)}) for d in delays)
            )
            run_ids.extend(r.run_id for r in made)
    print(f"created {waits:,} runs in {time.monotonic() - created:.1f} s", flush=True)
    gc.collect()
    await asyncio.sleep(0.5)
    baseline = process.memory_info().rss
    sampler = RssSampler()
    sampler.start()

    # 2. establish
    cpu0, wall0 = cpu_seconds(process), time.monotonic()
    tasks = [asyncio.create_task(fire(run_id)) for run_id in run_ids]
    streams = 0
    first_end = created + FIRST_END
    settled = False
    while time.monotonic() < first_end - IDLE_WINDOW - 1.5:
        # established: every wait has its connection open and this process has gone quiet (< 5% of a core
        # for 0.5 s), i.e. the last requests are written and the streams are only waiting
        cpu_before = cpu_seconds(process)
        await asyncio.sleep(0.5)
        quiet = cpu_seconds(process) - cpu_before < 0.025
        streams = await asyncio.to_thread(open_streams, process, port)
        if streams >= waits and quiet:
            settled = True
            break
    establish_wall, establish_cpu = time.monotonic() - wall0, cpu_seconds(process) - cpu0
    state = "settled" if settled else "NOT settled (the idle window below overlaps the set-up)"
    print(f"{streams:,} connections open after {establish_wall:.1f} s, {state}", flush=True)

    # 3. idle
    await asyncio.sleep(1.0)
    clients = shared_client_count()
    rss_idle = process.memory_info().rss
    window = max(1.0, min(IDLE_WINDOW, first_end - time.monotonic() - 0.5))
    profiler = cProfile.Profile() if profile == "idle" else None
    cpu1, wall1 = cpu_seconds(process), time.monotonic()
    if profiler is not None:
        profiler.enable()
    await asyncio.sleep(window)
    if profiler is not None:
        profiler.disable()
    idle_cpu, idle_wall = cpu_seconds(process) - cpu1, time.monotonic() - wall1
    print(f"idle window {wall1 - first_end:+.1f} s to {wall1 + idle_wall - first_end:+.1f} s from the first run's end")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    streams_after_idle = await asyncio.to_thread(open_streams, process, port)

    # 4. completion
    cpu2 = cpu_seconds(process)
    limit = first_end + waits * STAGGER_MS / 1000 + 60 - time.monotonic()  # bounded, whatever goes wrong
    profiler = cProfile.Profile() if profile == "completion" else None
    if profiler is not None:
        profiler.enable()
    _, pending = await asyncio.wait(tasks, timeout=max(1.0, limit))
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    completion_cpu = cpu_seconds(process) - cpu2
    results = [
        task.result() if not task.cancelled() and task.exception() is None else ({"status": "unfinished"}, 0.0)
        for task in tasks
    ]
    peak = sampler.stop()

    lateness: list[float] = []
    correct = 0
    async with AsyncOpenwopClient(base_url, api_key=API_KEY) as client:
        for run_id, (payload, fired_at) in zip(run_ids, results, strict=True):
            snapshot = await client.runs_get(run_id)
            ok = (
                payload.get("status") == "success"
                and payload.get("run_id") == run_id
                and payload.get("run_status") == "completed"
                and snapshot.status == "completed"
            )
            correct += ok
            if snapshot.completed_at is not None:
                lateness.append((fired_at - snapshot.completed_at.timestamp()) * 1000.0)
    return {
        "waits": waits,
        "baseline": baseline,
        "peak": peak,
        "rss_idle": rss_idle,
        "establish_wall": establish_wall,
        "establish_cpu": establish_cpu,
        "streams": streams,
        "settled": settled,
        "streams_after_idle": streams_after_idle,
        "clients": clients,
        "idle_cpu": idle_cpu,
        "idle_wall": idle_wall,
        "completion_cpu": completion_cpu,
        "correct": correct,
        "lateness": lateness,
    }


def client_per_wait_cost(count: int) -> dict[str, float]:
    """In a child process (a clean heap): RSS and time to build ``count`` ``AsyncOpenwopClient`` objects for
    an https host, i.e. what a trigger that built its own client would add (pool + TLS context each)."""
    code = f"""
import gc, json, time, psutil
from openwop_core import AsyncOpenwopClient
p = psutil.Process()
AsyncOpenwopClient("https://openwop.example.com", api_key="k")  # imports and lazy set-up
gc.collect(); before = p.memory_info().rss; t = time.perf_counter()
clients = [AsyncOpenwopClient("https://openwop.example.com", api_key="k") for _ in range({count})]
elapsed = time.perf_counter() - t; gc.collect()
print(json.dumps({{"rss": p.memory_info().rss - before, "seconds": elapsed}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the phases, print the table, write it to docs/benchmarks.md."""
    parser = options("triggerer density", waits=1000)
    parser.add_argument("--profile", choices=["idle", "completion"], help="print a profile of that phase")
    args = parser.parse_args(argv)
    machine = header("Triggerer density")
    raise_fd_limit(4 * args.waits + 256)  # before the host starts: it inherits the limit
    with devhost_process(keepalive=15.0) as host:
        _airflow.configure(host.base_url, API_KEY)
        m = asyncio.run(scenario(host.base_url, args.waits, args.profile))
    naive_count = min(args.waits, 250)  # the cost is linear; building 1,000 takes half a minute
    naive = client_per_wait_cost(naive_count)
    per_client_mb, per_client_ms = naive["rss"] / MB / naive_count, 1000 * naive["seconds"] / naive_count

    waits = m["waits"]
    added = (m["peak"] - m["baseline"]) / MB
    idle_pct = 100.0 * m["idle_cpu"] / m["idle_wall"]
    late = m["lateness"]
    rows = [
        ["concurrent waits (one event loop, one process)", f"{waits:,}"],
        [
            "connections to the host after the establish phase / after the idle window",
            f"{m['streams']:,} / {m['streams_after_idle']:,}",
        ],
        ["HTTP clients built by the triggers (shared per connection)", str(m["clients"])],
        ["RSS baseline (Airflow + provider imported, warm)", f"{m['baseline'] / MB:,.1f} MB"],
        ["peak RSS added by the waits", f"{added:,.1f} MB"],
        ["peak RSS added per wait", f"{added * 1024 / waits:,.1f} KB"],
        ["RSS added while all waits are idle", f"{(m['rss_idle'] - m['baseline']) / MB:,.1f} MB"],
        [
            "establish all waits (until open and quiet): wall / CPU",
            f"{m['establish_wall']:,.2f} s / {m['establish_cpu']:,.2f} s" + ("" if m["settled"] else " (NOT settled)"),
        ],
        ["CPU per wait to establish", f"{1000 * m['establish_cpu'] / waits:,.2f} ms"],
        ["idle CPU (keepalives only), % of one core", f"{idle_pct:,.2f}% over {m['idle_wall']:,.1f} s"],
        [
            "CPU per wait to finish (event, final snapshot, TriggerEvent)",
            f"{1000 * m['completion_cpu'] / waits:,.2f} ms",
        ],
        ["waits that fired one correct `success` event", f"{m['correct']:,} of {waits:,}"],
        [
            "noticed after `completedAt`: p50 / p99 / max (ms timestamps)",
            f"{percentile(late, 50):,.0f} / {percentile(late, 99):,.0f} / {max(late):,.0f} ms" if late else "n/a",
        ],
        [
            f"contrast: one AsyncOpenwopClient per wait (pool + TLS context each), {waits:,} waits",
            f"{per_client_mb * waits:,.0f} MB and {per_client_ms * waits / 1000:,.1f} s to build "
            f"({per_client_mb * 1024:,.0f} KB, {per_client_ms:,.1f} ms each; {naive_count} measured)",
        ],
    ]
    text = table(["measure", "value"], rows)
    goals = [
        goal(f"under 100 MB added for {waits:,} waits: {added:,.1f} MB", added < 100.0),
        goal(f"idle CPU under 5% of one core: {idle_pct:,.2f}%", idle_pct < 5.0),
        goal(f"all {waits:,} waits correct: {m['correct']:,}", m["correct"] == waits),
        goal(
            f"one HTTP client per connection, not one per wait: {m['clients']} client(s) for {waits:,} waits",
            m["clients"] == 1,
        ),
    ]
    intro = (
        f"{waits:,} `OpenwopRunTrigger.run()` waits in one asyncio loop on `conformance-cancellable` runs ending "
        f"{FIRST_END:.0f}-{FIRST_END + waits * STAGGER_MS / 1000:.0f} s after creation, host "
        "(`python -m openwop_devhost --keepalive 15`) in its own process; RSS and CPU of the trigger "
        "process only:"
    )
    shown = [text, "\n".join(goals)]
    publish("density", "## 3. Triggerer density", machine, [intro, *shown], shown, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
