"""Request overhead: create+get round trips per second against the local host, one request at a time, on
loopback over plain http and over TLS; and where the client's own layer spends its CPU.

Each iteration is ``POST /v1/runs`` (``conformance-noop``) then ``GET /v1/runs/{runId}``, answers decoded
into the client's models. Subjects, in this one process, interleaved, against the same host (``python -m
openwop_devhost``, its own process; over TLS ``bench/tlshost.py``, the same app behind a certificate signed
by a throwaway CA that every client is told to trust):

- ``openwop_core`` sync ``OpenwopClient`` (one pooled keep-alive connection; it also sends a generated
  ``Idempotency-Key`` and a ``traceparent`` on every create, which the host checks and stores);
- ``openwop_core`` async ``AsyncOpenwopClient`` (the same on asyncio, awaited one at a time);
- the official v1-line SDK ``openwop-client==1.1.1`` (``urllib``: a new TCP connection, and over TLS a new
  handshake, per request; it trusts the CA through ``SSL_CERT_FILE``, its only way), given an
  ``Idempotency-Key`` per create too, so the host does the same work for both;
- ``httpx`` alone (the same two requests, pooled keep-alive, ``json.loads`` of the answers): the transport
  ``openwop_core`` is built on, to show which part of the cost is ours.

Reported: the median iterations/s over the repeats (and the range), the median time of one request, the
client process's CPU per iteration, and the ratio to the official SDK. Then the client's own layer, piece by
piece, measured apart (no network; CPU time, best of 5): what ``openwop_core`` adds to the two requests on
top of httpx.

    .venv-bench/bin/python -m bench.request_overhead [--iterations 300] [--repeats 5] [--no-write]
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import tempfile
import time
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import openwop_client
from openwop_client.types import CreateRunRequest

from bench._common import (
    API_KEY,
    devhost_process,
    fmt_int,
    header,
    interleaved,
    median,
    options,
    publish,
    table,
    tls_devhost_process,
)
from openwop_core import AsyncOpenwopClient, OpenwopClient
from openwop_core import operations as ops

WORKFLOW = "conformance-noop"
#: A subject: (base URL, iterations, CA bundle to trust or None for plain http).
Subject = Callable[[str, int, "Path | None"], None]


def core_sync(base_url: str, iterations: int, ca: Path | None) -> None:
    """``openwop_core`` sync client, one client (pool) for all iterations."""
    with OpenwopClient(base_url, api_key=API_KEY, verify=str(ca) if ca else True) as client:
        for _ in range(iterations):
            run_id = client.runs_create(WORKFLOW).run_id
            client.runs_get(run_id)


def core_async(base_url: str, iterations: int, ca: Path | None) -> None:
    """``openwop_core`` async client, awaited one request at a time."""

    async def loop() -> None:
        async with AsyncOpenwopClient(base_url, api_key=API_KEY, verify=str(ca) if ca else True) as client:
            for _ in range(iterations):
                run_id = (await client.runs_create(WORKFLOW)).run_id
                await client.runs_get(run_id)

    asyncio.run(loop())


def official_sdk(base_url: str, iterations: int, ca: Path | None) -> None:
    """``openwop-client==1.1.1``, given an ``Idempotency-Key`` per create as ours sends (same host work); over
    TLS it trusts ``SSL_CERT_FILE`` (set by ``main``)."""
    client = openwop_client.OpenwopClient(base_url, API_KEY)
    for _ in range(iterations):
        run_id = client.runs_create(CreateRunRequest(workflowId=WORKFLOW), idempotency_key=uuid.uuid4().hex).runId
        client.runs_get(run_id)


def httpx_alone(base_url: str, iterations: int, ca: Path | None) -> None:
    """``httpx.Client`` (pooled keep-alive) + ``json.loads``: the transport our client is built on."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = json.dumps({"workflowId": WORKFLOW}).encode()
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True
    with httpx.Client(base_url=base_url, headers=headers, verify=verify) as client:
        for _ in range(iterations):
            create_headers = {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
            created = client.post("/v1/runs", content=body, headers=create_headers)
            run_id = json.loads(created.content)["runId"]
            json.loads(client.get(f"/v1/runs/{run_id}").content)


SUBJECTS: dict[str, Subject] = {
    "openwop_core sync (pooled keep-alive)": core_sync,
    "openwop_core async (pooled keep-alive)": core_async,
    "official SDK (openwop-client 1.1.1)": official_sdk,
    "httpx alone (pooled keep-alive, json.loads)": httpx_alone,
}
OFFICIAL = "official SDK (openwop-client 1.1.1)"
CORE_SYNC = "openwop_core sync (pooled keep-alive)"
HTTPX = "httpx alone (pooled keep-alive, json.loads)"


def measure(base_url: str, ca: Path | None, iterations: int, repeats: int) -> tuple[dict[str, list[float]], ...]:
    """Rates (create+get/s) and CPU per pair (s) of every subject, interleaved repeats after a warm-up."""
    rates: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    cpu: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    for subject in SUBJECTS.values():  # warm-up
        subject(base_url, 20, ca)
    for name in interleaved(list(SUBJECTS), repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        SUBJECTS[name](base_url, iterations, ca)
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu_started
        rates[name].append(iterations / elapsed)
        cpu[name].append(used / iterations)
        print(f"  {name:44s} {iterations / elapsed:>8,.0f} create+get/s", flush=True)
    return rates, cpu


def rows_of(transport: str, rates: dict[str, list[float]], cpu: dict[str, list[float]]) -> list[list[str]]:
    """Table rows of one transport (plain http or TLS)."""
    official = median(rates[OFFICIAL])
    return [
        [
            transport,
            name,
            fmt_int(median(values)),
            f"{fmt_int(min(values))}-{fmt_int(max(values))}",
            f"{1000 / median(values) / 2:.2f}",
            f"{1000 * median(cpu[name]):.2f}",
            f"{median(values) / official:.2f}x",
        ]
        for name, values in rates.items()
    ]


def layer_costs(base_url: str) -> list[list[str]]:
    """CPU (µs) of each piece of ``openwop_core``'s own layer for one create and one get, measured apart on
    real answers of the host (no network; best of 5 rounds of 2,000)."""
    client = OpenwopClient(base_url, api_key=API_KEY)
    settings = client.settings
    create_call, get_call = ops.runs_create(WORKFLOW), ops.runs_get("r")
    created = client._http.request(**settings.request_options(create_call))  # answers to decode, as sent
    fetched = client._http.request(**settings.request_options(ops.runs_get(created.json()["runId"])))
    client.close()

    def attempt_wrapper() -> None:
        for attempt in settings.retry.retrying("GET /v1/runs/r"):
            with attempt:
                return

    pieces: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        (
            "prepare the call: argument checks, path, JSON body, Idempotency-Key (create)",
            lambda: ops.runs_create(WORKFLOW),
            lambda: ops.runs_get("r"),
        ),
        (
            "request options: `traceparent`, headers, timeout, auth",
            lambda: settings.request_options(create_call),
            lambda: settings.request_options(get_call),
        ),
        ("retries: the attempt wrapper around the first attempt", attempt_wrapper, attempt_wrapper),
        (
            "answer to model: status check, JSON, pydantic validation",
            lambda: settings.finish(create_call, created),
            lambda: settings.finish(get_call, fetched),
        ),
    ]
    rounds = 2000

    def cost(fn: Callable[[], object]) -> float:
        return min(timeit.repeat(fn, number=rounds, repeat=5, timer=time.process_time)) / rounds * 1e6

    rows, totals = [], [0.0, 0.0]
    for name, create, get in pieces:
        costs = cost(create), cost(get)
        totals = [totals[0] + costs[0], totals[1] + costs[1]]
        rows.append([name, f"{costs[0]:.1f}", f"{costs[1]:.1f}"])
    rows.append(["**our layer, total**", f"{totals[0]:.1f}", f"{totals[1]:.1f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure, print the tables, write them to docs/benchmarks.md."""
    args = options("create+get request overhead", iterations=300, repeats=5).parse_args(argv)
    machine = header("Request overhead (create + get), plain http and TLS")
    rows: list[list[str]] = []
    cpu_pairs: dict[str, dict[str, float]] = {}
    with devhost_process() as host:
        print("loopback, plain http:", flush=True)
        rates, cpu = measure(host.base_url, None, args.iterations, args.repeats)
        rows += rows_of("http", rates, cpu)
        cpu_pairs["http"] = {name: median(values) for name, values in cpu.items()}
        layer = layer_costs(host.base_url)
    with (
        tempfile.TemporaryDirectory(prefix="openwop-bench-tls-") as directory,
        tls_devhost_process(Path(directory)) as (host, ca),
    ):
        os.environ["SSL_CERT_FILE"] = str(ca)  # the official SDK (urllib) trusts the CA only this way
        print("loopback, TLS (throwaway CA):", flush=True)
        rates, cpu = measure(host.base_url, ca, args.iterations, args.repeats)
        rows += rows_of("TLS", rates, cpu)
        cpu_pairs["TLS"] = {name: median(values) for name, values in cpu.items()}
    text = table(
        [
            "transport",
            "client",
            "create+get/s (median)",
            "range",
            "ms per request",
            "client CPU ms per create+get",
            "vs official SDK",
        ],
        rows,
    )
    ours = float(layer[-1][1]) + float(layer[-1][2])  # the total row, µs
    http_cpu = cpu_pairs["http"]
    layer_text = table(["piece of `openwop_core`'s own layer", "create µs", "get µs"], layer)
    where = (
        f"Where the sync client's CPU goes per create+get on plain http: {1000 * http_cpu[CORE_SYNC]:.2f} ms in all, "
        f"of which {ours / 1000:.3f} ms is `openwop_core`'s own layer (measured apart, below); `httpx alone` "
        f"takes {1000 * http_cpu[HTTPX]:.2f} ms for the same two requests. The rest is httpx, httpcore and h11 "
        "building, sending and parsing each request, and the socket calls (the client's auth hook and its "
        "extra headers, `traceparent` and `User-Agent`, are part of that)."
    )
    intro = (
        f"`POST /v1/runs` + `GET /v1/runs/{{id}}`, one at a time, {args.iterations} per repeat, median of "
        f"{args.repeats} interleaved repeats, local host in its own process; over TLS the same app behind a "
        "certificate of a throwaway CA (TLS 1.3, loopback):"
    )
    shown = [text, where, layer_text]
    publish("requests", "## 4. Request overhead", machine, [intro, *shown], shown, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
