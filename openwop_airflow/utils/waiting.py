"""One resilient "wait for a run" for the worker (sync) and the triggerer (async).

``openwop_core`` already retries single requests and reconnects the event stream a bounded number of
times. A task may wait for hours, though, and a host restart or a long network outage must never be
reported as a failed run. :class:`RunWait` therefore wraps ``wait_for_run`` in a loop that resumes from
the last event seen after every transient failure (with backoff) until the deadline, and logs each
progress event as it arrives. With ``poll_interval`` it reads the run's snapshot instead of following
events, for hosts that offer neither SSE nor the poll endpoint.

The decisions live in :class:`RunWait`; :meth:`RunWait.run_sync` and :meth:`RunWait.run_async` are the
two thin drivers, identical but for ``await``
(:class:`~openwop_airflow.hitl.interrupt_wait.InterruptWait` reuses them for one interrupt).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from openwop_core import (
    AsyncOpenwopClient,
    OpenwopClient,
    OpenwopError,
    ProgressLines,
    RetryPolicy,
    RunEvent,
    RunSnapshot,
    RunTracker,
    WaitResult,
    WaitTimeoutError,
)
from openwop_core.retry import is_retryable_error

#: Longest pause between two attempts after transient failures (the policy's backoff is capped here).
MAX_RECONNECT_DELAY = 30.0


@dataclass(frozen=True)
class WaitSpec:
    """What to wait for: a run, until it is terminal (or waits on someone, with ``stop_on_interrupt``),
    at most until ``deadline`` (epoch seconds, so it survives a process boundary)."""

    run_id: str
    stop_on_interrupt: bool = False
    deadline: float | None = None
    last_sequence: int | None = None
    poll_interval: float | None = None


class RunWait:
    """The state of one wait: cursor, deadline, consecutive transient failures, last status logged."""

    def __init__(self, spec: WaitSpec, policy: RetryPolicy, log: Any) -> None:
        self.spec = spec
        self.policy = policy
        self.log = log
        self.last_sequence = spec.last_sequence
        self.last_status: str | None = None
        self.failures = 0
        self.started = time.time()
        #: When the current streak of transient failures began (epoch seconds; None: the host answers).
        self.unreachable_since: float | None = None
        #: The last transient error of that streak (secrets are never in error texts).
        self.last_error: str | None = None
        #: The progress lines of this wait (twin events folded into one line).
        self.progress = ProgressLines()

    # -- decisions ---------------------------------------------------------------------------------

    def remaining(self) -> float | None:
        """Seconds until the deadline (never negative), None without one."""
        if self.spec.deadline is None:
            return None
        return max(0.0, self.spec.deadline - time.time())

    def timeout_error(self) -> WaitTimeoutError:
        """The error for a deadline that passed (how long this wait lasted, the last status and event seen)."""
        return WaitTimeoutError(
            self.spec.run_id,
            round(time.time() - self.started, 1),
            self.last_status,
            self.last_sequence,
            unreachable_since=self.unreachable_since,
            last_error=self.last_error,
        )

    def host_answered(self) -> None:
        """The host answered: the failure streak (and the "unreachable since") ends."""
        self.failures = 0
        self.unreachable_since = None
        self.last_error = None

    def on_event(self, event: RunEvent) -> None:
        """Log a progress line for ``event`` and advance the resume cursor."""
        self.last_sequence = event.sequence
        self.host_answered()
        text = self.progress(event)
        if text:
            self.log.info("OpenWOP run %s: %s", self.spec.run_id, text)

    def after_error(self, error: OpenwopError) -> float:
        """Seconds to pause before resuming after ``error``; re-raises errors that are not transient and
        raises :class:`WaitTimeoutError` once the deadline has passed."""
        if isinstance(error, WaitTimeoutError):
            # that wait read the run first, so the host answered then; it tells whether it still did
            self.last_status = error.last_status or self.last_status
            self.unreachable_since = error.unreachable_since
            self.last_error = error.last_error
            raise self.timeout_error() from None
        if not is_retryable_error(error, self.policy.retry_statuses):
            raise error
        if self.unreachable_since is None:
            self.unreachable_since = time.time()
        self.last_error = error.message
        self.failures += 1
        delay = min(MAX_RECONNECT_DELAY, self.policy.delay_for(error, self.failures))
        remaining = self.remaining()
        if remaining is not None:
            if remaining <= 0:
                raise self.timeout_error() from error
            delay = min(delay, remaining)
        self.log.warning(
            "OpenWOP run %s: lost contact with the host (%s); resuming %s in %.1fs (attempt %d)",
            self.spec.run_id,
            error,
            "from its first event" if self.last_sequence is None else f"after event {self.last_sequence}",
            delay,
            self.failures,
        )
        return delay

    def on_snapshot(self, snapshot: RunSnapshot) -> WaitResult | None:
        """Polling mode: the result when ``snapshot`` ends the wait, else None (status changes are logged)."""
        self.host_answered()
        if snapshot.status != self.last_status:
            self.log.info("OpenWOP run %s: status %s", self.spec.run_id, snapshot.status)
            self.last_status = snapshot.status
        if snapshot.is_terminal or (self.spec.stop_on_interrupt and snapshot.is_waiting):
            interrupt = RunTracker(self.spec.run_id).pending_interrupt(snapshot) if snapshot.is_waiting else None
            return WaitResult(snapshot=snapshot, last_sequence=self.last_sequence, interrupt=interrupt)
        return None

    def poll_delay(self) -> float:
        """Polling mode: the pause before the next snapshot; raises once the deadline has passed."""
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise self.timeout_error()
        delay = float(self.spec.poll_interval or 0)
        return delay if remaining is None else min(delay, remaining)

    def stream_arguments(self) -> dict[str, Any]:
        """The arguments of the next ``wait_for_run`` (from the cursor, for what is left of the time)."""
        return {
            "timeout": self.remaining(),
            "stop_on_interrupt": self.spec.stop_on_interrupt,
            "last_sequence": self.last_sequence,
            "on_event": self.on_event,
        }

    # -- drivers -----------------------------------------------------------------------------------

    def run_sync(self, client: OpenwopClient) -> WaitResult:
        """Wait with the sync client (in a worker)."""
        while True:
            try:
                if self.spec.poll_interval:
                    result = self.on_snapshot(client.runs_get(self.spec.run_id))
                    if result is not None:
                        return result
                    time.sleep(self.poll_delay())
                    continue
                return client.wait_for_run(self.spec.run_id, **self.stream_arguments())
            except OpenwopError as error:
                time.sleep(self.after_error(error))

    async def run_async(self, client: AsyncOpenwopClient) -> WaitResult:
        """Wait with the async client (in the triggerer)."""
        while True:
            try:
                if self.spec.poll_interval:
                    result = self.on_snapshot(await client.runs_get(self.spec.run_id))
                    if result is not None:
                        return result
                    await asyncio.sleep(self.poll_delay())
                    continue
                return await client.wait_for_run(self.spec.run_id, **self.stream_arguments())
            except OpenwopError as error:
                await asyncio.sleep(self.after_error(error))
