"""The event-stream state machine, free of I/O: what to request next, what a frame means, when to
reconnect and when to fall back to polling.

The sync and async clients feed it SSE frames (decoded by ``sse.SSEDecoder``) or poll pages and do what it says.
It guarantees every event of a run is handed out exactly once and in order: the cursor is the highest
sequence delivered, duplicates (``sequence <= cursor``) are dropped whatever the host resends, batches
are unpacked, comments and non-JSON frames are skipped, and the terminal event ends the stream.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from . import operations as ops
from .endpoints import Call
from .errors import ApiError, OpenwopError, ResponseFormatError, TransportError
from .models import TERMINAL_EVENT_TYPES, EventPage, RunEvent, RunStatus
from .retry import RetryPolicy
from .sse import CanonicalFrames, ServerSentEvent
from .tracing import TraceContext, current_trace

log = logging.getLogger("openwop_core.events")

#: Statuses that mean "this host has no SSE here" rather than "this run does not exist".
_SSE_UNAVAILABLE_STATUSES = frozenset({404, 405, 406, 415, 501})
#: A connection that closes this many times in a row without a frame sends us to the poll endpoint.
_EMPTY_STREAMS_BEFORE_POLL = 2
#: An empty page from a host that does not long-poll: wait this long before asking again.
_EMPTY_POLL_DELAY = 1.0


class StreamIdleError(TransportError):
    """No byte arrived within the idle timeout: the stream is silent (normal while a run waits on a
    human, and real hosts send no keepalives). The consumer reconnects; it is not a failure."""


class Idle:
    """Marker a client's event loop yields when it reconnected a silent stream (a waiter then re-reads
    the snapshot: some hosts show a human wait only in the run's status)."""


IDLE = Idle()


@dataclass(frozen=True)
class Stalled:
    """Marker a client's event loop yields while the stream cannot be (re)opened: right after a failed
    connection (``fresh``) and then every ``stall_check`` seconds of the reconnect backoff. A waiter reads
    the run's snapshot meanwhile, so a finished run is noticed whatever the stream does."""

    fresh: bool


STALLED = Stalled(fresh=True)
STALLED_TICK = Stalled(fresh=False)


def past(deadline: float | None) -> bool:
    """True once the monotonic ``deadline`` has passed (never without one)."""
    return deadline is not None and time.monotonic() >= deadline


def pauses(delay: float, deadline: float | None, every: float | None) -> Iterator[float]:
    """The sleeps that make up a ``delay`` (cut at ``deadline``, monotonic): one, or slices of at most
    ``every`` seconds so that the caller can look elsewhere between them."""
    wake = time.monotonic() + delay
    if deadline is not None:
        wake = min(wake, deadline)
    while (left := wake - time.monotonic()) > 0:
        yield left if every is None else min(left, every)


@dataclass(frozen=True)
class Reconnect:
    """What to do after a connection ended or failed: wait ``delay`` seconds, then reconnect (over SSE,
    or over the poll endpoint when ``use_poll``)."""

    delay: float
    use_poll: bool
    idle: bool = False


