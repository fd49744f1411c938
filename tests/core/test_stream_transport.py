"""Event streams on connections of their own (``openwop_core.stream_transport``).

Each followed stream gets a one-connection transport built like the client's (same SSL context, proxies,
HTTP/1.1), closed when the stream ends (normally, by an error, by cancellation) or with the client; other
requests keep the client's pool. Checked on real sockets against the local host: the connections this
process holds to the host go back to none once the streams end, whatever ended them; one SSL context
serves every transport; a ``transport=`` passed in is still used for streams; proxies from the
environment carry the streams too.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_helpers import API_KEY, collect
from shared_support import wait_until

from openwop_core import AsyncOpenwopClient, OpenwopClient, stream_transport
from openwop_core.stream_transport import OWN_CONNECTION, AsyncStreamingHTTPClient
from openwop_devhost import DevHost

linux_only = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts sockets through /proc")


def connections_to(port: int) -> int:
    """Established TCP connections this process opened to ``port`` (its client side: the remote port is
    ``port``; the in-process host's own sockets have it as their local port)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


def routers(client: OpenwopClient | AsyncOpenwopClient) -> Any:
    """The client's routing transport (where streams are counted)."""
    return client._http._transport


def finished_runs(host: DevHost, count: int) -> list[str]:
    """``count`` runs that have finished (their streams replay and end), created by a client of their own."""
    with OpenwopClient(host.base_url, api_key=API_KEY) as creator:
        run_ids = [creator.runs_create("conformance-noop").run_id for _ in range(count)]
        for run_id in run_ids:
            creator.wait_for_run(run_id, timeout=30)
    return run_ids


@pytest.fixture
def host() -> Iterator[DevHost]:
    with DevHost(api_key=API_KEY, keepalive_interval=0.2) as running:
        yield running


@linux_only
async def test_async_streams_each_hold_one_connection_and_leave_none_open(host: DevHost) -> None:
    run_ids = finished_runs(host, 12)
    async with AsyncOpenwopClient(host.base_url, api_key=API_KEY) as client:
        assert connections_to(host.port) == 0
        for _ in range(3):  # several rounds: nothing accumulates
            seen = await asyncio.gather(*(collect(client.runs_events(r)) for r in run_ids))
            assert all(events[-1].type == "run.completed" for events in seen)
            assert routers(client).open_streams == 0
            await asyncio.to_thread(wait_until, lambda: connections_to(host.port) == 0, 5)
        # ordinary requests still use the pool, which keeps its connection
        await client.runs_get(run_ids[0])
        await client.runs_get(run_ids[1])
        assert connections_to(host.port) == 1


@linux_only
async def test_open_streams_use_connections_apart_from_the_pool(host: DevHost) -> None:
    async with AsyncOpenwopClient(host.base_url, api_key=API_KEY) as client:
        run_ids = [(await client.runs_create("conformance-cancellable", {"delayMs": 60000})).run_id for _ in range(5)]
        assert connections_to(host.port) == 1  # the pool's keep-alive connection
        first: list[asyncio.Event] = [asyncio.Event() for _ in run_ids]

        async def follow(run_id: str, started: asyncio.Event) -> None:
            async for _ in client.runs_events(run_id):
                started.set()

        tasks = [asyncio.create_task(follow(r, s)) for r, s in zip(run_ids, first, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(s.wait() for s in first)), 10)
        assert routers(client).open_streams == 5
        assert connections_to(host.port) == 6
        await client.runs_get(run_ids[0])  # served by the pool's connection, not a stream's
        assert connections_to(host.port) == 6
        for task in tasks:  # cancelled mid-stream: each stream's connection goes with it
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert routers(client).open_streams == 0
        await asyncio.to_thread(wait_until, lambda: connections_to(host.port) == 1, 5)


@linux_only
async def test_closing_the_client_closes_streams_still_open(host: DevHost) -> None:
    client = AsyncOpenwopClient(host.base_url, api_key=API_KEY)
    run_ids = [(await client.runs_create("conformance-cancellable", {"delayMs": 60000})).run_id for _ in range(3)]
    streams = [client.runs_events(r) for r in run_ids]
    for stream in streams:
        await stream.__anext__()  # open, first event read, left suspended
    assert routers(client).open_streams == 3
    await client.aclose()
    assert routers(client).open_streams == 0
    await asyncio.to_thread(wait_until, lambda: connections_to(host.port) == 0, 5)
    for stream in streams:
        await stream.aclose()  # the streams' own end afterwards finds nothing left to close


@linux_only
def test_sync_streams_end_with_their_connections_and_with_the_client(host: DevHost) -> None:
    run_ids = finished_runs(host, 5)
    with OpenwopClient(host.base_url, api_key=API_KEY) as client:
        for _ in range(2):
            for run_id in run_ids:
                assert [e.type for e in client.runs_events(run_id)][-1] == "run.completed"
            assert routers(client).open_streams == 0
            wait_until(lambda: connections_to(host.port) == 0, 5)
        long_run = client.runs_create("conformance-cancellable", {"delayMs": 60000}).run_id
        broken_off = client.runs_events(long_run)
        next(broken_off)
        assert routers(client).open_streams == 1
        broken_off.close()  # the consumer stops early
        assert routers(client).open_streams == 0
        left_open = client.runs_events(long_run)
        next(left_open)
    assert routers(client).open_streams == 0  # closed with the client
    wait_until(lambda: connections_to(host.port) == 0, 5)
    left_open.close()


def test_one_ssl_context_serves_the_pool_and_every_stream(host: DevHost, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx._transports.default as default_transports

    built = httpx.create_ssl_context
    seen: list[Any] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        context = built(*args, **kwargs)
        seen.append(context)
        return context

    monkeypatch.setattr(httpx, "create_ssl_context", recording)
    monkeypatch.setattr(default_transports, "create_ssl_context", recording)
    run_ids = finished_runs(host, 3)
    seen.clear()
    with OpenwopClient(host.base_url, api_key=API_KEY) as client:
        for run_id in run_ids:
            list(client.runs_events(run_id))
            client.runs_get(run_id)
    assert len(seen) == 1 + 1 + len(run_ids)  # built once; the pool and each stream's transport get that one
    assert all(context is seen[0] for context in seen)


def sse_body(run_id: str) -> bytes:
    event = {"type": "run.completed", "sequence": 1, "runId": run_id, "payload": {}}
    return f"id: 1\nevent: run.completed\ndata: {json.dumps(event)}\n\n".encode()


async def test_a_transport_passed_in_carries_the_streams_too() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse_body("r1"))

    async with AsyncOpenwopClient("http://openwop.test", transport=httpx.MockTransport(handler)) as aclient:
        assert [e.type async for e in aclient.runs_events("r1")] == ["run.completed"]
    with OpenwopClient("http://openwop.test", transport=httpx.MockTransport(handler)) as client:
        assert [e.type for e in client.runs_events("r1")] == ["run.completed"]
    assert [r.url.path for r in seen] == ["/v1/runs/r1/events"] * 2
    assert all(r.extensions.items() >= OWN_CONNECTION.items() for r in seen)  # marked, and the mock answered


class _RecordingProxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy stand-in: records each request line (absolute-form through a proxy) and answers every
    ``.../events`` with one terminal event, anything else with a snapshot."""

    lines: list[str] = []

    def do_GET(self) -> None:
        self.lines.append(self.requestline)
        run_id = self.path.split("/v1/runs/", 1)[1].split("/")[0]
        if self.path.endswith("/events"):
            body, kind = sse_body(run_id), "text/event-stream"
        else:
            body, kind = json.dumps({"runId": run_id, "status": "completed"}).encode(), "application/json"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_streams_go_through_the_proxy_from_the_environment(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _RecordingProxy.lines = []
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        base = "http://openwop.invalid"  # resolvable only by the proxy
        if kind == "sync":
            with OpenwopClient(base) as client:
                types = [e.type for e in client.runs_events("r1")]
        else:
            async with AsyncOpenwopClient(base) as aclient:
                types = [e.type async for e in aclient.runs_events("r1")]
    finally:
        server.shutdown()
        server.server_close()
    assert types == ["run.completed"]
    assert _RecordingProxy.lines == ["GET http://openwop.invalid/v1/runs/r1/events HTTP/1.1"]


def test_connections_to_counts_only_this_side() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    outbound = socket.create_connection(("127.0.0.1", port))
    inbound, _ = listener.accept()
    try:
        if Path("/proc/net/tcp").exists():
            assert connections_to(port) == 1
    finally:
        for s in (outbound, inbound, listener):
            s.close()


# -- the shared pool: a bounded number of requests in flight per event loop ------------------------------


@linux_only
async def test_a_burst_of_requests_holds_no_more_connections_than_turns(
    host: DevHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 snapshot reads at once (a triggerer's waits starting together) pass through 5 turns: every one is
    answered, and the process never holds more than 5 connections to the host (before: one per request)."""
    monkeypatch.setattr(stream_transport, "POOLED_REQUESTS_IN_FLIGHT", 5)
    run_ids = finished_runs(host, 3)
    async with AsyncOpenwopClient(host.base_url, api_key=API_KEY) as client:
        most = 0
        reads = asyncio.ensure_future(asyncio.gather(*(client.runs_get(run_ids[i % 3]) for i in range(300))))
        while not reads.done():
            most = max(most, connections_to(host.port), routers(client).pooled_in_flight)
            await asyncio.sleep(0.002)
        snapshots = await reads
        assert [s.run_id for s in snapshots] == [run_ids[i % 3] for i in range(300)]
        assert all(s.status == "completed" for s in snapshots)
        assert 1 <= most <= 5
        assert routers(client).pooled_in_flight == 0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung host)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for s in [*accepted, listener]:
        s.close()


