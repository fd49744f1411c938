"""Triggerer density: thousands of concurrent ``OpenwopRunTrigger.run()`` waits in one asyncio loop of one
process, as in Airflow's triggerer, on runs that finish at 100 per second, while the machine is loaded.

Each scenario runs in a child process of its own (a clean heap, so RSS figures do not carry over), which
starts the host (``python -m openwop_devhost --keepalive 15``) in a process of its own; RSS and CPU are
those of the trigger process only (psutil). From the start of phase 2 to the end of phase 4 the scenario
keeps every core busy with one CPU-burning process per core (``--no-load`` to leave them out), as on a busy
triggerer machine; they run at the trigger process's priority, the host (which stands for a server on
another machine) ahead of them (nice -10, where the benchmark may set it). Phases of a scenario:

1. set-up (not measured): N ``bench-long-delay`` runs (``conformance-cancellable`` with delays up to 15
   minutes, from a workflow folder given to the host) are created whose delays end 10 ms apart
   (100 per second) some time later; imports and a few warm-up waits are done first, then ``gc.collect()``
   and the baseline RSS;
2. establish: N triggers start at once; each reads the connection, borrows the shared client, reads the
   snapshot and opens its SSE stream. Measured: wall time until N connections are open and the process has
   gone quiet (under 5% of a core for 0.5 s), and CPU seconds (*setup CPU per wait*, without the CPU the
   benchmark spends counting connections);
3. idle (the main scenario only): all N waits open, nothing happens but the host's ``:keepalive`` comments
   (every 15 s per stream). Measured: CPU of this process as % of one core over 15 s;
4. completion: the runs finish at 100 per second. Measured: every trigger fired one ``success`` event for
   its own run with status ``completed``, how late each noticed (its event's wall time minus the host's
   ``completedAt``, millisecond timestamps), CPU seconds (*finish CPU per wait*; it includes the
   keepalives the still-open streams receive meanwhile, ~0.1 ms per wait at 3,000) and the seconds the
   process was runnable but waited for a CPU.

Peak RSS is sampled every 50 ms through phases 2-4; reported minus the baseline, in all and per 1,000 waits.

Scales: the main scenario (``--waits``, 1,000) plus ``--scales`` (100 and 3,000 by default), each with
event streams on connections of their own (the client as shipped) and, for comparison (``--before``), with
every stream in the shared client's connection pool, as before ``openwop_core.stream_transport`` existed
(the client's stream requests are sent without their ``OWN_CONNECTION`` mark); by default only at the main
scale: that scenario alone takes a few minutes, as its waits fall far behind (about 9 min in all).

As a contrast, a child process measures what building one ``AsyncOpenwopClient`` per wait would cost (each
holds its own connection pool and TLS context): 250 are built and the cost scaled to the number of waits.

Goals: setup and finish CPU per wait O(1) in the number of open waits (within 1.5x from 100 to 3,000);
completion noticed p99 < 50 ms while 100 runs finish per second and both cores are loaded; peak RSS under
100 MB per 1,000 waits; idle CPU under 5% of one core; all waits correct.

    .venv-bench/bin/python -m bench.triggerer_density [--waits 1000] [--scales 100,3000] [--before 100,1000]
        [--no-load] [--no-write] [--profile establish|idle|completion]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import cProfile
import gc
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench import _airflow
from bench._common import (
    API_KEY,
    ROOT,
    HostProcess,
    child_server,
    cpu_wait_seconds,
    goal,
    header,
    load_average,
    options,
    percentile,
    publish,
    table,
    wait_for_port,
)

MB = 1024 * 1024
STAGGER_MS = 10  # runs end 10 ms apart: 100 per second
IDLE_WINDOW = 15.0  # one whole keepalive period of the host: every stream gets its keepalive once
OWN, SHARED = "own", "shared"
#: The host stands for a server on another machine: it runs ahead of the burners, so that what the loaded cores
#: delay is the trigger process (the one measured), not the host's answers.
HOST_NICE = -10
LONG_DELAY = "bench-long-delay"  # conformance-cancellable allows 60 s at most: too short for 3,000 waits
#: A CPU-burning process (it ends by itself when its parent does).
BURN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(1_000_000): pass\n"


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


class GcPauses:
    """The collections of the oldest generation while it runs (``gc.callbacks``): how many, and how long each
    stopped the event loop, in seconds."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self._started = time.perf_counter()
            else:
                self.full.append(time.perf_counter() - self._started)

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)


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


