"""Server-Sent Events for ``GET /v1/runs/{runId}/events``: parameters, framing, resume and faults.

Frames are ``id: <sequence>`` / ``event: <type>`` / ``data: <RunEventDoc JSON>`` plus a blank line;
``:keepalive`` comments keep idle streams alive; the stream closes after the run's terminal
event. Streams read the run's event list directly and sleep on the run's shared "changed" future,
so a stream costs nothing while idle and catches up in chunks when it falls behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..engine.events import STREAM_MODES, TERMINAL_EVENT_TYPES, admits, now_iso, to_legacy
from ..engine.execution import Engine
from ..engine.runs import Event, Run
from ..errors import ApiError, dumps
from ..faults import Faults, FaultState

MAX_BUFFER_MS = 5000
_CHUNK = 500  # events examined per send; bounds latency for other streams during a big backlog
_FORCED_FLUSH = TERMINAL_EVENT_TYPES | {"node.suspended"}

#: Set when a stream is closed on purpose without finishing the HTTP response (fault injection or
#: a simulated outage) so the "ASGI callable returned without completing response" error that
#: uvicorn logs for it can be dropped. It is a context variable, so only that request is affected.
_DELIBERATE_DROP: contextvars.ContextVar[bool] = contextvars.ContextVar("openwop_devhost_sse_drop", default=False)


class _DeliberateDropFilter(logging.Filter):
    """Hide uvicorn's complaint about an unfinished response when the host dropped it on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_DELIBERATE_DROP.get() and "without completing response" in record.getMessage())


_filter_installed = False


def install_log_filter() -> None:
    """Attach :class:`_DeliberateDropFilter` to uvicorn's error logger (once per process)."""
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_DeliberateDropFilter())
        _filter_installed = True


@dataclass(frozen=True)
class StreamParams:
    """Validated stream request: modes, batching window and resume cursor."""

    modes: tuple[str, ...]
    buffer_ms: int
    cursor: int
    resumed: bool


def parse_stream_modes(raw: str | None) -> tuple[str, ...]:
    """Parse ``streamMode`` (one mode or a comma list); ``400 unsupported_stream_mode`` otherwise."""
    if raw is None or raw == "":
        return ("updates",)
    modes = tuple(part.strip() for part in raw.split(","))
    for mode in modes:
        if mode not in STREAM_MODES:
            raise ApiError(
                400,
                "unsupported_stream_mode",
                f"streamMode {mode!r} is not supported; use one of {list(STREAM_MODES)} (or a comma list).",
                {"supported": list(STREAM_MODES), "requested": raw},
            )
    if "values" in modes and len(modes) > 1:
        raise ApiError(
            400,
            "unsupported_stream_mode",
            "streamMode 'values' cannot be combined with other modes.",
            {"supported": list(STREAM_MODES), "requested": raw},
        )
    return tuple(dict.fromkeys(modes))


def parse_buffer_ms(raw: str | None) -> int:
    """Parse ``bufferMs``: an integer >= 0; values above 5000 are clamped (stream-modes.md)."""
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400,
            "validation_error",
            f"bufferMs must be an integer 0..{MAX_BUFFER_MS}, got {raw!r}.",
            {"param": "bufferMs"},
        ) from None
    if value < 0:
        raise ApiError(400, "validation_error", f"bufferMs must be >= 0, got {value}.", {"param": "bufferMs", "min": 0})
    return min(value, MAX_BUFFER_MS)


def parse_cursor(raw: str | None, name: str) -> int | None:
    """Parse a sequence cursor (``Last-Event-ID``, ``lastSequence``, ``since``); ``-1`` means "from the start"."""
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise ApiError(
            400,
            "validation_error",
            f"{name} must be an integer event sequence, got {raw!r}.",
            {"param": name},
        ) from None
    if value < -1:
        raise ApiError(400, "validation_error", f"{name} must be >= -1, got {value}.", {"param": name, "min": -1})
    return value


def event_data(event: Event, legacy: bool) -> str:
    """The JSON of one event, canonical or with legacy ``seq``/``data`` field names."""
    return dumps(to_legacy(event.doc)) if legacy else event.json