async def test_a_request_without_a_turn_fails_after_the_pool_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every turn held by a request the host never answers, the next one waits no longer than its pool
    timeout and fails with ``httpx.PoolTimeout`` (retried by the client as a transport error); the turn is
    given back when the held request ends, by cancellation here."""
    monkeypatch.setattr(stream_transport, "POOLED_REQUESTS_IN_FLIGHT", 1)
    timeout = httpx.Timeout(30.0, pool=0.3)
    async with AsyncStreamingHTTPClient(base_url=f"http://127.0.0.1:{silent_server}", timeout=timeout) as http:
        held = asyncio.create_task(http.get("/v1/runs/r1"))
        await asyncio.to_thread(wait_until, lambda: http._transport.pooled_in_flight == 1, 5)
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.PoolTimeout, match=r"no turn in the connection pool within 0\.3 s"):
            await http.get("/v1/runs/r2")
        assert 0.25 <= asyncio.get_running_loop().time() - started < 5
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        assert http._transport.pooled_in_flight == 0


async def test_a_failed_request_gives_its_turn_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request refused at connect time ends without holding its turn: the next one gets it at once."""
    monkeypatch.setattr(stream_transport, "POOLED_REQUESTS_IN_FLIGHT", 1)
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    async with AsyncStreamingHTTPClient(
        base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(5.0, pool=0.2)
    ) as http:
        for _ in range(3):  # a turn kept by a failure would make the second one a PoolTimeout
            with pytest.raises(httpx.ConnectError):
                await http.get("/v1/runs/r1")
        assert http._transport.pooled_in_flight == 0


