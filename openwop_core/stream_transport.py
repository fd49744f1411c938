"""Event streams on connections of their own, so that a wait costs the same with 10 or 3,000 streams open.

A followed event stream holds one connection for the whole wait, and one client is shared by all the waits
of a process (an Airflow triggerer may hold thousands). In httpcore's connection pool every request, and
every response that ends, walks all pooled connections (``AsyncConnectionPool._assign_requests_to_connections``),
so with N open streams in the client's pool opening or ending a wait cost O(N) of CPU (~6 ms at 1,000).

Here each event-stream request (marked with the :data:`OWN_CONNECTION` request extension) is sent on a
transport of its own: a pool of one connection built like the client's (same SSL context object, so the
same CA bundle, client certificate and verification; the same proxy, HTTP versions and ``trust_env``),
closed as soon as the stream's response is closed (normal end, error, cancellation), and closed with the
client if it is still open then. Everything above the transport (base URL, default headers, auth, trace
headers, timeouts) is the shared client's, as for any request. Long-polls are marked too: they hold their
connection as long as a stream does.

Other requests use the client's pool, which then holds only short requests. On an event loop at most
:data:`POOLED_REQUESTS_IN_FLIGHT` of them are in the pool at once; the others wait their turn in an
``asyncio.Semaphore`` (first come, first served, O(1)) for at most the request's ``pool`` timeout, then fail
with ``httpx.PoolTimeout`` like any request that found no free connection. Without that bound, N triggers
reading their snapshots at once opened N pooled connections, and each request walked them all: setting up a
wait cost O(N) of CPU (a cap in httpcore itself would not help: it walks its queue of waiting requests too).

An async client's transports connect through asyncio's own transports (:mod:`openwop_core.asyncio_network`)
rather than anyio's, which cost a cancel scope and more per read.

The routing transport replaces the ones httpx builds itself (``_init_transport`` and, for proxies from
the environment, ``_init_proxy_transport``); a transport the caller passes in (``transport=``: tests,
``httpx.MockTransport``) is used as is, for streams too. These two hooks are httpx internals (tested here on
httpx 0.29); the tests check that streams do get connections of their own, so a change in httpx shows.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

import httpx

from .asyncio_network import AsyncioBackend

__all__ = ["OWN_CONNECTION", "AsyncStreamingHTTPClient", "StreamingHTTPClient"]

#: Request extensions that send a request on a connection of its own (the client's event streams).
_KEY = "openwop.own_connection"
OWN_CONNECTION: dict[str, Any] = {_KEY: True}
#: httpx 0.28+ (``httpx.create_ssl_context``); older versions keep every stream in the client's pool.
ROUTABLE = hasattr(httpx, "create_ssl_context")
#: A stream's own pool: one connection, never kept once the stream is closed.
_ONE = httpx.Limits(max_connections=1, max_keepalive_connections=0)
#: Requests an async client has in its shared pool at once, per event loop; also the idle connections the
#: pool keeps (httpx's default), so a burst reuses its connections. httpcore walks every pooled connection on
#: each request and each response end (probing an idle one's socket each time), so the pool stays small.
POOLED_REQUESTS_IN_FLIGHT = 20
#: Seconds an idle pooled connection is kept: under the 5 s after which Node's and uvicorn's servers (the
#: reference hosts) close an idle connection, so a request never races that close, and the extra connections
#: a burst leaves are dropped by the first request made more than 4 s after it.
KEEPALIVE_EXPIRY = 4.0


def _transport_options(client: Any, proxy: httpx.Proxy | None, kw: dict[str, Any]) -> dict[str, Any]:
    """What httpx would build a transport of ``client`` with (``kw``: its ``_init_transport`` keywords), with
    one SSL context per client, shared by its pool, its proxies' pools and every stream's transport."""
    context: ssl.SSLContext | None = client.__dict__.get("_openwop_ssl_context")
    if context is None:
        context = httpx.create_ssl_context(verify=kw["verify"], cert=kw.get("cert"), trust_env=kw["trust_env"])
        client._openwop_ssl_context = context
    return {"verify": context, "trust_env": kw["trust_env"], "http1": kw["http1"], "http2": kw["http2"], "proxy": proxy}


def _async_transport(limits: httpx.Limits, options: dict[str, Any]) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections are asyncio's own (:mod:`openwop_core.asyncio_network`), except
    through an ``https://`` proxy: TLS inside TLS needs ``loop.start_tls`` on a TLS transport, which Python
    3.10 lacks, so those keep httpcore's anyio backend."""
    transport = httpx.AsyncHTTPTransport(limits=limits, **options)
    proxy: httpx.Proxy | None = options.get("proxy")
    pool = getattr(transport, "_pool", None)
    if hasattr(pool, "_network_backend") and (proxy is None or proxy.url.scheme != "https"):
        pool._network_backend = AsyncioBackend()  # type: ignore[union-attr]
    return transport


class _AsyncOwned(httpx.AsyncByteStream):
    """A stream's body; closing it closes the stream's transport."""

    def __init__(self, body: httpx.AsyncByteStream, release: Callable[[], Any]) -> None:
        self._body = body
        self._release = release

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._body.__aiter__()  # no extra generator hop per chunk

    async def aclose(self) -> None:
        try:
            await self._body.aclose()
        finally:
            await self._release()


class _Owned(httpx.SyncByteStream):
    """A stream's body; closing it closes the stream's transport."""

    def __init__(self, body: httpx.SyncByteStream, release: Callable[[], Any]) -> None:
        self._body = body
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        return self._body.__iter__()

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            self._release()


