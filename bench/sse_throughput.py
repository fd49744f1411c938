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

Main table: a minimal raw server (``bench/rawsse.py``, its own process) that sends a pre-built byte blob,
so the server is never the bottleneck. Reference table: the local host (``python -m
openwop_devhost``, its own process) replaying the backlog of one finished ``devhost-burst`` run.

Reported: the median events/s over the repeats (and the range), and the ratios to the official SDK and to
the floor. Goal: ``openwop_core`` >= 1.3x the official SDK and >= 0.8x the floor (raw server).

    .venv-bench/bin/python -m bench.sse_throughput [--repeats 7] [--events 100000] [--no-write]
"""

from __future__ import annotations

import asyncio
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
    interleaved,
    median,
    options,
    publish,
    table,
)
from bench.rawsse import RUN_ID  # the raw server answers any path; this is the run id its events carry
from openwop_core import AsyncOpenwopClient, OpenwopClient

# -- the subjects: each consumes one whole stream and returns how many events it decoded ------------------


def core_sync(base_url: str, run_id: str) -> int:
    """``openwop_core`` sync client."""
    count = 0
    with OpenwopClient(base_url, api_key=API_KEY, stream_idle_timeout=60) as client:
        for _event in client.runs_events(run_id, stream_mode="debug"):
            count += 1
    return count


def core_async(base_url: str, run_id: str) -> int:
    """``openwop_core`` async client (a fresh event loop per stream: ~1 ms of the timed part)."""

    async def consume() -> int:
        count = 0
        async with AsyncOpenwopClient(base_url, api_key=API_KEY, stream_idle_timeout=60) as client:
            async for _event in client.runs_events(run_id, stream_mode="debug"):
                count += 1
        return count

    return asyncio.run(consume())


def official_sdk(base_url: str, run_id: str) -> int:
    """``openwop-client==1.1.1`` (the official v1-line SDK)."""
    client = openwop_client.OpenwopClient(base_url, API_KEY, timeout=60)
    count = 0
    for _event in client.runs_events(run_id, stream_mode="debug", timeout_seconds=60):
        count += 1
    return count


def httpx_sse_alone(base_url: str, run_id: str) -> int:
    """``httpx`` + ``httpx-sse`` + ``json.loads`` per frame, nothing else."""
    count = 0
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
    url = f"{base_url}/v1/runs/{run_id}/events?streamMode=debug"
    with httpx.Client(timeout=60) as client, connect_sse(client, "GET", url, headers=headers) as source:
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


def floor(base_url: str, run_id: str) -> int:
    """Raw socket to EOF, undo chunking, decode, split frames, ``json.loads`` each data line."""
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


SUBJECTS: dict[str, Callable[[str, str], int]] = {
    "openwop_core sync": core_sync,
    "openwop_core async": core_async,
    "official SDK (openwop-client 1.1.1)": official_sdk,
    "httpx-sse alone (+ json.loads)": httpx_sse_alone,
    "floor (raw socket + split + json.loads)": floor,
}
OURS = ("openwop_core sync", "openwop_core async")
OFFICIAL = "official SDK (openwop-client 1.1.1)"
FLOOR = "floor (raw socket + split + json.loads)"


class Results:
    """Per subject: events/s by wall clock and by CPU time of this process (less sensitive to other load on
    the machine), one value per repeat; and the number of events each subject decoded."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {name: [] for name in SUBJECTS}
        self.cpu: dict[str, list[float]] = {name: [] for name in SUBJECTS}
        self.counts: dict[str, int] = {}

    def ratio(self, name: str, other: str, cpu: bool = False) -> float:
        """Median rate of ``name`` over the median rate of ``other``."""
        rates = self.cpu if cpu else self.wall
        return median(rates[name]) / median(rates[other])


def measure(base_url: str, run_id: str, repeats: int) -> Results:
    """events/s of every subject, ``repeats`` times each, interleaved; also each subject's event count."""
    results = Results()
    for name in SUBJECTS:  # warm-up: imports, first connections, pydantic's lazy set-up
        SUBJECTS[name](base_url, run_id)
    for name in interleaved(list(SUBJECTS), repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        count = SUBJECTS[name](base_url, run_id)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        results.wall[name].append(count / elapsed)
        results.cpu[name].append(count / max(cpu, 1e-9))
        results.counts[name] = count
        print(f"  {name:40s} {count:>7,} ev {count / elapsed:>9,.0f} ev/s {count / cpu:>9,.0f} ev/cpu-s", flush=True)
    return results


def render(results: Results) -> str:
    """The table: median events/s, range, events per CPU-second, ratios to the official SDK and the floor."""
    rows = []
    for name, values in results.wall.items():
        rows.append(
            [
                name,
                fmt_int(median(values)),
                f"{fmt_int(min(values))}-{fmt_int(max(values))}",
                fmt_int(median(results.cpu[name])),
                f"{results.ratio(name, OFFICIAL):.2f}x",
                f"{results.ratio(name, FLOOR):.2f}x",
                f"{results.ratio(name, FLOOR, cpu=True):.2f}x",
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
            "vs floor",
            "vs floor (CPU)",
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


def main(argv: list[str] | None = None) -> int:
    """Run both tables, print them, write them to docs/benchmarks.md."""
    args = options("SSE consumption throughput", events=100_000, repeats=7, devhost_repeats=3).parse_args(argv)
    machine = header("SSE consumption throughput")

    print(f"raw stream server, {args.events:,} events, {args.repeats} repeats:")
    with child_server(
        ["-m", "bench.rawsse", "--events", str(args.events), "--payload-bytes", "250"],
        url_pattern=r"listening on (http://\S+)",
        from_stderr=False,
    ) as raw:
        raw = measure(raw.base_url, RUN_ID, args.repeats)
    print(f"\nlocal host (devhost-burst replay), {args.devhost_repeats} repeats:")
    dev = run_devhost(args.events, args.devhost_repeats)

    raw_table, dev_table = render(raw), render(dev)
    goals = []
    for name in OURS:
        vs_sdk, vs_floor = raw.ratio(name, OFFICIAL), raw.ratio(name, FLOOR)
        goals.append(goal(f"{name} >= 1.3x the official SDK: {vs_sdk:.2f}x", vs_sdk >= 1.3))
        goals.append(
            goal(
                f"{name} >= 0.8x the floor: {vs_floor:.2f}x by wall clock "
                f"({raw.ratio(name, FLOOR, cpu=True):.2f}x by CPU time)",
                vs_floor >= 0.8,
            )
        )
    complete = all(c == args.events for c in raw.counts.values())
    blocks = [
        f"One run's stream of {args.events:,} events (~250-byte payloads), from a minimal raw server "
        f"(`bench/rawsse.py`: a pre-built chunked blob, its own process), median of {args.repeats} "
        "interleaved repeats:",
        raw_table,
        f"Every consumer received all {args.events:,} events: {'yes' if complete else 'NO'}.",
        "\n".join(goals),
        f"Reference: the local host (`python -m openwop_devhost`, its own process) replaying one finished "
        f"`devhost-burst` run of {args.events:,} `log.appended` events plus its lifecycle events, "
        f"median of {args.devhost_repeats} repeats (the host's framing and uvicorn share the 2 cores):",
        dev_table,
    ]
    shown = [raw_table, "\n".join(goals), "local host:\n" + dev_table]
    publish("sse", "## 1. SSE consumption throughput", machine, blocks, shown, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
