"""Request overhead: create+get round trips per second against the local host, one request at a time.

Each iteration is ``POST /v1/runs`` (``conformance-noop``) then ``GET /v1/runs/{runId}``, answers decoded
into the client's models. Subjects, in this one process, interleaved, against the same host (``python -m
openwop_devhost``, its own process):

- ``openwop_core`` sync ``OpenwopClient`` (one pooled keep-alive connection; it also sends a generated
  ``Idempotency-Key`` and a ``traceparent`` on every create, which the host checks and stores);
- ``openwop_core`` async ``AsyncOpenwopClient`` (the same on asyncio, awaited one at a time);
- the official v1-line SDK ``openwop-client==1.1.1`` (``urllib``: a new TCP connection per request),
  given an ``Idempotency-Key`` per create too, so the host does the same work for both;
- ``httpx`` alone (the same two requests, pooled keep-alive, ``json.loads`` of the answers): the transport
  ``openwop_core`` is built on, to show which part of the cost is ours.

Reported: the median iterations/s over the repeats (and the range), the median time of one request, the
client process's CPU per iteration, and the ratio to the official SDK.

    .venv-bench/bin/python -m bench.request_overhead [--iterations 300] [--repeats 5] [--no-write]
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

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
)
from openwop_core import AsyncOpenwopClient, OpenwopClient

WORKFLOW = "conformance-noop"


def core_sync(base_url: str, iterations: int) -> None:
    """``openwop_core`` sync client, one client (pool) for all iterations."""
    with OpenwopClient(base_url, api_key=API_KEY) as client:
        for _ in range(iterations):
            run_id = client.runs_create(WORKFLOW).run_id
            client.runs_get(run_id)


def core_async(base_url: str, iterations: int) -> None:
    """``openwop_core`` async client, awaited one request at a time."""

    async def loop() -> None:
        async with AsyncOpenwopClient(base_url, api_key=API_KEY) as client:
            for _ in range(iterations):
                run_id = (await client.runs_create(WORKFLOW)).run_id
                await client.runs_get(run_id)

    asyncio.run(loop())


def official_sdk(base_url: str, iterations: int) -> None:
    """``openwop-client==1.1.1``, given an ``Idempotency-Key`` per create as ours sends (same host work)."""
    client = openwop_client.OpenwopClient(base_url, API_KEY)
    for _ in range(iterations):
        run_id = client.runs_create(CreateRunRequest(workflowId=WORKFLOW), idempotency_key=uuid.uuid4().hex).runId
        client.runs_get(run_id)


def httpx_alone(base_url: str, iterations: int) -> None:
    """``httpx.Client`` (pooled keep-alive) + ``json.loads``: the transport our client is built on."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = json.dumps({"workflowId": WORKFLOW}).encode()
    with httpx.Client(base_url=base_url, headers=headers) as client:
        for _ in range(iterations):
            create_headers = {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
            created = client.post("/v1/runs", content=body, headers=create_headers)
            run_id = json.loads(created.content)["runId"]
            json.loads(client.get(f"/v1/runs/{run_id}").content)


SUBJECTS: dict[str, Callable[[str, int], None]] = {
    "openwop_core sync (pooled keep-alive)": core_sync,
    "openwop_core async (pooled keep-alive)": core_async,
    "official SDK (openwop-client 1.1.1)": official_sdk,
    "httpx alone (pooled keep-alive, json.loads)": httpx_alone,
}
OFFICIAL = "official SDK (openwop-client 1.1.1)"


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, write it to docs/benchmarks.md."""
    args = options("create+get request overhead", iterations=300, repeats=5).parse_args(argv)
    machine = header("Request overhead (create + get)")
    rates: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    cpu: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    with devhost_process() as host:
        for subject in SUBJECTS.values():  # warm-up
            subject(host.base_url, 20)
        for name in interleaved(list(SUBJECTS), args.repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            SUBJECTS[name](host.base_url, args.iterations)
            elapsed, used = time.perf_counter() - started, time.process_time() - cpu_started
            rates[name].append(args.iterations / elapsed)
            cpu[name].append(used / args.iterations)
            print(f"  {name:44s} {args.iterations / elapsed:>8,.0f} create+get/s", flush=True)
    official = median(rates[OFFICIAL])
    rows = [
        [
            name,
            fmt_int(median(values)),
            f"{fmt_int(min(values))}-{fmt_int(max(values))}",
            f"{1000 / median(values) / 2:.2f}",
            f"{1000 * median(cpu[name]):.2f}",
            f"{median(values) / official:.2f}x",
        ]
        for name, values in rates.items()
    ]
    text = table(
        [
            "client",
            "create+get/s (median)",
            "range",
            "ms per request",
            "client CPU ms per create+get",
            "vs official SDK",
        ],
        rows,
    )
    intro = (
        f"`POST /v1/runs` + `GET /v1/runs/{{id}}`, one at a time, {args.iterations} per repeat, median of "
        f"{args.repeats} interleaved repeats, local host in its own process:"
    )
    publish("requests", "## 4. Request overhead", machine, [intro, text], [text], write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
