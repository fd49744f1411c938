"""Trace context: one W3C trace per logical operation (create, the whole wait, the final read), continuing
the caller's OpenTelemetry span when one is active.

:func:`trace_operation` opens an operation (a context variable, so it follows threads started with
``contextvars.copy_context()`` and asyncio tasks, and two concurrent waits never share one); every request
sent inside it carries a ``traceparent`` with the operation's trace id. Opened inside another operation it
joins it. Outside any operation a request continues the active span's trace, or starts a trace of its own.

``opentelemetry-api`` is optional and never imported here: a span can only be active once the application
imported ``opentelemetry.trace``, so this looks it up in ``sys.modules`` (no import, no cost without it).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import secrets
import sys
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .errors import InvalidArgumentError

__all__ = [
    "TraceContext",
    "current_trace",
    "current_trace_id",
    "in_trace_operation",
    "trace_headers",
    "trace_operation",
]

F = TypeVar("F", bound=Callable[..., Any])

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE_ID = "0" * 32


@dataclass(frozen=True)
class TraceContext:
    """A W3C trace context: the 32-hex ``trace_id`` shared by every request of an operation, the 16-hex
    ``span_id`` those requests name as their parent, whether the trace is sampled, and ``tracestate``."""

    trace_id: str
    span_id: str
    sampled: bool = True
    tracestate: str | None = None

    @classmethod
    def new(cls, trace_id: str | None = None) -> TraceContext:
        """A context of a fresh trace (or of ``trace_id``, checked) with a fresh parent span id."""
        return cls(check_trace_id(trace_id) if trace_id is not None else secrets.token_hex(16), secrets.token_hex(8))

    @classmethod
    def parse(cls, traceparent: str | None) -> TraceContext | None:
        """The context a ``traceparent`` header describes; None when it is missing or malformed."""
        found = _TRACEPARENT.match((traceparent or "").strip().lower())
        if not found or found.group(1) == "ff" or found.group(2) == _INVALID_TRACE_ID:
            return None
        return cls(found.group(2), found.group(3), bool(int(found.group(4), 16) & 1))

    @property
    def traceparent(self) -> str:
        """The ``traceparent`` header value (version 00)."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def headers(self) -> dict[str, str]:
        """``traceparent`` and, when set, ``tracestate``."""
        return {"traceparent": self.traceparent, **({"tracestate": self.tracestate} if self.tracestate else {})}


def check_trace_id(trace_id: str) -> str:
    """``trace_id`` when it is 32 lowercase hex digits and not all zeros (W3C); :class:`InvalidArgumentError`
    (a ``ValueError``) otherwise."""
    if not isinstance(trace_id, str) or not _TRACE_ID.match(trace_id) or trace_id == _INVALID_TRACE_ID:
        raise InvalidArgumentError(f"trace_id must be 32 lowercase hex digits (a W3C trace id), got {trace_id!r}.")
    return trace_id


_operation: ContextVar[TraceContext | None] = ContextVar("openwop_trace_operation", default=None)


def active_span() -> TraceContext | None:
    """The context of the active OpenTelemetry span, None when there is none (or OpenTelemetry is not in use)."""
    otel_trace = sys.modules.get("opentelemetry.trace")
    if otel_trace is None:
        return None
    try:
        context = otel_trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        state = context.trace_state.to_header() if context.trace_state else ""
        return TraceContext(
            format(context.trace_id, "032x"),
            format(context.span_id, "016x"),
            bool(context.trace_flags & 1),
            state or None,
        )
    except Exception:  # an exotic tracer: tracing must never break a request
        return None


def current_trace() -> TraceContext | None:
    """The trace requests sent from here continue: the operation's (with the active span as parent when that
    span belongs to the same trace), else the active span's; None outside both."""
    operation, span = _operation.get(), active_span()
    if operation is None:
        return span
    if span is not None and span.trace_id == operation.trace_id:
        return span
    return operation


def current_trace_id() -> str | None:
    """The trace id of :func:`current_trace` (None outside an operation and a span)."""
    trace = current_trace()
    return trace.trace_id if trace is not None else None


def trace_headers(trace: TraceContext | None = None) -> dict[str, str]:
    """The trace headers of one request: ``trace``'s (a stream's own), else :func:`current_trace`'s, else a
    trace of its own."""
    trace = trace or current_trace()
    if trace is None:  # a trace of its own: the header alone (what ``TraceContext.new().headers()`` gives)
        ids = os.urandom(24).hex()
        return {"traceparent": f"00-{ids[:32]}-{ids[32:]}-01"}
    return trace.headers()


class trace_operation:  # lowercase, like contextlib.suppress: it reads as a function
    """Send every request inside the ``with`` (or ``async with``) block in one trace; yields its context.

    ``trace_id`` continues a known trace (e.g. one started in another process); without it, an operation
    already open here is joined, else the active OpenTelemetry span's trace is continued, else a new trace
    starts."""

    def __init__(self, trace_id: str | None = None) -> None:
        self.trace_id = check_trace_id(trace_id) if trace_id is not None else None
        self._token: Token[TraceContext | None] | None = None

    def __enter__(self) -> TraceContext:
        joined = _operation.get()
        if joined is not None and self.trace_id in (None, joined.trace_id):
            return joined
        span = active_span()
        if span is not None and self.trace_id in (None, span.trace_id):
            context = span
        else:
            context = TraceContext.new(self.trace_id)
        self._token = _operation.set(context)
        return context

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _operation.reset(self._token)
            self._token = None

    async def __aenter__(self) -> TraceContext:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__()


def in_trace_operation(function: F) -> F:
    """Decorator: the sync or async ``function`` runs as one operation (:func:`trace_operation`)."""
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with trace_operation():
                return await function(*args, **kwargs)

        return cast(F, run_async)

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        with trace_operation():
            return function(*args, **kwargs)

    return cast(F, run)
