"""The retry policy: what is transient, how long to wait, and that it survives JSON."""

from __future__ import annotations

import json

import pytest

from openwop_core import RetryPolicy
from openwop_core.errors import ApiError, InvalidRequestError, ServerError, TransportError
from openwop_core.retry_after import parse_retry_after


def _api(status: int, code: str, retry_after: float | None = None) -> ApiError:
    cls = ServerError if status >= 500 else ApiError
    return cls(status_code=status, code=code, message="m", retry_after=retry_after)


def test_policy_round_trips_through_json() -> None:
    policy = RetryPolicy(max_attempts=7, initial_backoff=0.1, max_retry_after=60)
    assert RetryPolicy.model_validate(json.loads(json.dumps(policy.model_dump()))) == policy


def test_policy_rejects_unknown_fields_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="max_atempts"):
        RetryPolicy.model_validate({"max_atempts": 3})


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TransportError("refused"), True),
        (_api(429, "rate_limited"), True),
        (_api(500, "internal_error"), True),
        (_api(502, "bad_gateway"), True),
        (_api(503, "service_unavailable"), True),
        (_api(504, "gateway_timeout"), True),
        (_api(409, "idempotency_in_flight"), True),
        (_api(409, "idempotency_key_mismatch"), False),
        (_api(404, "not_found"), False),
        (_api(401, "unauthenticated"), False),
        (InvalidRequestError(status_code=400, code="validation_error", message="m"), False),
        (ValueError("not ours"), False),
    ],
)
def test_what_is_retried(error: BaseException, retryable: bool) -> None:
    assert RetryPolicy().is_retryable(error) is retryable


def test_retry_after_is_a_floor_never_undercut() -> None:
    policy = RetryPolicy(initial_backoff=10, max_backoff=10)
    for _ in range(50):
        delay = policy.delay_for(_api(503, "service_unavailable", retry_after=3), attempt=1)
        assert 3 <= delay <= 3.15


def test_retry_after_longer_than_the_cap_stops_retrying() -> None:
    policy = RetryPolicy(max_retry_after=30)
    assert not policy.is_retryable(_api(503, "service_unavailable", retry_after=31))
    assert policy.is_retryable(_api(503, "service_unavailable", retry_after=30))


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(initial_backoff=1, max_backoff=8, jitter=0.5)
    assert all(0.5 <= policy.backoff(1) <= 1 for _ in range(20))
    assert all(4 <= policy.backoff(4) <= 8 for _ in range(20))
    assert all(4 <= policy.backoff(10) <= 8 for _ in range(20))
    assert RetryPolicy(jitter=0).backoff(2) == 1.0


def test_parse_retry_after_seconds_dates_and_garbage() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None and parse_retry_after("") is None