class _AsyncRouter(httpx.AsyncBaseTransport):
    """The client's pool for ordinary requests; a fresh one-connection transport per marked request."""

    def __init__(self, make: Callable[[httpx.Limits], httpx.AsyncHTTPTransport], limits: httpx.Limits) -> None:
        self._make = make
        self._pool = make(limits)
        self._streams: set[httpx.AsyncHTTPTransport] = set()
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore, int] | None = None

    @property
    def open_streams(self) -> int:
        """How many stream transports are open (for tests and diagnostics)."""
        return len(self._streams)

    @property
    def pooled_in_flight(self) -> int:
        """How many requests hold a turn in the shared pool now (for tests and diagnostics)."""
        return self._slots[2] - self._slots[1]._value if self._slots else 0

    def _semaphore(self) -> asyncio.Semaphore | None:
        """This event loop's turns in the pool (a semaphore belongs to one loop); None outside asyncio."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another async library: no bound, as plain httpx
            return None
        slots = self._slots  # read once: the loop checked is the loop of the semaphore returned
        if slots is None or slots[0] is not loop:
            slots = self._slots = (loop, asyncio.Semaphore(POOLED_REQUESTS_IN_FLIGHT), POOLED_REQUESTS_IN_FLIGHT)
        return slots[1]

    async def _pooled(self, request: httpx.Request) -> httpx.Response:
        """``request`` through the shared pool once it has a turn, held until its response is closed."""
        slots = self._semaphore()
        if slots is None:
            return await self._pool.handle_async_request(request)
        if slots.locked():  # wait_for only when waiting: it costs a task per call
            wait = request.extensions.get("timeout", {}).get("pool")
            try:
                await asyncio.wait_for(slots.acquire(), wait)
            except asyncio.TimeoutError:
                raise httpx.PoolTimeout(
                    f"no turn in the connection pool within {wait} s ({POOLED_REQUESTS_IN_FLIGHT} requests in flight)",
                    request=request,
                ) from None
        else:
            await slots.acquire()
        held = True

        async def release() -> None:
            nonlocal held
            if held:  # once, however often the response is closed
                held = False
                slots.release()

        try:
            response = await self._pool.handle_async_request(request)
        except BaseException:
            await release()
            raise
        response.stream = _AsyncOwned(cast(httpx.AsyncByteStream, response.stream), release)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.extensions.get(_KEY):
            return await self._pooled(request)
        transport = self._make(_ONE)
        self._streams.add(transport)

        async def release() -> None:
            if transport in self._streams:
                self._streams.discard(transport)
                await transport.aclose()

        try:
            response = await transport.handle_async_request(request)
        except BaseException:
            await release()
            raise
        response.stream = _AsyncOwned(cast(httpx.AsyncByteStream, response.stream), release)
        return response

    async def aclose(self) -> None:
        streams, self._streams = list(self._streams), set()
        try:
            for transport in streams:
                await transport.aclose()
        finally:
            await self._pool.aclose()


class _Router(httpx.BaseTransport):
    """The client's pool for ordinary requests; a fresh one-connection transport per marked request."""

    def __init__(self, make: Callable[[httpx.Limits], httpx.HTTPTransport], limits: httpx.Limits) -> None:
        self._make = make
        self._pool = make(limits)
        self._streams: set[httpx.HTTPTransport] = set()

    @property
    def open_streams(self) -> int:
        """How many stream transports are open (for tests and diagnostics)."""
        return len(self._streams)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.extensions.get(_KEY):
            return self._pool.handle_request(request)
        transport = self._make(_ONE)
        self._streams.add(transport)

        def release() -> None:
            if transport in self._streams:
                self._streams.discard(transport)
                transport.close()

        try:
            response = transport.handle_request(request)
        except BaseException:
            release()
            raise
        response.stream = _Owned(cast(httpx.SyncByteStream, response.stream), release)
        return response

    def close(self) -> None:
        streams, self._streams = list(self._streams), set()
        try:
            for transport in streams:
                transport.close()
        finally:
            self._pool.close()


class AsyncStreamingHTTPClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` whose own transports (direct and one per proxy) route event streams apart."""

    def _init_transport(self, **kw: Any) -> httpx.AsyncBaseTransport:  # type: ignore[override]
        if kw.get("transport") is not None or not ROUTABLE:
            return super()._init_transport(**kw)  # a transport passed in carries everything, streams too
        return self._init_proxy_transport(None, **kw)

    def _init_proxy_transport(self, proxy: httpx.Proxy | None, **kw: Any) -> httpx.AsyncBaseTransport:  # type: ignore[override]
        if not ROUTABLE:
            return super()._init_proxy_transport(proxy, **kw)  # type: ignore[arg-type]
        options = _transport_options(self, proxy, kw)
        return _AsyncRouter(lambda limits: _async_transport(limits, options), kw["limits"])


class StreamingHTTPClient(httpx.Client):
    """``httpx.Client`` whose own transports (direct and one per proxy) route event streams apart."""

    def _init_transport(self, **kw: Any) -> httpx.BaseTransport:  # type: ignore[override]
        if kw.get("transport") is not None or not ROUTABLE:
            return super()._init_transport(**kw)  # a transport passed in carries everything, streams too
        return self._init_proxy_transport(None, **kw)

    def _init_proxy_transport(self, proxy: httpx.Proxy | None, **kw: Any) -> httpx.BaseTransport:  # type: ignore[override]
        if not ROUTABLE:
            return super()._init_proxy_transport(proxy, **kw)  # type: ignore[arg-type]
        options = _transport_options(self, proxy, kw)
        return _Router(lambda limits: httpx.HTTPTransport(limits=limits, **options), kw["limits"])