def _frame(event_id: int | None, name: str, data: str) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {data}\n\n".encode()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class EventStreamResponse(Response):
    """The SSE response for one subscriber of one run."""

    media_type = "text/event-stream"

    def __init__(
        self,
        engine: Engine,
        run: Run,
        params: StreamParams,
        faults: Faults,
        fault_state: FaultState,
        keepalive_interval: float,
    ) -> None:
        super().__init__(
            content=b"",
            status_code=200,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            media_type="text/event-stream; charset=utf-8",
        )
        self.engine = engine
        self.run = run
        self.params = params
        self.faults = faults
        self.fault_state = fault_state
        self.keepalive_interval = keepalive_interval
        self._frames_sent = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: send the headers, pump frames, then end cleanly or (faults) abruptly."""
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            finished = await self._pump(send, watcher)
        finally:
            watcher.cancel()
        if finished:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            _DELIBERATE_DROP.set(True)  # end without completing the body: an abrupt close

    async def _write(self, send: Send, chunks: list[bytes]) -> None:
        if chunks:
            await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
            chunks.clear()

    def _count_frame_and_check_drop(self) -> bool:
        """Count one event frame; return ``True`` if a drop fault says to cut the connection now."""
        self._frames_sent += 1
        limit = self.faults.drop_sse_after_events
        if limit is not None and self._frames_sent >= limit:
            return True
        return self.fault_state.roll_drop(float(self.faults.drop_sse_probability))

    def _event_name(self, event: Event) -> str | None:
        modes = self.params.modes
        for mode in modes:
            if admits(mode, event.type):
                return event.type if len(modes) == 1 else mode
        return None

    def _malformed_frames(self) -> list[bytes]:
        unknown = dumps(
            {
                "type": "devhost.unknown-event",
                "runId": self.run.run_id,
                "timestamp": now_iso(),
                "payload": {"injected": True},
            }
        )
        return [b"event: node.completed\ndata: {this is not json\n\n", _frame(None, "devhost.unknown-event", unknown)]

    async def _pump(self, send: Send, watcher: asyncio.Future[None]) -> bool:
        """Send frames until the run ends (``True``), the client goes, or a fault drops the stream (``False``)."""
        run, params, faults = self.run, self.params, self.faults
        legacy = faults.legacy_event_fields
        values_mode = params.modes == ("values",)
        batching = params.buffer_ms > 0 and not values_mode
        cursor = params.cursor
        out: list[bytes] = []
        batch: list[Event] = []
        batch_started = 0.0
        injected = not faults.malformed_sse_frame
        if faults.drop_sse_after_events == 0:
            return False
        if params.resumed and faults.duplicate_after_reconnect and 0 <= cursor <= run.last_sequence:
            again = run.events[cursor]
            name = self._event_name(again)
            if name is not None and not values_mode:
                out.append(_frame(again.sequence, name, event_data(again, legacy)))
        if values_mode and params.resumed:
            cursor = run.last_sequence
            out.append(_frame(cursor, "state.snapshot", dumps(self.engine.snapshot(run))))
            if self._count_frame_and_check_drop() and not run.terminal:
                await self._write(send, out)
                return False
            if run.terminal:
                await self._write(send, out)
                return True
        last_write = time.monotonic()
        while True:
            if self.engine.streams_closing:
                await self._write(send, out)
                return not self.engine.abrupt_close
            if watcher.done():
                return True
            end = min(run.last_sequence, cursor + _CHUNK)
            for sequence in range(cursor + 1, end + 1):
                event = run.events[sequence]
                cursor = sequence
                terminal = event.type in TERMINAL_EVENT_TYPES
                if values_mode:
                    if event.snapshot_json is None:
                        continue
                    out.append(_frame(sequence, "state.snapshot", event.snapshot_json))
                elif batching:
                    if self._event_name(event) is not None:
                        if not batch:
                            batch_started = time.monotonic()
                        batch.append(event)
                    if not (event.type in _FORCED_FLUSH and batch):
                        if terminal:
                            await self._write(send, out)
                            return True
                        continue
                    out.append(self._batch_frame(batch, legacy))
                    batch = []
                else:
                    name = self._event_name(event)
                    if name is None:
                        if terminal:
                            await self._write(send, out)
                            return True
                        continue
                    out.append(_frame(sequence, name, event_data(event, legacy)))
                if not injected:
                    out.extend(self._malformed_frames())
                    injected = True
                if terminal:
                    await self._write(send, out)
                    return True
                if self._count_frame_and_check_drop():
                    await self._write(send, out)
                    return False
            if batch and time.monotonic() - batch_started >= params.buffer_ms / 1000.0:
                out.append(self._batch_frame(batch, legacy))
                batch = []
                if self._count_frame_and_check_drop():
                    await self._write(send, out)
                    return False
            if out:
                await self._write(send, out)
                last_write = time.monotonic()
            if cursor < run.last_sequence:
                await asyncio.sleep(0)  # let other streams and runs progress during a long backlog
                continue
            if run.terminal:  # resumed at or past the terminal event: nothing more will come
                await self._write(send, out)
                return True
            timeout: float | None = None
            if faults.keepalive:
                timeout = max(0.0, self.keepalive_interval - (time.monotonic() - last_write))
            if batch:
                remaining = params.buffer_ms / 1000.0 - (time.monotonic() - batch_started)
                timeout = max(0.0, remaining) if timeout is None else min(timeout, max(0.0, remaining))
            changed = run.changed()
            done, _ = await asyncio.wait({changed, watcher}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done and faults.keepalive and time.monotonic() - last_write >= self.keepalive_interval:
                await send({"type": "http.response.body", "body": b":keepalive\n\n", "more_body": True})
                last_write = time.monotonic()

    def _batch_frame(self, batch: list[Event], legacy: bool) -> bytes:
        data = "[" + ",".join(event_data(event, legacy) for event in batch) + "]"
        return _frame(batch[-1].sequence, "batch", data)


def poll_body(run: Run, cursor: int, legacy: bool, limit: int) -> dict[str, Any]:
    """The poll response (union shape): events after ``cursor`` plus completion/status fields."""
    start = max(cursor + 1, 0)
    selected = run.events[start : start + limit]
    events = [to_legacy(event.doc) if legacy else event.doc for event in selected]
    last_returned = selected[-1].sequence if selected else min(max(cursor, -1), run.last_sequence)
    more_after = last_returned < run.last_sequence
    return {
        "runId": run.run_id,
        "events": events,
        "isComplete": run.terminal and not more_after,
        "lastEventSeq": last_returned,
        "runStatus": run.status,
        "isTerminal": run.terminal,
    }