class EventStreamState:
    """Cursor, de-duplication and reconnect policy for one run's event stream."""

    def __init__(
        self,
        run_id: str,
        *,
        last_event_id: str | int | None = None,
        stream_mode: str | Sequence[str] | None = None,
        buffer_ms: int | None = None,
        policy: RetryPolicy | None = None,
        reconnect: bool = True,
        poll_fallback: bool = True,
        poll_timeout: int = 30,
        use_poll: bool = False,
    ) -> None:
        self.run_id = run_id
        self.stream_mode = ops.check_stream_mode(stream_mode)
        self.buffer_ms = buffer_ms
        self.policy = policy or RetryPolicy()
        self.reconnect = reconnect
        self.poll_fallback = poll_fallback
        self.poll_timeout = poll_timeout
        self.use_poll = use_poll
        self.last_event_id: str | None = None if last_event_id is None else str(last_event_id)
        self.cursor: int | None = _as_int(self.last_event_id)
        self.done = False
        self.retry_ms: int | None = None
        self.failures = 0
        self.unanswered = 0
        #: Monotonic time before which the events endpoint is not asked again (the reconnect delay, which never
        #: undercuts a ``Retry-After``), for reads of it outside the stream loop (a waiter's catch-up).
        self.not_before = 0.0
        #: Until when (monotonic) the host asked for no request to the events endpoint (its ``Retry-After``).
        self.host_asked_until = 0.0
        self.empty_streams = 0
        self.frames = 0
        self.delivered = 0
        #: Every (re)connection and poll of this stream is sent in the trace it was opened in.
        self.trace = current_trace() or TraceContext.new()

    # -- requests -----------------------------------------------------------------------------------

    def sse_call(self, read_timeout: float | None) -> Call[None]:
        """The next SSE request, resuming after the last event id received."""
        self.frames = 0
        call = ops.runs_events(
            self.run_id,
            last_event_id=self.last_event_id,
            stream_mode=self.stream_mode,
            buffer_ms=self.buffer_ms,
            read_timeout=read_timeout,
        )
        call.trace = self.trace
        return call

    def poll_call(self, timeout_seconds: int | None = None) -> Call[EventPage]:
        """The next long-poll request after the cursor."""
        wait = self.poll_timeout if timeout_seconds is None else timeout_seconds
        call = ops.runs_poll_events(self.run_id, last_sequence=self.cursor, timeout_seconds=max(1, wait))
        call.trace = self.trace
        return call

    # -- input --------------------------------------------------------------------------------------

    def feed(self, sse: ServerSentEvent) -> list[RunEvent]:
        """Events carried by one SSE frame that were not delivered before (usually zero or one)."""
        self.frames += 1
        if sse.retry is not None and sse.retry >= 0:
            self.retry_ms = sse.retry
        if not sse.data:
            return []
        if sse.data[0] == "{":
            try:  # the hot path: a canonical single event, validated straight from its JSON text
                event = RunEvent.from_json(sse.data)
            except ValidationError:
                pass  # legacy or partial shapes: the tolerant path below
            else:
                if sse.id:
                    self.last_event_id = sse.id
                return self._accept([event])
        try:
            document = json.loads(sse.data)
        except ValueError:
            log.debug("run %s: skipped a frame whose data is not JSON (%d bytes)", self.run_id, len(sse.data))
            return []
        batch = isinstance(document, list)
        items = document if batch else [document]
        fresh = self._accept([self._frame_item(item, sse, batch) for item in items])
        if sse.id and not batch:
            self.last_event_id = sse.id
        elif self.cursor is not None:
            self.last_event_id = str(self.cursor)
        return fresh

    def feed_frames(self, frames: Iterable[ServerSentEvent] | CanonicalFrames) -> list[RunEvent]:
        """The new events of a chunk's frames, in order, up to the terminal event (then :attr:`done`). The
        clients hand events on per chunk, not per frame: one generator hop per chunk instead of per event."""
        if isinstance(frames, CanonicalFrames):
            return self._feed_canonical(frames)
        events: list[RunEvent] = []
        for sse in frames:
            events += self.feed(sse)
            if self.done:
                break
        return events

    def _feed_canonical(self, frames: CanonicalFrames) -> list[RunEvent]:
        """:meth:`feed_frames` for a chunk of canonical frames (the hot path of a stream), read from the
        decoder's columns: what :meth:`feed` does for each frame, with the common case inlined (a frame whose
        data validates as one event, not a snapshot); any other frame goes through :meth:`feed` itself. The
        counters and ``Last-Event-ID`` are written once per run of such frames, not once per frame."""
        events: list[RunEvent] = []
        validate = RunEvent.__pydantic_validator__.validate_json  # RunEvent.from_json, without its call
        terminal = TERMINAL_EVENT_TYPES
        ids = frames.ids
        cursor = self.cursor
        start = 0  # the first frame of the current run of frames handled here
        slow = from_slow = 0  # frames that went through feed, and the events they gave (feed counts those)
        index = -1
        for index, data in enumerate(frames.datas):
            event: RunEvent | None = None
            if data[:1] == "{":  # as in feed: other data (even an object after a space) takes its tolerant path
                try:
                    event = validate(data)
                except ValidationError:
                    event = None  # not JSON, a legacy shape: feed sorts it out
            if event is None or event.type == "state.snapshot":
                self.cursor = cursor
                self._take_last_id(ids, start, index)
                fresh = self.feed(frames.event(index))
                events += fresh
                slow += 1
                from_slow += len(fresh)
                start = index + 1
                cursor = self.cursor
                if self.done:
                    break
                continue
            sequence = event.sequence
            if cursor is None or sequence > cursor:
                cursor = sequence
                events.append(event)
                if event.type in terminal:
                    self.done = True
                    break
        self.cursor = cursor
        self._take_last_id(ids, start, index + 1)
        self.frames += index + 1 - slow
        if len(events) > from_slow:
            self._fresh(len(events) - from_slow)
        return events

    def _take_last_id(self, ids: list[str], start: int, end: int) -> None:
        """``Last-Event-ID`` after frames ``start`` to ``end`` (excluded) went the inlined way: the last
        non-empty id among them (an empty one leaves it as it was, as in :meth:`feed`)."""
        for index in range(end - 1, start - 1, -1):
            if ids[index]:
                self.last_event_id = ids[index]
                return

    def feed_page(self, page: EventPage) -> list[RunEvent]:
        """Events of a poll page that were not delivered before; ends the stream when the run is over."""
        fresh = self._accept(list(page.events))
        if self.cursor is not None:
            self.last_event_id = str(self.cursor)
        if page.finished and not self.done:
            # The run is over although no terminal event reached us (a host that filtered it).
            self.done = True
        return fresh

    def _frame_item(self, item: Any, sse: ServerSentEvent, batch: bool) -> RunEvent | None:
        if not isinstance(item, dict):
            return None
        doc = dict(item)
        if "type" not in doc and "status" in doc and "runId" in doc:
            # values mode: the data is a RunSnapshot, wrapped so it flows like any event
            doc = {"type": "state.snapshot", "payload": item, "runId": item.get("runId")}
        elif "type" not in doc and sse.event and sse.event not in ("message", "batch"):
            doc["type"] = sse.event
        if "sequence" not in doc and "seq" not in doc and not batch:
            frame_seq = _as_int(sse.id)
            if frame_seq is not None:
                doc["sequence"] = frame_seq
        try:
            return RunEvent.from_wire(doc)
        except ValidationError:
            if doc.get("type") in TERMINAL_EVENT_TYPES:
                self.done = True  # undecodable, but still the end of the run
            log.debug("run %s: skipped an event that is not a RunEventDoc", self.run_id)
            return None

    def _accept(self, events: Sequence[RunEvent | None]) -> list[RunEvent]:
        fresh: list[RunEvent] = []
        for event in events:
            if event is None or self.done:
                continue
            if event.type == "state.snapshot":
                status = event.payload_dict.get("status")
                if isinstance(status, str) and RunStatus.is_terminal(status):
                    self.done = True
            if self.cursor is not None and event.sequence <= self.cursor:
                continue
            self.cursor = event.sequence
            fresh.append(event)
            if event.is_terminal:
                self.done = True
        if fresh:
            self._fresh(len(fresh))
        return fresh

    def _fresh(self, count: int) -> None:
        """``count`` new events were delivered: the stream makes progress."""
        self.failures = 0
        self.unanswered = 0
        self.empty_streams = 0
        self.delivered += count

    # -- endings and failures -----------------------------------------------------------------------

    def on_stream_end(self) -> Reconnect | None:
        """The server closed the stream before the terminal event. ``None``: stop (no reconnect)."""
        if not self.reconnect:
            return None
        self.empty_streams = self.empty_streams + 1 if self.frames == 0 else 0
        if self.empty_streams >= _EMPTY_STREAMS_BEFORE_POLL and self.poll_fallback:
            # Hosts close at once on finished runs; the poll endpoint tells definitively.
            log.info("run %s: stream keeps closing with no events; reading the poll endpoint", self.run_id)
            self.use_poll = True
            return Reconnect(0.0, use_poll=True)
        delay = self.retry_ms / 1000.0 if self.retry_ms is not None else self.policy.backoff(self.empty_streams)
        return Reconnect(delay, use_poll=False)

    def on_poll_page(self, page: EventPage) -> float:
        """Seconds to wait before the next poll (0 after a page with events: a long-poll host waits)."""
        return 0.0 if page.events else _EMPTY_POLL_DELAY

    def catch_up_wait(self, longest: float, *, backoff_too: bool = True) -> float | None:
        """Seconds to wait before reading the events endpoint once more outside the stream (a waiter's
        catch-up after the snapshot showed the end): what is left of the reconnect delay (only of the host's
        ``Retry-After`` when not ``backoff_too``), so a ``Retry-After`` is always honoured; None when that is
        more than ``longest`` (skip the read: the snapshot tells the end)."""
        left = (self.not_before if backoff_too else self.host_asked_until) - time.monotonic()
        if left <= 0:
            return 0.0
        return left if left <= longest else None

    def host_answered(self) -> None:
        """The host answered another request (a waiter read the snapshot) while the stream fails: it is
        reachable, so the stream's failures so far do not count against the reconnect budget (the backoff
        keeps growing, up to the policy's cap)."""
        self.unanswered = 0

    def on_error(self, error: OpenwopError) -> Reconnect:
        """Decide what a failed connection or poll means. Raises ``error`` when it is not transient
        or the reconnect budget (consecutive failures while the host answers nothing) is spent."""
        if isinstance(error, StreamIdleError):
            # Silence is normal while a run waits; reconnect at once, it costs no failure.
            return Reconnect(0.0, use_poll=self.use_poll, idle=True)
        if not self.use_poll and self.poll_fallback and self._sse_unavailable(error):
            log.info("run %s: no SSE here (%s); falling back to the poll endpoint", self.run_id, _brief(error))
            self.use_poll = True
            return Reconnect(0.0, use_poll=True)
        if not self.reconnect or not self.policy.is_retryable(error):
            raise error
        if self.frames:
            self.failures = 0
            self.unanswered = 0
        self.failures += 1
        self.unanswered += 1
        if self.unanswered > self.policy.stream_max_reconnects:
            raise error
        delay = self.policy.delay_for(error, self.failures)
        self.not_before = time.monotonic() + delay
        asked = isinstance(getattr(error, "retry_after", None), (int, float))
        self.host_asked_until = self.not_before if asked else 0.0
        log.warning(
            "run %s: event stream interrupted (%s); reconnecting %s in %.1fs (%d of %d)",
            self.run_id,
            _brief(error),
            "from its first event" if self.last_event_id is None else f"after event {self.last_event_id}",
            delay,
            self.unanswered,
            self.policy.stream_max_reconnects,
        )
        return Reconnect(delay, use_poll=self.use_poll)

    @staticmethod
    def _sse_unavailable(error: OpenwopError) -> bool:
        if isinstance(error, ResponseFormatError):
            return True  # e.g. a JSON body where an event stream was asked for
        return isinstance(error, ApiError) and error.status_code in _SSE_UNAVAILABLE_STATUSES


def _as_int(value: str | int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return None


def _brief(error: BaseException) -> str:
    """What went wrong, for a log line: the status and code of an answer; else the failure itself (which URL,
    which address refused, which timeout), without the hint."""
    if isinstance(error, ApiError):
        return f"HTTP {error.status_code} {error.code}"
    if isinstance(error, TransportError):
        return f"{type(error).__name__}: {error.message}"
    return type(error).__name__
