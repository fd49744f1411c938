"""SSE consumption throughput: events per second that one consumer decodes from one run's event stream of
100,000 events (~250-byte payloads, ~470 bytes of JSON and ~510 bytes of SSE per event).

Subjects, all measured in this one process, in round-robin order, over the same loopback server:

- ``openwop_core`` sync: ``OpenwopClient.runs_events(run_id, stream_mode="debug")``, every event a
  validated ``RunEvent`` with de-duplication and resume cursor (what the Airflow operator and trigger use);
- ``openwop_core`` async: ``AsyncOpenwopClient.runs_events`` (the same, on asyncio);
- the official v1-line SDK ``openwop-client==1.1.1``: ``OpenwopClient.runs_events`` (urllib, a
  hand-written line parser, ``json.loads`` and a ``RunEventDoc`` dataclass per event);
- ``httpx-sse`` alone: ``connect_sse`` + ``iter_sse`` + ``json.loads`` of each ``data`` (no models, no
  resume logic: the library our client builds on);
- the floor: a raw socket read to the end, chunked encoding undone, frames split on blank lines and
  ``json.loads`` of each ``data`` line: roughly the least any Python consumer can do per event.

Main tables: a minimal raw server (``bench/rawsse.py``, its own process) that sends a pre-built byte blob,
so the server is never the bottleneck, in both framings hosts use: chunked (as the Node reference hosts
send) and close-delimited (HTTP/1.0-style, the body ends at the close, as the Python reference host sends).
Both servers run at once and every (framing, subject) pair is measured in one round-robin, so drifts in the
machine's load hit all alike. Everything is imported, and each consumer's client made, before the clock
starts (a client's set-up, e.g. the TLS context httpx loads even for ``http://``, is a cost per client,
not per event: it is reported in a column of its own). Reference table: the local
host (``python -m openwop_devhost``, its own process) replaying the backlog of one finished
``devhost-burst`` run (``--devhost-repeats 0`` leaves it out).

Reported: the median events/s over the repeats (and the range), events per CPU-second of this process, and
the ratios to the official SDK and to the floor. Goal (issue 15): ``openwop_core``, sync and async, on both
framings: >= 1.5x the official SDK and >= 0.85x the floor (raw server).

    .venv-bench/bin/python -m bench.sse_throughput [--repeats 15] [--events 100000] [--devhost-repeats 3] [--no-write]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import openwop_client
from httpx_sse import connect_sse

from bench._common import (
    API_KEY,
    child_server,
    devhost_process,
    fmt_int,
    goal,
    header,
    load_average,
    median,
    options,
    publish,
    table,
)
from bench.rawsse import FRAMINGS, RUN_ID  # the raw server answers any path; this is the run id its events carry
from openwop_core import AsyncOpenwopClient, OpenwopClient

# -- the subjects: each consumes one whole stream and returns how many events it decoded; each calls
# ``start()`` once its client is made: the clock runs from there (a client's set-up is reported apart) ----


def _nothing() -> None:
    return None


def core_sync(base_url: str, run_id: str, start: Callable[[], None] = _nothing) -> int:
    """``openwop_core`` sync client."""
    count = 0
    with OpenwopClient(base_url, api_key=API_KEY, stream_idle_timeout=60) as client:
        start()
        for _event in client.runs_events(run_id, stream_mode="debug"):
            count += 1
    return count


def core_async(base_url: str, run_id: str, start: Callable[[], None] = _nothing) -> int:
    """``openwop_core`` async client (a fresh event loop per stream, made before the clock starts)."""

    async def consume() -> int:
        count = 0
        async with AsyncOpenwopClient(base_url, api_key=API_KEY, stream_idle_timeout=60) as client:
            start()
            async for _event in client.runs_events(run_id, stream_mode="debug"):
                count += 1
        return count

    return asyncio.run(consume())


def official_sdk(base_url: str, run_id: str, start: Callable[[], None] = _nothing) -> int:
    """``openwop-client==1.1.1`` (the official v1-line SDK)."""
    client = openwop_client.OpenwopClient(base_url, API_KEY, timeout=60)
    start()
    count = 0
    for _event in client.runs_events(run_id, stream_mode="debug", timeout_seconds=60):
        count += 1
    return count


def httpx_sse_alone(base_url: str, run_id: str, start: Callable[[], None] = _nothing) -> int:
    """``httpx`` + ``httpx-sse`` + ``json.loads`` per frame, nothing else."""
    count = 0
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
    url = f"{base_url}/v1/runs/{run_id}/events?streamMode=debug"
    with httpx.Client(timeout=60) as client:
        start()
        with connect_sse(client, "GET", url, headers=headers) as source:
            for sse in source.iter_sse():
                if sse.data:
                    json.loads(sse.data)
                    count += 1
    return count


def _dechunk(data: bytes) -> bytes:
    parts = []
    pos = 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(parts)
        start = eol + 2
        parts.append(data[start : start + size])
        pos = start + size + 2


def floor(base_url: str, run_id: str, start: Callable[[], None] = _nothing) -> int:
    """Raw socket to EOF, undo chunking, decode, split frames, ``json.loads`` each data line."""
    start()
    parts = urlsplit(base_url)
    request = (
        f"GET /v1/runs/{run_id}/events?streamMode=debug HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
    ).encode()
    received = bytearray()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(request)
        while True:
            size = sock.recv_into(buffer)
            if not size:
                break
            received += view[:size]
    raw = bytes(received)
    head_end = raw.index(b"\r\n\r\n")
    head, body = raw[:head_end].lower(), raw[head_end + 4 :]
    if b"transfer-encoding: chunked" in head:
        body = _dechunk(body)
    count = 0
    loads = json.loads
    for frame in body.decode().split("\n\n"):  # one decode for the whole body, str slices after
        at = frame.find("data: ")
        if at >= 0:
            loads(frame[at + 6 :])
            count += 1
    return count


SUBJECTS: dict[str, Callable[[str, str, Callable[[], None]], int]] = {
    "openwop_core sync": core_sync,
    "openwop_core async": core_async,
    "official SDK (openwop-client 1.1.1)": official_sdk,
    "httpx-sse alone (+ json.loads)": httpx_sse_alone,
    "floor (raw socket + split + json.loads)": floor,
}
OURS = ("openwop_core sync", "openwop_core async")
OFFICIAL = "official SDK (openwop-client 1.1.1)"
FLOOR = "floor (raw socket + split + json.loads)"
#: The goals of issue 15, against the raw server, on every framing.
GOAL_VS_SDK = 1.5
GOAL_VS_FLOOR = 0.85
#: How each framing is named in the tables.
FRAMING_TITLES = {
    "chunked": "chunked (`Transfer-Encoding: chunked`, 64 KiB chunks, as the Node reference hosts send)",
    "close": "close-delimited (HTTP/1.0-style, no `Transfer-Encoding`, the body ends at the close, "
    "as the Python reference host sends)",
}


class Results:
    """Per subject: events/s by wall clock and by CPU time of this process (less sensitive to other load on
    the machine), one value per repeat; the CPU milliseconds each made its client in, before the clock
    started; and the number of events each subject decoded."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {name: [] for name in SUBJECTS}
        self.cpu: dict[str, list[float]] = {name: [] for name in SUBJECTS}
        self.setup_ms: dict[str, list[float]] = {name: [] for name in SUBJECTS}
        self.counts: dict[str, int] = {}

    def ratio(self, name: str, other: str, cpu: bool = False) -> float:
        """Median rate of ``name`` over the median rate of ``other``."""
        rates = self.cpu if cpu else self.wall
        return median(rates[name]) / median(rates[other])


