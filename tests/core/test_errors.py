"""Error answers become the right exception, with a sentence a user can act on."""

from __future__ import annotations

import pytest

from openwop_core import (
    AuthenticationError,
    ConflictError,
    IdempotencyKeyMismatchError,
    InterruptNotFoundError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RunAlreadyActiveError,
    ServerError,
)
from openwop_core.errors import error_from_response


def _err(status: int, body: bytes, headers: dict[str, str] | None = None):
    return error_from_response(
        status_code=status,
        body=body,
        headers=headers or {"content-type": "application/json"},
        method="POST",
        path="/v1/runs",
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "validation_error", InvalidRequestError),
        (401, "unauthenticated", AuthenticationError),
        (401, "invalid_credential", AuthenticationError),
        (403, "forbidden", PermissionDeniedError),
        (404, "workflow_not_found", NotFoundError),
        (404, "interrupt_not_found", InterruptNotFoundError),
        (409, "idempotency_key_mismatch", IdempotencyKeyMismatchError),
        (409, "idempotency_key_conflict", IdempotencyKeyMismatchError),
        (409, "idempotency_key_replay_mismatch", IdempotencyKeyMismatchError),
        (409, "interrupt_already_resolved", ConflictError),
        (422, "interrupt_cancelled", InvalidRequestError),
        (429, "rate_limited", RateLimitedError),
        (503, "service_unavailable", ServerError),
    ],
)
def test_status_and_code_pick_the_class(status: int, code: str, cls: type) -> None:
    error = _err(status, f'{{"error": "{code}", "message": "server says {code}"}}'.encode())
    assert type(error) is cls
    assert error.status_code == status and error.code == code
    text = str(error)
    assert f"HTTP {status} {code}" in text and f"server says {code}" in text
    assert "POST /v1/runs" in text and "trace=0af7651916cd43dd8448eb211c80319c" in text


def test_workflow_not_found_message_says_what_to_do() -> None:
    error = _err(404, b'{"error":"workflow_not_found","message":"no workflow nope"}')
    assert "Check the workflow id" in str(error)


def test_run_already_active_exposes_the_active_run() -> None:
    error = _err(409, b'{"error":"run_already_active","message":"busy","details":{"activeRunId":"r-1","retryAfter":5}}')
    assert isinstance(error, RunAlreadyActiveError)
    assert error.active_run_id == "r-1" and error.retry_after == 5


def test_retry_after_header_wins_over_details() -> None:
    error = _err(
        429,
        b'{"error":"rate_limited","message":"slow","details":{"retryAfterMs":9000}}',
        {"content-type": "application/json", "retry-after": "2"},
    )
    assert error.retry_after == 2.0
    only_details = _err(429, b'{"error":"rate_limited","message":"slow","details":{"retryAfterMs":1500}}')
    assert only_details.retry_after == 1.5


def test_html_502_from_a_proxy_is_a_server_error_without_envelope() -> None:
    error = _err(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"content-type": "text/html"})
    assert isinstance(error, ServerError)
    assert error.code == "bad_gateway"
    assert "non-JSON" in str(error) and "text/html" in str(error)


def test_nested_error_object_and_top_level_extras_are_read() -> None:
    error = _err(
        403, b'{"error":{"code":"insufficient_scope","message":"need runs:create"},"scopeRequired":"runs:create"}'
    )
    assert isinstance(error, PermissionDeniedError)
    assert error.code == "insufficient_scope" and error.server_message == "need runs:create"
    assert error.details["scopeRequired"] == "runs:create"


def test_truncated_json_error_body_still_maps_by_status() -> None:
    error = _err(500, b'{"error":"internal_err')
    assert isinstance(error, ServerError) and error.code == "internal_error"
    assert "non-JSON body" in str(error)


def test_correlation_id_is_quoted() -> None:
    error = _err(500, b'{"error":"internal_error","message":"x","details":{"correlationId":"c-123"}}')
    assert "correlationId=c-123" in str(error)
