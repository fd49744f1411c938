"""``DevHost``: run the local OpenWOP host in a background thread for tests, examples and demos.

The host gets its own event loop thread; uvicorn serves the app on 127.0.0.1 (a free port by
default). ``stop()``/``start()`` take the HTTP server down and bring it back on the same port
while runs keep executing, which simulates an outage. Inspection and fault-control methods run on
the host's loop, so they are safe to call from the test thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

from .engine.events import TERMINAL_STATUSES
from .engine.runs import Run
from .faults import Faults
from .http.app import create_app
from .http.state import HostState

T = TypeVar("T")


class _Server(uvicorn.Server):
    """A uvicorn server that ends open SSE streams before its graceful shutdown waits for them."""

    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown
        self._exit_requested: asyncio.Event | None = None

    def request_exit(self) -> None:
        """Ask the server to stop; wakes its main loop at once (call on the server's loop)."""
        self.should_exit = True
        if self._exit_requested is not None:
            self._exit_requested.set()

    async def main_loop(self) -> None:
        # uvicorn polls ``should_exit`` every 100 ms; waiting on an event makes stop() prompt.
        self._exit_requested = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._before_shutdown()
        await super().shutdown(sockets=sockets)


def make_server(
    app: Any, state: HostState, *, log_level: str, abrupt: Callable[[], bool], graceful_timeout: int = 1
) -> _Server:
    """A uvicorn server tuned for many concurrent streams (no concurrency cap, deep backlog, h11)."""
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        limit_concurrency=None,
        backlog=2048,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=graceful_timeout,
        http="h11",
        ws="none",
    )
    return _Server(config, lambda: state.engine.close_streams(abrupt=abrupt()))


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 = a free port), ready for uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class DevHost:
    """A running local OpenWOP v1 host; use as ``with DevHost() as host: ... host.base_url``.

    ``api_key`` defaults to a random ``devhost-...`` value. ``workflows_dir`` adds ``*.json``
    workflows; ``faults`` sets host-wide fault switches; ``run_faults`` maps a run id or a
    workflow id to fault overrides for those runs; ``api_keys`` adds scope-restricted keys;
    ``allow_insecure_webhooks`` (default on) lets webhooks target http://127.0.0.1 receivers;
    ``run_pages`` (default ``"public"``) lets a browser read a run's HTML page without the API key.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        workflows_dir: str | Path | None = None,
        keepalive_interval: float = 15.0,
        faults: Faults | None = None,
        token_ttl_seconds: float = 1800.0,
        port: int = 0,
        host: str = "127.0.0.1",
        api_keys: dict[str, list[str]] | None = None,
        allow_insecure_webhooks: bool = True,
        run_pages: str = "public",
        run_faults: dict[str, dict[str, Any]] | None = None,
        log_level: str = "warning",
        startup_timeout: float = 10.0,
    ) -> None:
        self.api_key = api_key or f"devhost-{secrets.token_urlsafe(18)}"
        self.app = create_app(
            self.api_key,
            api_keys=api_keys,
            workflows_dir=workflows_dir,
            keepalive_interval=keepalive_interval,
            faults=faults,
            token_ttl_seconds=token_ttl_seconds,
            allow_insecure_webhooks=allow_insecure_webhooks,
            run_pages=run_pages,
        )
        self._state: HostState = self.app.state.devhost
        for key, overrides in (run_faults or {}).items():
            self._state.fault_state.set_run(key, overrides)
        self._host = host
        self._port = port
        self._log_level = log_level
        self._startup_timeout = startup_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._serving: concurrent.futures.Future[None] | None = None
        self._abrupt = False
        self._closed = False

    # ── lifecycle ─────────────────────────────────────────────────────────────

    @property
    def port(self) -> int:
        """The TCP port (known once started; kept across ``stop()``/``start()``)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def running(self) -> bool:
        """Whether the HTTP server is currently accepting connections."""
        return self._server is not None and self._serving is not None and not self._serving.done()

    def __enter__(self) -> DevHost:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> DevHost:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=run, name=f"openwop-devhost-{id(self):x}", daemon=True)
            self._thread.start()
            ready.wait(self._startup_timeout)
            self._loop = loop
        return self._loop

    def start(self) -> None:
        """Start serving (again); after ``stop()`` the same port is reused and all state is kept."""
        if self._closed:
            raise RuntimeError("this DevHost was closed; create a new one")
        if self.running:
            return
        loop = self._ensure_loop()
        sock = bind_socket(self._host, self._port)
        self._port = sock.getsockname()[1]
        self._abrupt = False
        self._state.engine.reopen_streams()
        server = make_server(self.app, self._state, log_level=self._log_level, abrupt=lambda: self._abrupt)
        self._server = server
        self._serving = asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), loop)
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if self._serving.done():
                error = self._serving.exception()
                raise RuntimeError(f"the devhost server failed to start on {self.base_url}: {error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the devhost server did not start within {self._startup_timeout} s")
            time.sleep(0.002)

    def stop(self) -> None:
        """Stop accepting connections and cut open streams abruptly (an outage); runs keep going."""
        self._shutdown_server(abrupt=True)

    def _shutdown_server(self, abrupt: bool) -> None:
        server, serving = self._server, self._serving
        if server is None or serving is None:
            return
        self._abrupt = abrupt
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(server.request_exit)
        else:
            server.should_exit = True
        try:
            serving.result(timeout=10)
        except concurrent.futures.TimeoutError:
            server.force_exit = True
            serving.result(timeout=5)
        self._server = None
        self._serving = None

    def close(self) -> None:
        """Shut down: close streams, cancel active runs, stop the loop thread (about a second)."""
        if self._closed:
            return
        self._closed = True
        self._shutdown_server(abrupt=False)
        loop = self._loop
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._state.shutdown(), loop).result(timeout=10)
        asyncio.run_coroutine_threadsafe(_cancel_remaining_tasks(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()
        self._loop = None

    # ── thread-safe access to the host's state ───────────────────────────────

    def _call(self, fn: Callable[[], T]) -> T:
        loop = self._loop
        if (
            loop is None
            or not loop.is_running()
            or (self._thread is not None and threading.current_thread() is self._thread)
        ):
            return fn()

        async def runner() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(runner(), loop).result(timeout=10)

    def _run(self, run_id: str) -> Run:
        run = self._state.engine.get(run_id)
        if run is None:
            raise KeyError(f"no run {run_id!r} on this devhost")
        return run

    @property
    def state(self) -> HostState:
        """The host's internal state (advanced use; mutate it only through ``_call``-style helpers)."""
        return self._state

    # ── inspection ────────────────────────────────────────────────────────────

    def runs_created(self, workflow_id: str | None = None) -> int:
        """How many runs exist (forks included), optionally only those of ``workflow_id``."""
        return self._call(
            lambda: sum(1 for run in self._state.engine.runs.values() if workflow_id in (None, run.workflow_id))
        )

    def run_ids(self) -> list[str]:
        """Ids of all runs, oldest first."""
        return self._call(lambda: list(self._state.engine.runs))

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The current RunSnapshot of ``run_id`` (``KeyError`` if unknown)."""
        return self._call(lambda: json.loads(json.dumps(self._state.engine.snapshot(self._run(run_id)))))

    def events(self, run_id: str) -> list[dict[str, Any]]:
        """The canonical event log of ``run_id`` (copies)."""
        return self._call(lambda: [json.loads(event.json) for event in self._run(run_id).events])

    def open_interrupts(self, run_id: str) -> list[dict[str, Any]]:
        """Open interrupts of ``run_id`` with ``token``, ``expiresAt`` and ``resolveUrl``."""
        return self._call(
            lambda: [interrupt.describe(self.base_url) for interrupt in self._run(run_id).open_interrupts.values()]
        )

    def wait_for_status(
        self, run_id: str, statuses: set[str] | frozenset[str] | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Block until the run's status is in ``statuses`` (default: terminal); return the snapshot."""
        wanted = frozenset(statuses) if statuses is not None else TERMINAL_STATUSES
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.get_run(run_id)
            if snapshot["status"] in wanted:
                return snapshot
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {run_id} stayed {snapshot['status']!r} for {timeout} s (wanted one of {sorted(wanted)})"
                )
            time.sleep(0.01)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Requests received so far (method, path, query, headers without credentials, status)."""
        return [dict(entry) for entry in self._state.request_log.snapshot()]

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._state.request_log.clear()

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Webhook delivery attempts: ``{webhookId, runId, sequence, eventType, status, error}``."""
        return self._call(lambda: list(self._state.webhooks.deliveries))

    # ── faults ────────────────────────────────────────────────────────────────

    @property
    def faults(self) -> Faults:
        """The live host-wide faults (``fail_requests[].count`` shows the remaining budget)."""
        return self._state.fault_state.faults

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the host faults with ``faults``, or change individual switches: ``set_faults(latency_ms=50)``."""
        if faults is not None and changes:
            raise TypeError("pass either a Faults object or individual switches, not both")

        def apply() -> Faults:
            new = copy.deepcopy(faults) if faults is not None else self._state.fault_state.faults.overlay(changes)
            self._state.fault_state.set(new)
            return self._state.fault_state.faults

        return self._call(apply)

    def set_run_faults(self, run_or_workflow_id: str, overrides: dict[str, Any] | None = None, **changes: Any) -> None:
        """Fault overrides for one run id or one workflow id (all its runs); no arguments clears them."""
        merged = {**(overrides or {}), **changes}
        self._call(lambda: self._state.fault_state.set_run(run_or_workflow_id, merged or None))


async def _cancel_remaining_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=2.0)
