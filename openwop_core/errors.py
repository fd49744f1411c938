"""The exception hierarchy: one base, one class per thing a caller can do something about.

Errors raised for an HTTP answer carry ``status_code``, ``code`` (the envelope's ``error``), ``message``,
``details``, the server's ``trace_id`` and the request as ``method path`` (never headers, so never the API
key). ``str()`` is a sentence that says what failed and what to do about it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .retry_after import parse_retry_after

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "GoneError",
    "IdempotencyKeyMismatchError",
    "InterruptNotFoundError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "NotFoundError",
    "OpenwopError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseFormatError",
    "RunAlreadyActiveError",
    "RunFailedError",
    "ServerError",
    "TransportError",
    "UnsupportedFeatureError",
    "WaitTimeoutError",
    "error_from_response",
]

_MISMATCH_CODES = frozenset({"idempotency_key_mismatch", "idempotency_key_conflict", "idempotency_key_replay_mismatch"})


class OpenwopError(Exception):
    """Base of every error this library raises."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        if hint is not None:
            self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigurationError(OpenwopError, ValueError):
    """The client was given a bad setting (base URL, timeout, retry policy...)."""


class InvalidArgumentError(OpenwopError, ValueError):
    """A call was given an argument the library can tell is wrong before sending anything."""


class TransportError(OpenwopError):
    """The host could not be reached or the connection broke (DNS, refused, TLS, timeout)."""

    hint = "Check that the base URL is right and the host is up and reachable from here."

    def __init__(
        self, message: str, *, method: str = "", path: str = "", hint: str | None = None, retryable: bool = True
    ) -> None:
        self.method = method
        self.path = path
        self.status_code: int | None = None
        self.code = "transport_error"
        #: False when repeating cannot help (a plain-http host answering a TLS handshake).
        self.retryable = retryable
        super().__init__(message, hint=hint)


class ResponseFormatError(OpenwopError):
    """A 2xx answer that is not the JSON document the endpoint promises (truncated, HTML, wrong shape)."""

    hint = "The base URL may point at something that is not an OpenWOP v1 host (a proxy or a web page)."

    def __init__(self, message: str, *, method: str = "", path: str = "", status_code: int | None = None):
        self.method = method
        self.path = path
        self.status_code = status_code
        self.code = "invalid_response"
        super().__init__(message)