@linux_only
async def test_a_long_poll_holds_a_connection_of_its_own(host: DevHost) -> None:
    """A long-poll waits as long as a stream does, so it is sent like one: on its own connection, closed after."""
    async with AsyncOpenwopClient(host.base_url, api_key=API_KEY) as client:
        run_id = (await client.runs_create("conformance-cancellable", {"delayMs": 60000})).run_id
        first = await client.runs_poll_events(run_id, timeout_seconds=1)
        polling = asyncio.create_task(
            client.runs_poll_events(run_id, last_sequence=first.events[-1].sequence, timeout_seconds=2)
        )
        await asyncio.to_thread(wait_until, lambda: routers(client).open_streams == 1, 5)
        assert routers(client).pooled_in_flight == 0
        page = await polling
        assert page.events == []
        assert routers(client).open_streams == 0
        await client.runs_cancel(run_id)


def test_each_event_loop_gets_turns_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client used from a second event loop (``asyncio.run`` twice) gets a semaphore of that loop: one bound
    to the first loop would raise as soon as a request had to wait for its turn in the second."""
    monkeypatch.setattr(stream_transport, "POOLED_REQUESTS_IN_FLIGHT", 1)
    router = AsyncStreamingHTTPClient(base_url="http://127.0.0.1:9")._transport

    async def contend() -> object:
        slots = router._semaphore()
        await slots.acquire()
        waiter = asyncio.ensure_future(slots.acquire())  # must wait: binds the semaphore to this loop
        await asyncio.sleep(0)
        assert router.pooled_in_flight == 1
        slots.release()
        await waiter
        slots.release()
        assert router.pooled_in_flight == 0
        return slots

    first, second = asyncio.run(contend()), asyncio.run(contend())
    assert first is not second
