"""The outermost ASGI layer: trace context, the request log and proxy-like injected failures.

It sits in front of routing and authentication on purpose: ``fail_requests`` faults emulate a
proxy or a rate limiter that answers before the host sees the request, and every response
(including SSE and errors) gets a ``traceparent`` header.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import deque
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import dumps, error_body
from ..faults import FailRule, FaultState

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REDACTED = "<redacted>"
_TOKEN_PATH = re.compile(r"^(/v1/interrupts/)[^/?]+")


def continue_trace(incoming: str | None) -> str:
    """A ``traceparent`` for the response: the caller's trace id with a new span, or a new trace."""
    trace_id = None
    if incoming:
        found = _TRACEPARENT.match(incoming.strip().lower())
        if found and found.group(2) != "0" * 32 and found.group(1) != "ff":
            trace_id = found.group(2)
    if trace_id is None:
        trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


class RequestLog:
    """A bounded, thread-safe record of requests for tests (credentials and tokens redacted)."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        """A copy of all recorded requests, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget all recorded requests."""
        with self._lock:
            self._entries.clear()


def _injected_response(rule: FailRule, traceparent: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers: list[tuple[bytes, bytes]] = [(b"traceparent", traceparent.encode())]
    retry_after = rule.retry_after if rule.retry_after is not None else (1 if rule.status == 429 else None)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if rule.body == "html":
        body = (
            f"<html><head><title>{rule.status} {rule.error_code}</title></head>"
            f"<body><h1>{rule.status} {rule.error_code.replace('_', ' ').title()}</h1><hr>proxy</body></html>"
        ).encode()
        headers.append((b"content-type", b"text/html; charset=utf-8"))
    elif rule.body == "text":
        body = f"{rule.status} {rule.error_code.replace('_', ' ')}".encode()
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    else:
        details: dict[str, Any] = {"injected": True}
        if retry_after is not None:
            details["retryAfter"] = retry_after
            details["retryAfterMs"] = retry_after * 1000
        if rule.status == 429:
            details["scope"] = "route"
        if rule.status >= 500:
            details["correlationId"] = traceparent.split("-")[1]
        body = dumps(error_body(rule.error_code, f"Injected {rule.status} (devhost fault).", details)).encode()
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    return rule.status, headers, body


class FrontMiddleware:
    """Adds ``traceparent``, records requests, and applies ``fail_requests`` faults."""

    def __init__(self, app: ASGIApp, faults: FaultState, request_log: RequestLog) -> None:
        self.app = app
        self.faults = faults
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: record the request, maybe answer with an injected failure, else pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        traceparent = continue_trace(headers.get("traceparent"))
        scope.setdefault("state", {})["traceparent"] = traceparent
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        method = scope["method"]
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "path": _TOKEN_PATH.sub(r"\1" + _REDACTED, path),
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": {k: (_REDACTED if k in ("authorization", "cookie") else v) for k, v in headers.items()},
            "status": None,
        }
        self.request_log.add(entry)
        if not path.startswith("/_devhost/"):
            rule = self.faults.take_failure(method, path)
            if rule is not None:
                status, response_headers, body = _injected_response(rule, traceparent)
                entry["status"] = status
                entry["injected"] = True
                await send({"type": "http.response.start", "status": status, "headers": response_headers})
                await send({"type": "http.response.body", "body": body})
                return
        extra: list[tuple[bytes, bytes]] = [(b"traceparent", traceparent.encode())]
        if "tracestate" in headers:
            extra.append((b"tracestate", headers["tracestate"].encode("latin-1")))

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_trace)