class ApiError(OpenwopError):
    """The host answered with an error status and (usually) an ``{error, message, details}`` envelope."""

    default_hint = ""

    def __init__(
        self,
        *,
        status_code: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        method: str = "",
        path: str = "",
        trace_id: str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.server_message = message
        self.details: dict[str, Any] = dict(details or {})
        self.method = method
        self.path = path
        self.trace_id = trace_id
        self.retry_after = retry_after
        where = f"{method} {path} " if method else ""
        text = f"{where}failed with HTTP {status_code} {code}: {message or 'no message'}"
        if trace_id:
            text += f" (trace={trace_id})"
        correlation = self.details.get("correlationId")
        if correlation:
            text += f" (correlationId={correlation})"
        super().__init__(text, hint=hint if hint is not None else self.default_hint)


class InvalidRequestError(ApiError):
    """400/422: the host refused the request as invalid; ``details`` usually names the field."""

    default_hint = "Fix the request (see the details) and try again; retrying the same request will not help."


class AuthenticationError(ApiError):
    """401: the API key is missing, unknown, expired or revoked."""

    default_hint = "Check the API key configured for this host (it was not accepted)."


class PermissionDeniedError(ApiError):
    """403: the key is valid but lacks the scope or tenant for this call."""

    default_hint = "Use a key with the needed scope for this endpoint (see details), or ask the host admin."


class NotFoundError(ApiError):
    """404: the run, workflow, artifact or route does not exist (or is not visible to this key)."""

    default_hint = "Check the id and that the base URL points at the host that owns it."


class InterruptNotFoundError(NotFoundError):
    """404 ``interrupt_not_found``: nothing is open on that node (never asked, or already resolved)."""

    default_hint = "The interrupt is not open: it may have been resolved already or timed out; check the run."


class ConflictError(ApiError):
    """409: the request conflicts with the current state (terminal run, interrupt already resolved...)."""

    default_hint = "Re-read the run's state before deciding what to do next."


class IdempotencyKeyMismatchError(ConflictError):
    """409: the Idempotency-Key was used before with a different body."""

    default_hint = "Use a new Idempotency-Key for a different request; a key names one logical operation."


class RunAlreadyActiveError(ConflictError):
    """409 ``run_already_active``: X-Dedup found an active run for the same scope."""

    default_hint = "Attach to the active run (see active_run_id) or wait until it ends."

    @property
    def active_run_id(self) -> str | None:
        """The id of the run that already holds the scope."""
        value = self.details.get("activeRunId")
        return str(value) if value is not None else None


class GoneError(ApiError):
    """410: the interrupt expired or was invalidated, or the fork range left retention."""

    default_hint = "The target no longer exists on the host; re-read the run's state."


class RateLimitedError(ApiError):
    """429: too many requests; ``retry_after`` says how long to wait."""

    default_hint = "Slow down; the client retries automatically within its retry policy."


class ServerError(ApiError):
    """5xx: the host (or a proxy in front of it) failed."""

    default_hint = (
        "A server-side problem; it is retried automatically when safe. Quote the trace id to the host operator."
    )


class UnsupportedFeatureError(OpenwopError):
    """The host does not offer an optional v1 surface (fork, pause/resume, token interrupts...)."""

    def __init__(self, feature: str, *, detail: str = "") -> None:
        self.feature = feature
        super().__init__(
            f"This host does not support {feature}{': ' + detail if detail else ''}.",
            hint="Check the host's discovery document (/.well-known/openwop) for what it offers.",
        )


class RunFailedError(OpenwopError):
    """A run the caller waited for ended ``failed`` or ``cancelled``; carries the remote error."""

    def __init__(
        self,
        run_id: str,
        status: str,
        error_code: str | None = None,
        error_message: str | None = None,
        *,
        failed_node_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.failed_node_id = failed_node_id
        text = f"OpenWOP run {run_id} ended {status}"
        if error_code or error_message:
            text += f": {error_code or 'error'}: {error_message or ''}".rstrip(": ")
        if failed_node_id:
            text += f" (node {failed_node_id})"
        super().__init__(text)


class WaitTimeoutError(OpenwopError, TimeoutError):
    """The wait's overall timeout passed before the run reached what the caller waited for."""

    def __init__(
        self,
        run_id: str,
        timeout: float,
        last_status: str | None,
        last_sequence: int | None,
        *,
        unreachable_since: float | None = None,
        last_error: str | None = None,
    ):
        self.run_id = run_id
        self.timeout = timeout
        self.last_status = last_status
        self.last_sequence = last_sequence
        #: Epoch seconds since which the host answered nothing (None: it answered until the end).
        self.unreachable_since = unreachable_since
        #: The last failure meanwhile (no secrets in it), with ``unreachable_since``.
        self.last_error = last_error if unreachable_since else None
        outage = ""
        if unreachable_since:
            outage = f"; the host has not answered since {utc_time(unreachable_since)}"
            outage += f" (last error: {last_error})" if last_error else ""
        super().__init__(
            f"Timed out after {timeout:g}s waiting for OpenWOP run {run_id} "
            f"(last status {last_status or 'unknown'}, {_last_event(last_sequence)}){outage}.",
            hint="The run may go on on the host; wait again from the last event, or cancel it.",
        )


def _last_event(sequence: int | None) -> str:
    return "no event seen yet" if sequence is None else f"last event {sequence}"


def utc_time(epoch: float) -> str:
    """``2026-12-07 02:30:05 UTC`` for epoch seconds (how errors name a moment)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _hint_for(code: str, status: int) -> str | None:
    """Specific hints for codes users hit most; None keeps the class default."""
    return {
        "workflow_not_found": "Check the workflow id: the host has no workflow by that name.",
        "run_not_found": "Check the run id and that the base URL points at the host that owns it.",
        "unsupported_stream_mode": "Ask for one of the modes in details.supported (updates always works).",
        "idempotency_in_flight": "The same request is still being processed; retry shortly with the same key.",
        "interrupt_expired": "The interrupt's token expired; resolve it by run and node with an API key.",
        "interrupt_already_resolved": "Someone resolved this interrupt first; re-read the run.",
        "interrupt_cancelled": "The run was cancelled while the interrupt was open; nothing to resolve.",
        "capability_required": "The workflow needs a capability this host does not offer (see details).",
        "interrupt_token_invalid": "The interrupt token is malformed or its signature does not verify; pass the "
        "token exactly as the host issued it (no API key is involved), or resolve by run and node.",
        "payload_too_large": "Send less: keep the request body (the inputs) under the host's "
        "limits.maxRequestBodyBytes (see its discovery document) and pass large data by reference.",
    }.get(code)


def _parse_envelope(body: bytes, content_type: str) -> tuple[str | None, str | None, dict[str, Any]]:
    """Read ``{error, message, details}`` tolerantly; ``(None, None, {})`` when the body has none."""
    if not body:
        return None, None, {}
    try:
        doc = json.loads(body)
    except ValueError:
        return None, None, {}
    if not isinstance(doc, dict):
        return None, None, {}
    error = doc.get("error")
    message = doc.get("message")
    if isinstance(error, dict):
        message = message or error.get("message")
        error = error.get("code") or error.get("error")
    if error is None:
        error = doc.get("code")
    details = doc.get("details")
    details = dict(details) if isinstance(details, dict) else {}
    for key, value in doc.items():
        if key not in ("error", "message", "details", "code"):
            details.setdefault(key, value)
    return (str(error) if error is not None else None), (str(message) if message else None), details


def _body_excerpt(body: bytes, content_type: str) -> str:
    """A short, single-line description of a body that is not an envelope (HTML from a proxy, text)."""
    if not body:
        return "empty body"
    if "html" in content_type or body.lstrip()[:1] == b"<":
        return f"non-JSON ({content_type or 'html'}) body of {len(body)} bytes"
    text = body[:160].decode("utf-8", "replace").replace("\n", " ").strip()
    return f"non-JSON body: {text!r}"


_DEFAULT_CODES = {
    400: "validation_error",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "gone",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def error_from_response(
    *,
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    method: str,
    path: str,
    trace_id: str | None,
) -> ApiError:
    """Build the right :class:`ApiError` subclass from an error answer; branches on status, then code."""
    content_type = headers.get("content-type", "")
    code, message, details = _parse_envelope(body, content_type)
    if code is None:
        code = _DEFAULT_CODES.get(status_code, f"http_{status_code}")
        message = message or _body_excerpt(body, content_type)
    retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is None:
        for key, scale in (("retryAfter", 1.0), ("retryAfterSeconds", 1.0), ("retryAfterMs", 0.001)):
            value = details.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                retry_after = float(value) * scale
                break
    cls: type[ApiError]
    if status_code == 401:
        cls = AuthenticationError
    elif status_code == 403:
        cls = PermissionDeniedError
    elif status_code == 404:
        cls = InterruptNotFoundError if code == "interrupt_not_found" else NotFoundError
    elif status_code == 409:
        if code in _MISMATCH_CODES:
            cls = IdempotencyKeyMismatchError
        elif code == "run_already_active":
            cls = RunAlreadyActiveError
        else:
            cls = ConflictError
    elif status_code == 410:
        cls = GoneError
    elif status_code == 429:
        cls = RateLimitedError
    elif status_code >= 500:
        cls = ServerError
    elif status_code in (400, 422):
        cls = InvalidRequestError
    else:
        cls = ApiError
    return cls(
        status_code=status_code,
        code=code,
        message=message or "",
        details=details,
        method=method,
        path=path,
        trace_id=trace_id,
        retry_after=retry_after,
        hint=_hint_for(code, status_code),
    )