def open_streams(process: psutil.Process, port: int) -> tuple[int, float]:
    """Established TCP connections from this process to the host (streams plus idle pooled ones), and the CPU
    seconds counting them took (reading the kernel's socket tables: ~0.1 s with 6,000 sockets; the benchmark
    subtracts it from what the waits cost)."""
    started = time.thread_time()
    count = sum(
        1
        for c in process.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )
    return count, time.thread_time() - started


def lead_seconds(waits: int, mode: str, idle: float, per_create: float) -> float:
    """How long after the first run is created the first one ends: room to create them all (``per_create``
    seconds each, as just measured, with a margin), to establish every wait with the cores loaded (the
    shared pool costs O(N) per wait, so O(N^2) in all) and, in the main scenario, the idle window."""
    establish = waits * (0.03 if mode == OWN else 0.03 + 0.025 * waits / 1000)
    return 6.0 + 2.0 * waits * per_create + establish + (idle + 2.0 if idle else 0.0)


async def scenario(
    base_url: str, waits: int, mode: str, idle: float, load: bool, profile: str | None
) -> dict[str, Any]:
    """Phases 1-4 in one event loop, the cores loaded (``load``) from phase 2 to the end of phase 4; returns
    the raw measurements."""
    from openwop_airflow.hooks.client_cache import shared_client_count
    from openwop_airflow.triggers.run import OpenwopRunTrigger
    from openwop_core import AsyncOpenwopClient, _base, aclient, stream_transport

    if mode == SHARED:  # streams in the shared pool, as before openwop_core.stream_transport: no turns, and
        aclient.OWN_CONNECTION = {}  # idle connections kept 30 s
        stream_transport.POOLED_REQUESTS_IN_FLIGHT = 10**9
        _base.KEEPALIVE_EXPIRY = 30.0
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
        calibrate = time.monotonic()  # how fast runs are created on this machine now, in batches of 50
        await asyncio.gather(*(client.runs_create("conformance-noop") for _ in range(50)))
        lead = lead_seconds(waits, mode, idle, (time.monotonic() - calibrate) / 50)
        created = time.monotonic()
        run_ids: list[str] = []
        for start in range(0, waits, 50):
            batch = range(start, min(waits, start + 50))
            elapsed_ms = int((time.monotonic() - created) * 1000)
            delays = [int(lead * 1000) + i * STAGGER_MS - elapsed_ms for i in batch]
            made = await asyncio.gather(*(client.runs_create(LONG_DELAY, {"delayMs": max(1, d)}) for d in delays))
            run_ids.extend(r.run_id for r in made)
    first_end = created + lead
    took = time.monotonic() - created
    print(f"[{mode} {waits:,}] created {waits:,} runs in {took:.1f} s; the first ends after {lead:.0f} s", flush=True)
    gc.collect()
    await asyncio.sleep(0.5)
    baseline = process.memory_info().rss
    sampler = RssSampler()
    sampler.start()
    burning = contextlib.ExitStack()
    burners = burning.enter_context(cores_loaded(load))

    # 2. establish
    cpu0, wall0 = cpu_seconds(process), time.monotonic()
    establishing = cProfile.Profile() if profile == "establish" else None
    if establishing is not None:
        establishing.enable()
    tasks = [asyncio.create_task(fire(run_id)) for run_id in run_ids]
    streams = 0
    counting = 0.0  # CPU seconds spent counting connections (not the waits' cost)
    settled = False
    while time.monotonic() < first_end - (idle + 1.5 if idle else 1.0):
        # established: every wait has its connection open and this process has gone quiet (< 5% of a core
        # for 0.5 s), i.e. the last requests are written and the streams are only waiting
        cpu_before = cpu_seconds(process)
        await asyncio.sleep(0.5)
        quiet = cpu_seconds(process) - cpu_before < 0.025
        streams, spent = await asyncio.to_thread(open_streams, process, port)
        counting += spent
        if streams >= waits and quiet:
            settled = True
            break
    establish_wall, establish_cpu = time.monotonic() - wall0, cpu_seconds(process) - cpu0 - counting
    if establishing is not None:
        establishing.disable()
        pstats.Stats(establishing).sort_stats("tottime").print_stats(30)
    state = "settled" if settled else "NOT settled (the runs began to end before every wait was open)"
    print(f"[{mode} {waits:,}] {streams:,} connections open after {establish_wall:.1f} s, {state}", flush=True)

    # 3. idle (main scenario only)
    clients = shared_client_count()
    rss_idle = process.memory_info().rss
    idle_cpu = idle_wall = 0.0
    streams_after_idle = streams
    if idle:
        await asyncio.sleep(1.0)
        window = max(1.0, min(idle, first_end - time.monotonic() - 0.5))
        profiler = cProfile.Profile() if profile == "idle" else None
        cpu1, wall1 = cpu_seconds(process), time.monotonic()
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(window)
        if profiler is not None:
            profiler.disable()
        idle_cpu, idle_wall = cpu_seconds(process) - cpu1, time.monotonic() - wall1
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        streams_after_idle, _ = await asyncio.to_thread(open_streams, process, port)

    # 4. completion: from just before the first run ends (the keepalives meanwhile are in both modes alike)
    await asyncio.sleep(max(0.0, first_end - 0.5 - time.monotonic()))
    cpu2, waited2, load_before = cpu_seconds(process), cpu_wait_seconds(), os.getloadavg()[0]
    limit = first_end + waits * STAGGER_MS / 1000 + 180 - time.monotonic()  # bounded, whatever goes wrong
    profiler = cProfile.Profile() if profile == "completion" else None
    if profiler is not None:
        profiler.enable()
    pauses = GcPauses()
    _, pending = await asyncio.wait(tasks, timeout=max(1.0, limit))
    pauses.stop()
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    completion_cpu, completion_waited = cpu_seconds(process) - cpu2, cpu_wait_seconds() - waited2
    completion_wall = time.monotonic() - first_end
    load_after = os.getloadavg()[0]
    burning.close()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    results = [
        task.result() if not task.cancelled() and task.exception() is None else ({"status": "unfinished"}, 0.0)
        for task in tasks
    ]
    peak = sampler.stop()
    failures = {json.dumps(p, sort_keys=True)[:400] for p, _ in results if p.get("status") != "success"}
    for text in sorted(failures)[:3]:
        print(f"[{mode} {waits:,}] a wait ended with {text}", flush=True)

    lateness: list[float] = []
    correct = 0
    async with AsyncOpenwopClient(base_url, api_key=API_KEY) as client:
        snapshots = []
        for start in range(0, waits, 50):
            snapshots.extend(await asyncio.gather(*(client.runs_get(r) for r in run_ids[start : start + 50])))
        for run_id, (payload, fired_at), snapshot in zip(run_ids, results, snapshots, strict=True):
            ok = (
                payload.get("status") == "success"
                and payload.get("run_id") == run_id
                and payload.get("run_status") == "completed"
                and snapshot.status == "completed"
            )
            correct += ok
            if snapshot.completed_at is not None and fired_at:
                lateness.append((fired_at - snapshot.completed_at.timestamp()) * 1000.0)
    return {
        "mode": mode,
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
        "completion_wall": completion_wall,
        "completion_waited": completion_waited,
        "gc_full": pauses.full,
        "load": (load_before + load_after) / 2,
        "burners": burners,
        "correct": correct,
        "lateness": lateness,
    }


