"""When and how long to retry: a plain, JSON-serialisable :class:`RetryPolicy` turned into tenacity.

Retried: connection errors and timeouts, 429, 500/502/503/504, and ``409 idempotency_in_flight`` — only
for requests that are safe to repeat (GETs, and mutations carrying an Idempotency-Key, which the client
always attaches). ``Retry-After`` is a floor, never undercut; a ``Retry-After`` longer than
``max_retry_after`` stops the retries (the error is raised) rather than waiting less than asked.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import tenacity
from pydantic import BaseModel, ConfigDict, Field

from .errors import ApiError, TransportError
from .settings import MAX_ATTEMPTS

__all__ = ["RetryPolicy", "is_retryable_error"]

log = logging.getLogger("openwop_core.retry")


class RetryPolicy(BaseModel):
    """How the client retries requests and reconnects streams. Plain values only, so it round-trips
    through JSON (``model_dump()`` / ``RetryPolicy.model_validate(d)``), e.g. across Airflow's trigger
    boundary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = MAX_ATTEMPTS.field()
    initial_backoff: float = Field(default=0.5, ge=0, description="First backoff in seconds.")
    max_backoff: float = Field(default=30.0, ge=0, description="Cap of the exponential backoff, seconds.")
    jitter: float = Field(default=0.5, ge=0, le=1, description="Fraction of each backoff that is randomised.")
    max_retry_after: float = Field(
        default=300.0, ge=0, description="Longest Retry-After honoured; a longer one raises instead."
    )
    retry_statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    stream_max_reconnects: int = Field(
        default=10, ge=0, description="Consecutive failed stream reconnects before giving up."
    )

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries (one attempt, no stream reconnects)."""
        return cls(max_attempts=1, stream_max_reconnects=0)

    def backoff(self, attempt: int) -> float:
        """The backoff before retry number ``attempt`` (1-based), jittered."""
        base = min(self.max_backoff, self.initial_backoff * (2 ** max(0, attempt - 1)))
        return float(base * (1 - self.jitter * random.random()))

    def delay_for(self, error: BaseException | None, attempt: int) -> float:
        """Seconds to wait before the next attempt: the Retry-After floor when given, else backoff."""
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            return float(retry_after) + 0.05 * float(retry_after) * random.random()
        return self.backoff(attempt)

    def is_retryable(self, error: BaseException) -> bool:
        """True when ``error`` is transient under this policy (the request itself must be repeatable)."""
        return is_retryable_error(error, self.retry_statuses) and not self._retry_after_too_long(error)

    def _retry_after_too_long(self, error: BaseException) -> bool:
        retry_after = getattr(error, "retry_after", None)
        return isinstance(retry_after, (int, float)) and retry_after > self.max_retry_after

    def tenacity_kwargs(self, describe: str, *, repeatable: bool = True) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` for one request named ``describe``."""
        attempts = self.max_attempts if repeatable else 1
        return {
            "stop": tenacity.stop_after_attempt(attempts),
            "retry": tenacity.retry_if_exception(self.is_retryable),
            "wait": self._tenacity_wait,
            "before_sleep": _log_before_sleep(describe, attempts),
            "reraise": True,
        }

    def retrying(self, describe: str, *, repeatable: bool = True) -> tenacity.Retrying:
        """A tenacity ``Retrying`` for a synchronous request."""
        return tenacity.Retrying(**self.tenacity_kwargs(describe, repeatable=repeatable))

    def aretrying(self, describe: str, *, repeatable: bool = True) -> tenacity.AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for an asynchronous request."""
        return tenacity.AsyncRetrying(**self.tenacity_kwargs(describe, repeatable=repeatable))

    def _tenacity_wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self.delay_for(error, state.attempt_number)


def is_retryable_error(error: BaseException, statuses: tuple[int, ...] = (429, 500, 502, 503, 504)) -> bool:
    """Transient by nature: transport failures, the retryable statuses, ``idempotency_in_flight``."""
    if isinstance(error, TransportError):
        return error.retryable
    if isinstance(error, ApiError):
        if error.status_code in statuses:
            return True
        return error.status_code == 409 and error.code == "idempotency_in_flight"
    return False


def _log_before_sleep(describe: str, attempts: int) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = f"HTTP {error.status_code} {error.code}" if isinstance(error, ApiError) else type(error).__name__
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: %s; retrying in %.1fs (attempt %d of %d)",
            describe,
            reason,
            delay,
            state.attempt_number + 1,
            attempts,
        )

    return before_sleep
