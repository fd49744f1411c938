"""The async client's connections on asyncio's own transports (``openwop_core.asyncio_network``).

Each case runs over real loopback sockets against a raw server thread that does one thing a real server or
network does: answer slowly or not at all, reset the connection, send faster than the reader reads, read
slower than the client sends, drop an idle kept-alive connection, never finish a TLS handshake. The client
must read everything in order, hold back a fast sender, and fail with httpx's own exception types (so the
client's retry and error mapping see what they saw with httpcore's anyio backend). TLS with a private CA,
verification failures and streams over TLS run through this backend in tests/reliability/test_rel_tls_webhooks.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from core_helpers import API_KEY
from shared_support import wait_until

from openwop_core import AsyncOpenwopClient
from openwop_core.asyncio_network import AsyncioBackend
from openwop_core.stream_transport import AsyncStreamingHTTPClient
from openwop_devhost import DevHost

BLOCK = bytes(range(256)) * 4096  # 1 MiB, not all alike, so a reordered or lost piece changes the digest


class RawServer:
    """Accepts on 127.0.0.1 (or a Unix socket) and runs ``handle(conn)`` on each connection in a thread of its
    own; counts the connections and keeps what handlers record in ``facts``."""

    def __init__(self, handle: Callable[[socket.socket, RawServer], None], unix_path: Path | None = None) -> None:
        self.handle = handle
        self.connections = 0
        self.facts: dict[str, Any] = {}
        if unix_path is None:
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        else:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(str(unix_path))
            self.listener.listen()
            self.url = "http://openwop.local"
        self.stopped = threading.Event()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client went away: the test checks what it saw
            self.handle(conn, self)

    def __enter__(self) -> RawServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.listener.close()


def read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    """The request head, and whatever of the body came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            raise ConnectionError("closed before the request head ended")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def client(server: RawServer, **timeouts: float) -> AsyncStreamingHTTPClient:
    """The async client's HTTP layer, as ``AsyncOpenwopClient`` builds it (its own transports)."""
    return AsyncStreamingHTTPClient(base_url=server.url, timeout=httpx.Timeout(10.0, **timeouts))


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# -- which connections use it ---------------------------------------------------------------------------------


async def test_the_clients_pool_and_its_streams_connect_through_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    with DevHost(api_key=API_KEY) as host:
        async with AsyncOpenwopClient(host.base_url, api_key=API_KEY) as aclient:
            router = aclient._http._transport
            assert isinstance(router._pool._pool._network_backend, AsyncioBackend)
            streams: list[Any] = []
            make = router._make
            monkeypatch.setattr(router, "_make", lambda limits: streams.append(make(limits)) or streams[-1])
            run = await aclient.runs_create("conformance-noop")
            events = [event.type async for event in aclient.runs_events(run.run_id)]
    assert events[-1] == "run.completed"
    assert [type(s._pool._network_backend) for s in streams] == [AsyncioBackend]  # the stream's own transport


def test_an_https_proxy_keeps_httpcores_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS inside TLS (an ``https://`` proxy to an ``https://`` host) needs ``start_tls`` on a TLS transport,
    which asyncio lacks on Python 3.10: those transports keep httpcore's own backend; an http proxy does not."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.invalid:3129")
    http = AsyncStreamingHTTPClient(base_url="https://openwop.invalid")
    backends = {pattern.pattern: router._pool._pool._network_backend for pattern, router in http._mounts.items()}
    assert not isinstance(backends["https://"], AsyncioBackend)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    http = AsyncStreamingHTTPClient(base_url="https://openwop.invalid")
    assert all(isinstance(r._pool._pool._network_backend, AsyncioBackend) for r in http._mounts.values())


# -- reading --------------------------------------------------------------------------------------------------


def send_blocks(count: int) -> Callable[[socket.socket, RawServer], None]:
    """A handler sending ``count`` MiB, close-delimited, recording how many bytes ``sendall`` got through."""

    def handle(conn: socket.socket, server: RawServer) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.0 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n")
        server.facts["sent"] = 0
        for _ in range(count):
            conn.sendall(BLOCK)
            server.facts["sent"] += len(BLOCK)
        server.facts["done"] = True

    return handle


async def test_a_slow_reader_holds_the_sender_back_and_still_gets_every_byte_in_order() -> None:
    blocks = 160  # more than the kernel's buffers on both sides can hold (tcp_rmem may reach 32 MiB)
    with RawServer(send_blocks(blocks)) as server:
        async with client(server) as http, http.stream("GET", "/") as response:
            chunks = response.aiter_raw()
            digest = hashlib.sha256(await chunks.__anext__())
            await asyncio.sleep(1.0)  # the loop runs, the reader does not read: the socket is left unread
            stalled_at = server.facts["sent"]
            await asyncio.sleep(0.5)
            assert (server.facts["sent"], server.facts.get("done")) == (stalled_at, None)
            async for chunk in chunks:
                digest.update(chunk)
    assert server.facts["done"]
    assert digest.hexdigest() == hashlib.sha256(BLOCK * blocks).hexdigest()
    assert stalled_at < blocks * len(BLOCK)


async def test_a_stalled_body_ends_in_a_read_timeout() -> None:
    def stall(conn: socket.socket, server: RawServer) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        server.stopped.wait(30)

    with RawServer(stall) as server:
        async with client(server, read=0.3) as http, http.stream("GET", "/") as response:
            with pytest.raises(httpx.ReadTimeout):
                [chunk async for chunk in response.aiter_bytes()]


async def test_a_reset_mid_body_is_a_read_error_not_a_clean_end() -> None:
    """Close-delimited (HTTP/1.0-style, as the Python reference host sends): a clean close ends the body, so a
    reset read as a close would be a truncated body taken for a whole one."""

    def reset(conn: socket.socket, server: RawServer) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\nid: 1\ndata: {}\n\n")
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close

    with RawServer(reset) as server:
        async with client(server) as http, http.stream("GET", "/") as response:
            with pytest.raises(httpx.ReadError):
                [chunk async for chunk in response.aiter_bytes()]


async def test_a_cancelled_read_closes_its_connection_and_the_client_goes_on() -> None:
    def stall_then_answer(conn: socket.socket, server: RawServer) -> None:
        head, _ = read_head(conn)
        if b"/stall" in head:
            conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            server.facts["closed"] = conn.recv(1) == b""  # the client's close reaches us
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    with RawServer(stall_then_answer) as server:
        async with client(server) as http:

            async def follow() -> None:
                async with http.stream("GET", "/stall") as response:
                    async for _ in response.aiter_bytes():
                        pass

            task = asyncio.ensure_future(follow())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await http.get("/next")).text == "ok"
        await asyncio.to_thread(wait_until, lambda: "closed" in server.facts, timeout=10, what="the close")
    assert server.facts["closed"]