@contextlib.contextmanager
def long_delay_host() -> Iterator[HostProcess]:
    """The local host in a process of its own (keepalive every 15 s) with the :data:`LONG_DELAY` workflow."""
    from openwop_devhost.workflows.catalogue import builtin_documents

    document = copy.deepcopy(next(d for d in builtin_documents() if d["id"] == "conformance-cancellable"))
    document["id"] = document["name"] = LONG_DELAY
    for variable in document.get("variables", []):
        if variable.get("name") == "delayMs":
            variable["maximum"] = 900_000
    with tempfile.TemporaryDirectory(prefix="openwop-bench-wf-") as folder:
        Path(folder, f"{LONG_DELAY}.json").write_text(json.dumps(document))
        args = ["-m", "openwop_devhost", "--port", "0", "--api-key", API_KEY, "--keepalive", "15", "--workflows"]
        with child_server(
            [*args, folder, "--log-level", "info"], url_pattern=r"listening on (http://\S+)", from_stderr=True
        ) as host:
            wait_for_port(host.base_url)
            with contextlib.suppress(OSError):  # needs CAP_SYS_NICE; the host stays at the default otherwise
                os.setpriority(os.PRIO_PROCESS, host.pid, HOST_NICE)
            yield host


def child_main(spec: str, profile: str | None) -> int:
    """One scenario (``mode:waits:idle:load``) in this process; prints its measurements as the last line (JSON)."""
    mode, waits, idle, load = spec.split(":")
    raise_fd_limit(4 * int(waits) + 256)  # before the host starts: it inherits the limit
    with long_delay_host() as host:
        _airflow.configure(host.base_url, API_KEY)
        m = asyncio.run(scenario(host.base_url, int(waits), mode, float(idle), load == "load", profile))
        m["host_nice"] = os.getpriority(os.PRIO_PROCESS, host.pid)
    print(json.dumps(m), flush=True)
    return 0


