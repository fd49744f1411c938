"""An httpcore network backend written on asyncio's own transports and protocols, for the async client.

httpcore's default backend goes through anyio: each read enters an anyio cancel scope (``fail_after``),
asks sniffio which library runs, and goes through anyio's socket stream, which pauses and resumes the
transport around every read. A followed event stream reads thousands of times, so that machinery was about
a sixth of the async client's CPU per event (issue 15). Here a read returns data already received without
suspending, and otherwise awaits one future whose timeout is a single ``loop.call_later`` handle.

Everything else is asyncio's: connecting (DNS, happy eyeballs, ``TCP_NODELAY``), TLS (``loop.start_tls``:
certificate verification, SNI and ALPN come from the SSL context httpcore passes), Unix sockets and flow
control both ways. Outside asyncio (trio), every call goes to httpcore's own backend. Errors and timeouts
are httpcore's exception types, as from its own backends, so httpx maps them the same way.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpcore
from httpcore import AsyncNetworkBackend, AsyncNetworkStream
from httpcore._backends.base import SOCKET_OPTION  # the option type of httpcore's backend interface
from httpcore._utils import is_socket_readable  # the probe httpcore's own backends use

__all__ = ["AsyncioBackend", "AsyncioStream"]

#: Bytes received but not yet read past which the socket stops being read, and at or below which it resumes
#: (asyncio receives up to 256 KiB at a time): a slow reader leaves the rest in the kernel, and the server waits.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
#: Seconds between the IPv6 and IPv4 attempts when a name has both (anyio's and RFC 8305's figure).
HAPPY_EYEBALLS_DELAY = 0.25


class _Protocol(asyncio.Protocol):
    """Buffers what the connection receives and wakes the one reader (httpcore reads a stream from one task)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.offset = 0  # bytes of chunks[0] already read
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None  # why the connection was lost, if it was not a clean close
        self.closed = False
        self.reading_paused = False
        self.waiter: asyncio.Future[bool] | None = None  # the reader's, while it waits for data
        self.drain: asyncio.Future[bool] | None = None  # a writer's, while the transport's buffer is full
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake(self.waiter)

    def eof_received(self) -> bool:
        self.eof = True
        self._wake(self.waiter)
        return False  # close our side too (TLS transports ignore the answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.eof = True
        self.error = exc
        self._wake(self.waiter)
        self._wake(self.drain)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake(self.drain)

    async def wait(self, *, drain: bool, timeout: float | None) -> bool:
        """Until woken (by data or a close; by room to write too when ``drain``); False after ``timeout`` s."""
        future: asyncio.Future[bool] = self.loop.create_future()
        if drain:
            self.drain = future
        else:
            self.waiter = future
        handle = None if timeout is None else self.loop.call_later(timeout, self._wake, future, False)
        try:
            return await future
        finally:
            if handle is not None:
                handle.cancel()
            if drain:
                self.drain = None
            else:
                self.waiter = None

    @staticmethod
    def _wake(future: asyncio.Future[bool] | None, woken: bool = True) -> None:
        if future is not None and not future.done():
            future.set_result(woken)

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what was received (there is some). asyncio receives up to 256 KiB at once and
        httpcore reads 64 KiB: the rest of a chunk stays where it is (an offset), not copied again per read."""
        chunk = self.chunks[0]
        start = self.offset
        end = start + max_bytes
        if end < len(chunk):
            self.offset = end
            piece = chunk[start:end]
        else:
            self.chunks.popleft()
            self.offset = 0
            piece = chunk[start:] if start else chunk
        self.buffered -= len(piece)
        if self.reading_paused and self.buffered <= LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return piece


class AsyncioStream(AsyncNetworkStream):
    """One connection (plain or TLS) as httpcore reads and writes it."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        # data already here: no suspension
        if not protocol.chunks and not protocol.eof and not await protocol.wait(drain=False, timeout=timeout):
            raise httpcore.ReadTimeout(f"no data within {timeout} s")
        if protocol.chunks:
            return protocol.take(max_bytes)
        if protocol.error is not None:  # a reset is not the end of a close-delimited body
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.closed or self._transport.is_closing():
            raise httpcore.WriteError(str(protocol.error or "the connection is closed"))
        self._transport.write(buffer)
        while protocol.writing_paused and not protocol.closed:
            if not await protocol.wait(drain=True, timeout=timeout):
                raise httpcore.WriteTimeout(f"could not send within {timeout} s")
        if protocol.closed and protocol.error is not None:
            raise httpcore.WriteError(str(protocol.error))

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> AsyncNetworkStream:
        loop = self._protocol.loop
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    self._transport,
                    self._protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                    # a little past ``timeout``, so that running out of it is a timeout (asyncio's own limit
                    # aborts the connection, which would read as a connection error); None: asyncio's 60 s
                    ssl_handshake_timeout=None if timeout is None else timeout + 1.0,
                ),
                timeout,
            )
        except (asyncio.TimeoutError, TimeoutError):
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout} s") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # the connection was closed during the handshake
            raise httpcore.ConnectError("the connection was closed during the TLS handshake")
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":  # on an idle connection: the server sent something or closed it
            protocol = self._protocol
            return bool(protocol.chunks) or protocol.eof or is_socket_readable(self._transport.get_extra_info("socket"))
        return None


class AsyncioBackend(AsyncNetworkBackend):
    """Connections as :class:`AsyncioStream` on asyncio; httpcore's own backend under any other library."""

    def __init__(self) -> None:
        self._other: AsyncNetworkBackend | None = None

    def _fallback(self) -> AsyncNetworkBackend | None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._other is None:
                from httpcore._backends.auto import AutoBackend  # trio and the like: httpcore's own choice

                self._other = AutoBackend()
            return self._other
        return None

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        other = self._fallback()
        if other is not None:
            return await other.connect_tcp(host, port, timeout, local_address, socket_options)
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        factory = lambda: _Protocol(loop)  # noqa: E731
        if isinstance(loop, asyncio.BaseEventLoop):  # IPv6 and IPv4 addresses in turn (RFC 8305)
            connect = loop.create_connection(
                factory, host, port, local_addr=local, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY
            )
        else:  # uvloop has no such option
            connect = loop.create_connection(factory, host, port, local_addr=local)
        return await _connected(connect, timeout, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SOCKET_OPTION] | None = None
    ) -> AsyncNetworkStream:
        other = self._fallback()
        if other is not None:
            return await other.connect_unix_socket(path, timeout, socket_options)
        loop = asyncio.get_running_loop()
        return await _connected(loop.create_unix_connection(lambda: _Protocol(loop), path), timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        other = self._fallback()
        if other is not None:
            await other.sleep(seconds)
        else:
            await asyncio.sleep(seconds)


async def _connected(
    connect: Any, timeout: float | None, socket_options: Iterable[SOCKET_OPTION] | None
) -> AsyncioStream:
    """The stream once ``connect`` (a ``loop.create_*connection`` coroutine) is done within ``timeout``."""
    try:
        transport, protocol = await asyncio.wait_for(connect, timeout)
    except (asyncio.TimeoutError, TimeoutError):
        raise httpcore.ConnectTimeout(f"not connected within {timeout} s") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        for option in socket_options or ():
            sock.setsockopt(*option)
    return AsyncioStream(transport, protocol)