# -- writing --------------------------------------------------------------------------------------------------


async def test_a_large_upload_to_a_slow_reader_arrives_whole() -> None:
    def slow_sink(conn: socket.socket, server: RawServer) -> None:
        head, body = read_head(conn)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        digest = hashlib.sha256(body)
        got = len(body)
        while got < length:
            piece = conn.recv(256 * 1024)
            if not piece:
                break
            digest.update(piece)
            got += len(piece)
            time.sleep(0.002)
        answer = digest.hexdigest().encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer))

    upload = BLOCK * 24
    with RawServer(slow_sink) as server:
        async with client(server) as http:
            response = await http.post("/", content=upload)
    assert response.text == hashlib.sha256(upload).hexdigest()


async def test_an_upload_nobody_reads_ends_in_a_write_timeout() -> None:
    def never_read(conn: socket.socket, server: RawServer) -> None:
        server.stopped.wait(30)

    with RawServer(never_read) as server:
        async with client(server, write=0.5) as http:
            with pytest.raises(httpx.WriteTimeout):
                await http.post("/", content=BLOCK * 96)


# -- connections ----------------------------------------------------------------------------------------------


async def test_an_idle_connection_the_server_dropped_is_not_reused() -> None:
    def answer_then_drop(conn: socket.socket, server: RawServer) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        time.sleep(0.1)  # then close the kept-alive connection, as a server's idle timeout does

    with RawServer(answer_then_drop) as server:
        async with client(server) as http:
            first = await http.get("/")
            await asyncio.sleep(0.4)
            second = await http.get("/")
    assert (first.text, second.text) == ("ok", "ok")
    assert server.connections == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    port = socket.create_server(("127.0.0.1", 0))
    address = port.getsockname()
    port.close()
    async with AsyncStreamingHTTPClient(base_url=f"http://127.0.0.1:{address[1]}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout() -> None:
    def silent(conn: socket.socket, server: RawServer) -> None:
        server.stopped.wait(30)  # accepts, reads nothing, answers nothing

    with RawServer(silent) as server:
        url = server.url.replace("http://", "https://")
        async with AsyncStreamingHTTPClient(base_url=url, timeout=httpx.Timeout(10.0, connect=0.3)) as http:
            with pytest.raises(httpx.ConnectTimeout):
                await http.get("/")


async def test_a_unix_socket_connection(tmp_path: Path) -> None:
    def answer(conn: socket.socket, server: RawServer) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nunix")

    with RawServer(answer, unix_path=tmp_path / "host.sock") as server:
        pool = httpcore.AsyncConnectionPool(uds=str(tmp_path / "host.sock"), network_backend=AsyncioBackend())
        async with pool:
            response = await pool.request("GET", f"{server.url}/")
    assert (response.status, response.content) == (200, b"unix")


# -- other event loops ----------------------------------------------------------------------------------------


async def follow_one_run(base_url: str) -> list[str]:
    """Create a run, follow its events to the end (a request in the pool, a stream on its own connection)."""
    async with AsyncOpenwopClient(base_url, api_key=API_KEY) as aclient:
        run = await aclient.runs_create("conformance-noop")
        return [event.type async for event in aclient.runs_events(run.run_id)]


def test_the_client_works_on_uvloop() -> None:
    """uvloop (installed with Airflow and uvicorn[standard]) has its own transports and no happy-eyeballs option."""
    import uvloop  # a dev dependency everywhere but Windows, which the tests do not run on

    with DevHost(api_key=API_KEY) as host:
        events = uvloop.run(follow_one_run(host.base_url))
    assert events[-1] == "run.completed"


def test_under_trio_connections_go_through_httpcores_own_backend() -> None:
    import trio

    with DevHost(api_key=API_KEY) as host:
        events = trio.run(follow_one_run, host.base_url)
    assert events[-1] == "run.completed"