def run_child(mode: str, waits: int, idle: float, load: bool, profile: str | None) -> dict[str, Any]:
    """One scenario in a fresh process (its output passed through); its measurements."""
    spec = f"{mode}:{waits}:{idle}:{'load' if load else 'quiet'}"
    command = [sys.executable, "-m", "bench.triggerer_density", "--child", spec]
    if profile:
        command += ["--profile", profile]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        if line.startswith("{"):
            last = line
        else:
            print(line, end="", flush=True)
    if proc.wait() != 0 or not last:
        raise RuntimeError(f"the {mode} scenario with {waits} waits failed (exit {proc.returncode})")
    return dict(json.loads(last))


@contextlib.contextmanager
def cores_loaded(enabled: bool) -> Iterator[int]:
    """One CPU-burning process per core while the block runs (stopped by their pids after)."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 1)] if enabled else []
    try:
        yield len(burners)
    finally:
        for proc in burners:
            proc.terminate()
        for proc in burners:
            proc.wait(10)


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


def per_wait_ms(seconds: float, waits: int) -> float:
    """CPU seconds for ``waits`` waits, as milliseconds per wait."""
    return 1000.0 * seconds / waits


def added_mb(m: dict[str, Any]) -> float:
    """Peak RSS the waits added, MB."""
    return float(m["peak"] - m["baseline"]) / MB


def noticed(m: dict[str, Any], p: float) -> float:
    """The ``p``-th percentile of how late the waits noticed their run's end, ms."""
    return percentile(m["lateness"], p)