def measure_all(base_urls: dict[str, str], run_id: str, repeats: int) -> dict[str, Results]:
    """events/s of every subject on every server of ``base_urls`` (a label each, e.g. the framing),
    ``repeats`` times each, all (label, subject) pairs interleaved; also each subject's event count."""
    results = {label: Results() for label in base_urls}
    pairs = [(label, name) for label in base_urls for name in SUBJECTS]
    for label, name in pairs:  # warm-up: imports, first connections, pydantic's lazy set-up
        SUBJECTS[name](base_urls[label], run_id)
    clock = [0.0, 0.0]

    def start() -> None:
        clock[:] = time.perf_counter(), time.process_time()

    for label, name in [pair for _ in range(repeats) for pair in pairs]:  # round-robin
        setup_started = time.process_time()
        count = SUBJECTS[name](base_urls[label], run_id, start)
        elapsed, cpu = time.perf_counter() - clock[0], time.process_time() - clock[1]
        results[label].wall[name].append(count / elapsed)
        results[label].cpu[name].append(count / max(cpu, 1e-9))
        results[label].setup_ms[name].append((clock[1] - setup_started) * 1000)
        results[label].counts[name] = count
        print(
            f"  {label:8s} {name:40s} {count:>7,} ev {count / elapsed:>9,.0f} ev/s {count / cpu:>9,.0f} ev/cpu-s",
            flush=True,
        )
    return results


def measure(base_url: str, run_id: str, repeats: int) -> Results:
    """events/s of every subject against one server, ``repeats`` times each, interleaved."""
    return measure_all({"": base_url}, run_id, repeats)[""]


def render(results: Results) -> str:
    """The table: median events/s, range, events per CPU-second, ratios to the official SDK and the floor (by
    wall clock and by CPU time), the client's set-up (before the clock)."""
    rows = []
    for name, values in results.wall.items():
        rows.append(
            [
                name,
                fmt_int(median(values)),
                f"{fmt_int(min(values))}-{fmt_int(max(values))}",
                fmt_int(median(results.cpu[name])),
                f"{results.ratio(name, OFFICIAL):.2f}x",
                f"{results.ratio(name, OFFICIAL, cpu=True):.2f}x",
                f"{results.ratio(name, FLOOR):.2f}x",
                f"{results.ratio(name, FLOOR, cpu=True):.2f}x",
                f"{median(results.setup_ms[name]):.1f}",
                f"{results.counts[name]:,}",
            ]
        )
    return table(
        [
            "consumer",
            "events/s (median)",
            "range",
            "events per CPU-s",
            "vs official SDK",
            "vs official SDK (CPU)",
            "vs floor",
            "vs floor (CPU)",
            "client set-up, ms CPU",
            "events",
        ],
        rows,
    )


