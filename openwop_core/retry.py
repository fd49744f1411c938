"""When and how long to retry: a plain, JSON-serialisable :class:`RetryPolicy` turned into tenacity.

Retried: connection errors and timeouts, 429, 500/502/503/504, and ``409 idempotency_in_flight`` — only
for requests that are safe to repeat (GETs, and mutations carrying an Idempotency-Key, which the client
always attaches). ``Retry-After`` is a floor, never undercut; a ``Retry-After`` longer than
``max_retry_after`` stops the retries (the error is raised) rather than waiting less than asked.

The first attempt of a request runs outside tenacity (most requests succeed at once, and building tenacity's
state per request cost more CPU than the rest of the client's own work on a request); tenacity takes over
only after a retryable failure, for the remaining attempts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
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

    def tenacity_kwargs(self, describe: str, *, repeatable: bool = True, done: int = 0) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` for one request named ``describe``, of which
        ``done`` attempts were already made (tenacity's attempt 1 is then the request's attempt ``done + 1``)."""
        attempts = self.max_attempts if repeatable else 1
        return {
            "stop": tenacity.stop_after_attempt(attempts - done),
            "retry": tenacity.retry_if_exception(self.is_retryable),
            "wait": lambda state: self._tenacity_wait(state, done),
            "before_sleep": _log_before_sleep(describe, attempts, done),
            "reraise": True,
        }

    def retrying(self, describe: str, *, repeatable: bool = True) -> Iterator[Any]:
        """The attempts of a synchronous request: ``for attempt in ...: with attempt: return send()``."""
        return _Attempts(self, describe, repeatable)

    def aretrying(self, describe: str, *, repeatable: bool = True) -> AsyncIterator[Any]:
        """The attempts of an asynchronous request: ``async for attempt in ...: with attempt: return await send()``."""
        return _Attempts(self, describe, repeatable)

    def _tenacity_wait(self, state: tenacity.RetryCallState, done: int = 0) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self.delay_for(error, state.attempt_number + done)


def is_retryable_error(error: BaseException, statuses: tuple[int, ...] = (429, 500, 502, 503, 504)) -> bool:
    """Transient by nature: transport failures, the retryable statuses, ``idempotency_in_flight``."""
    if isinstance(error, TransportError):
        return error.retryable
    if isinstance(error, ApiError):
        if error.status_code in statuses:
            return True
        return error.status_code == 409 and error.code == "idempotency_in_flight"
    return False


class _FirstAttempt:
    """The first attempt of a request, outside tenacity: keeps the exception its block raised."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: Exception | None = None

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if isinstance(exc, Exception):
            self.error = exc
            return True
        return False  # no error, or a BaseException (cancellation, KeyboardInterrupt): never retried


class _Attempts:
    """The attempts of one request (sync or async iteration): the first one plain; after a retryable failure,
    the backoff, then tenacity for the remaining attempts; a failure that is not retried is raised."""

    __slots__ = ("_arest", "_describe", "_first", "_policy", "_repeatable", "_rest")

    def __init__(self, policy: RetryPolicy, describe: str, repeatable: bool) -> None:
        self._policy = policy
        self._describe = describe
        self._repeatable = repeatable
        self._first: _FirstAttempt | None = None
        self._rest: Iterator[Any] | None = None
        self._arest: AsyncIterator[Any] | None = None

    def _retry_after_first(self) -> float:
        """After the first attempt failed: the seconds to wait before the second, or raise its error."""
        assert self._first is not None
        error = self._first.error
        if error is None:
            raise StopIteration  # the block ended without returning: nothing left to try
        attempts = self._policy.max_attempts if self._repeatable else 1
        if attempts <= 1 or not self._policy.is_retryable(error):
            raise error
        delay = self._policy.delay_for(error, 1)
        _log_retry(self._describe, error, delay, 2, attempts)
        return delay

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._rest is not None:
            return next(self._rest)
        if self._first is None:
            self._first = _FirstAttempt()
            return self._first
        time.sleep(self._retry_after_first())
        kwargs = self._policy.tenacity_kwargs(self._describe, repeatable=self._repeatable, done=1)
        self._rest = iter(tenacity.Retrying(**kwargs))
        return next(self._rest)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if self._arest is not None:
            return await self._arest.__anext__()
        if self._first is None:
            self._first = _FirstAttempt()
            return self._first
        try:
            delay = self._retry_after_first()
        except StopIteration:
            raise StopAsyncIteration from None
        await asyncio.sleep(delay)
        kwargs = self._policy.tenacity_kwargs(self._describe, repeatable=self._repeatable, done=1)
        self._arest = tenacity.AsyncRetrying(**kwargs).__aiter__()
        return await self._arest.__anext__()


def _log_retry(describe: str, error: BaseException | None, delay: float, attempt: int, attempts: int) -> None:
    reason = f"HTTP {error.status_code} {error.code}" if isinstance(error, ApiError) else type(error).__name__
    log.warning("%s: %s; retrying in %.1fs (attempt %d of %d)", describe, reason, delay, attempt, attempts)


def _log_before_sleep(describe: str, attempts: int, done: int = 0) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        _log_retry(describe, error, delay, state.attempt_number + done + 1, attempts)

    return before_sleep