def scale_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row per scenario (streams on their own connections first, then in the shared pool)."""
    label = {OWN: "own connection per stream (now)", SHARED: "all streams in the shared pool (before)"}
    rows = []
    for m in sorted(results, key=lambda m: (m["mode"] != OWN, m["waits"])):
        waits = m["waits"]
        rows.append(
            [
                label[m["mode"]],
                f"{waits:,}",
                f"{per_wait_ms(m['establish_cpu'], waits):,.2f}" + ("" if m["settled"] else " (not settled)"),
                f"{per_wait_ms(m['completion_cpu'], waits):,.2f}",
                f"{noticed(m, 50):,.0f} / {noticed(m, 99):,.0f} / {max(m['lateness'], default=float('nan')):,.0f}",
                f"{m['completion_waited']:,.1f} s of {m['completion_wall']:,.0f} s",
                f"{len(m['gc_full'])}, {1000 * max(m['gc_full'], default=0.0):,.0f} ms",
                f"{added_mb(m):,.1f} MB ({added_mb(m) * 1000 / waits:,.1f} MB per 1,000)",
                f"{m['load']:.1f}",
                f"{m['correct']:,} of {waits:,}",
            ]
        )
    return rows


def flat(results: list[dict[str, Any]], key: str) -> tuple[float, float, str]:
    """How much the per-wait CPU ``key`` grows from the smallest to the largest scale (streams on their own
    connections); the ratio, the largest value and the values as text."""
    own = sorted((m for m in results if m["mode"] == OWN), key=lambda m: m["waits"])
    values = [per_wait_ms(m[key], m["waits"]) for m in own]
    text = " / ".join(f"{v:,.2f}" for v in values) + " ms at " + " / ".join(f"{m['waits']:,}" for m in own)
    return values[-1] / values[0], values[-1], text


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the tables, write them to docs/benchmarks.md."""
    parser = options("triggerer density", waits=1000)
    parser.add_argument("--scales", default=None, help="more wait counts, comma-separated (default: 100 and 3x waits)")
    parser.add_argument(
        "--before", default=None, help="wait counts also run with all streams in one pool (default: waits)"
    )
    parser.add_argument("--no-load", action="store_true", help="no CPU-burning processes")
    parser.add_argument("--profile", choices=["establish", "idle", "completion"], help="print a profile of that phase")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one scenario, in a child process
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, args.profile)
    machine = header("Triggerer density")
    main_waits = args.waits
    scales = sorted({main_waits, *(int(x) for x in (args.scales or f"100,{3 * main_waits}").split(",") if x)})
    before = sorted({int(x) for x in (args.before if args.before is not None else str(main_waits)).split(",") if x})
    started = time.monotonic()
    plan = [(OWN, w) for w in scales] + [(SHARED, w) for w in before]
    plan.sort(key=lambda item: (item[1], item[0] != SHARED))  # interleaved: each scale before, then now
    results: list[dict[str, Any]] = []
    for mode, waits in plan:
        idle = IDLE_WINDOW if (mode, waits) == (OWN, main_waits) else 0.0
        profile = args.profile if idle or args.profile == "establish" else None
        results.append(run_child(mode, waits, idle, not args.no_load, profile))
    burners = results[0]["burners"]
    took = time.monotonic() - started
    naive_count = min(main_waits, 250)  # the cost is linear; building 1,000 takes half a minute
    naive = client_per_wait_cost(naive_count)
    per_client_mb, per_client_ms = naive["rss"] / MB / naive_count, 1000 * naive["seconds"] / naive_count

    m = next(r for r in results if r["mode"] == OWN and r["waits"] == main_waits)
    waits = m["waits"]
    added = added_mb(m)
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
        ["CPU per wait to establish", f"{per_wait_ms(m['establish_cpu'], waits):,.2f} ms"],
        ["idle CPU (keepalives only), % of one core", f"{idle_pct:,.2f}% over {m['idle_wall']:,.1f} s"],
        [
            "CPU per wait to finish (event, final snapshot, TriggerEvent)",
            f"{per_wait_ms(m['completion_cpu'], waits):,.2f} ms",
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
    scale_table = table(
        [
            "event streams",
            "waits",
            "setup CPU per wait, ms",
            "finish CPU per wait, ms",
            "noticed p50 / p99 / max, ms",
            "waited for a CPU (finish)",
            "full GC runs (finish): count, longest",
            "peak RSS added",
            "load (1 min)",
            "correct",
        ],
        scale_rows(results),
    )
    setup_growth, _, setup_text = flat(results, "establish_cpu")
    finish_growth, _, finish_text = flat(results, "completion_cpu")
    own = [r for r in results if r["mode"] == OWN]
    worst_p99 = max(noticed(r, 99) for r in own)
    worst_rss = max(added_mb(r) * 1000 / r["waits"] for r in own)
    goals = [
        goal(
            f"setup CPU per wait O(1) in open waits (within 1.5x): {setup_text} ({setup_growth:.2f}x)",
            setup_growth < 1.5,
        ),
        goal(
            f"finish CPU per wait O(1) in open waits (within 1.5x): {finish_text} ({finish_growth:.2f}x)",
            finish_growth < 1.5,
        ),
        goal(
            f"completion noticed p99 < 50 ms at every scale, 100 runs/s finishing: worst {worst_p99:,.0f} ms",
            worst_p99 < 50,
        ),
        goal(f"peak RSS under 100 MB per 1,000 waits at every scale: worst {worst_rss:,.1f} MB", worst_rss < 100),
        goal(f"idle CPU under 5% of one core ({waits:,} waits): {idle_pct:,.2f}%", idle_pct < 5.0),
        goal(
            f"all waits correct: {sum(r['correct'] for r in own):,} of {sum(r['waits'] for r in own):,}",
            all(r["correct"] == r["waits"] for r in own),
        ),
        goal(
            f"one HTTP client per connection, not one per wait: {m['clients']} client(s) for {waits:,} waits",
            m["clients"] == 1,
        ),
    ]
    load_note = (
        f"{burners} CPU-burning processes (one per core) ran from the start of the establish phase to the end of "
        "the completion phase, at the trigger process's priority (the host, which stands for a server on another "
        f"machine, ran at nice {results[0]['host_nice']})"
        if burners
        else "no CPU-burning processes (`--no-load`)"
    )
    intro = (
        f"Waits in one asyncio loop of one process (`OpenwopRunTrigger.run()`, as Airflow's triggerer runs them) "
        "on runs of one `core.delay` node (`conformance-cancellable` allowing longer delays) that end 10 ms apart "
        f"(100 per second); host (`python -m openwop_devhost --keepalive 15`) in its own process; {load_note}. "
        "Each scenario ran in a "
        f"fresh process; RSS and CPU of the trigger process only; {took / 60:.1f} min in all. Per scale:"
    )
    main_intro = f"The {waits:,}-wait scenario (event streams on their own connections) in detail:"
    shown = [scale_table, main_intro, table(["measure", "value"], rows), "\n".join(goals)]
    publish("density", "## 3. Triggerer density", machine, [intro, *shown], shown, write=not args.no_write)
    print(f"\nload average now {load_average()}; took {took / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