def run_devhost(events: int, repeats: int) -> Results:
    """The same subjects replaying one finished ``devhost-burst`` run from the local host."""
    with devhost_process() as host, OpenwopClient(host.base_url, api_key=API_KEY) as client:
        run_id = client.runs_create("devhost-burst", {"count": events, "payloadBytes": 250}).run_id
        deadline = time.monotonic() + 120
        while not client.runs_get(run_id).is_terminal:
            if time.monotonic() > deadline:
                raise RuntimeError("the burst run did not finish in 120 s")
            time.sleep(0.2)
        return measure(host.base_url, run_id, repeats)


def raw_goals(framing: str, raw: Results) -> list[str]:
    """The goal lines of one framing: judged by CPU time (this process's, which the machine's other load
    moves less than the wall clock), the wall-clock ratio shown beside it."""
    lines = []
    for name in OURS:
        sdk_cpu, floor_cpu = raw.ratio(name, OFFICIAL, cpu=True), raw.ratio(name, FLOOR, cpu=True)
        lines.append(
            goal(
                f"{name}, {framing}: >= {GOAL_VS_SDK}x the official SDK: {sdk_cpu:.2f}x by CPU time "
                f"({raw.ratio(name, OFFICIAL):.2f}x by wall clock)",
                sdk_cpu >= GOAL_VS_SDK,
            )
        )
        lines.append(
            goal(
                f"{name}, {framing}: >= {GOAL_VS_FLOOR}x the floor: {floor_cpu:.2f}x by CPU time "
                f"({raw.ratio(name, FLOOR):.2f}x by wall clock)",
                floor_cpu >= GOAL_VS_FLOOR,
            )
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the tables (raw server in both framings, then the local host), print them, write them to
    docs/benchmarks.md."""
    # 15 repeats: this VM's speed moves by up to 45% between consecutive repeats; with 7, one subject's median
    # could land 0.1x off another's in the same run
    args = options("SSE consumption throughput", events=100_000, repeats=15, devhost_repeats=3).parse_args(argv)
    machine = header("SSE consumption throughput")

    print(f"raw stream servers ({', '.join(FRAMINGS)}), {args.events:,} events, {args.repeats} repeats:")
    with contextlib.ExitStack() as stack:
        servers = {}
        for framing in FRAMINGS:
            command = ["-m", "bench.rawsse", "--events", str(args.events), "--payload-bytes", "250"]
            server = child_server(
                [*command, "--framing", framing], url_pattern=r"listening on (http://\S+)", from_stderr=False
            )
            servers[framing] = stack.enter_context(server).base_url
        raws = measure_all(servers, RUN_ID, args.repeats)
    load_after = load_average()

    blocks = [
        f"One run's stream of {args.events:,} events (~250-byte payloads), from a minimal raw server "
        f"(`bench/rawsse.py`: a pre-built blob, its own process), in both framings, median of {args.repeats} "
        f"repeats, every (framing, consumer) pair interleaved; load average at the end {load_after}. "
        "Each consumer's client is made before the clock starts (its CPU time is the *client set-up* column). "
        "Goals judged by events per CPU-second of the benchmark process (the machine is shared: CPU time "
        "moves less with its other load than the wall clock does).",
    ]
    shown = []
    for framing, raw in raws.items():
        raw_table = render(raw)
        complete = all(c == args.events for c in raw.counts.values())
        goals = "\n".join(raw_goals(framing, raw))
        blocks += [
            f"**{FRAMING_TITLES[framing]}:**",
            raw_table,
            f"Every consumer received all {args.events:,} events: {'yes' if complete else 'NO'}.",
            goals,
        ]
        shown += [f"{framing}:\n{raw_table}", goals]
    if args.devhost_repeats > 0:
        print(f"\nlocal host (devhost-burst replay), {args.devhost_repeats} repeats:")
        dev_table = render(run_devhost(args.events, args.devhost_repeats))
        blocks += [
            f"Reference: the local host (`python -m openwop_devhost`, its own process) replaying one finished "
            f"`devhost-burst` run of {args.events:,} `log.appended` events plus its lifecycle events, "
            f"median of {args.devhost_repeats} repeats (the host's framing and uvicorn share the 2 cores):",
            dev_table,
        ]
        shown.append("local host:\n" + dev_table)
    print(f"\nload average at the end: {load_after}")
    publish("sse", "## 1. SSE consumption throughput", machine, blocks, shown, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
