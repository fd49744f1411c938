"""``OpenwopRunTrigger``: waits for an OpenWOP run in the triggerer, freeing the worker slot.

It serialises plain JSON only (connection id, run id, resume cursor, absolute deadline, what to wait for,
retry policy, poll interval) and never the API key, which it reads from the connection each time it starts.
On every (re)start it reads the run's snapshot first, then follows the event stream from the cursor,
logging progress; transient failures (host restarts, dropped streams, 5xx) are retried until the deadline
and never reported as a failed run. It fires exactly one small event (see
:class:`~openwop_airflow.utils.run_wait_event.RunWaitEvent`).

Remote cancellation happens only in :meth:`OpenwopRunTrigger.on_kill` (a user killed the deferred task),
never in ``cleanup``, which also runs when a triggerer restarts or hands the trigger to another one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from openwop_airflow.exceptions import OpenwopConnectionException
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.utils.run_wait_event import RunWaitEvent
from openwop_airflow.utils.waiting import RunWait, WaitSpec
from openwop_core import OpenwopError, WaitTimeoutError, trace_operation
from openwop_core.tracing import check_trace_id

#: The kwargs of every OpenWOP trigger that say how to reach and treat the host.
CONNECTION_KWARGS = ("openwop_conn_id", "retry", "poll_interval", "cancel_on_kill", "trace_id")
#: Attempts for the best-effort cancel in ``on_kill`` (Airflow bounds on_kill's time too).
_CANCEL_RETRY = {"max_attempts": 2, "initial_backoff": 0.5}


class OpenwopRunTrigger(BaseTrigger):
    """Wait until an OpenWOP run is terminal, or waits on an interrupt (``stop_on_interrupt``).

    :param run_id: The run to wait for.
    :param openwop_conn_id: The Airflow connection of the host.
    :param last_sequence: Resume after this event sequence (None: from the run's first event).
    :param deadline: Give up at this time (epoch seconds) with a ``timeout`` event; None waits forever.
    :param stop_on_interrupt: Fire ``interrupted`` when the run waits on someone, instead of waiting on.
    :param retry: The retry policy (``RetryPolicy.model_dump()``); None uses the connection's.
    :param poll_interval: Read the snapshot every this many seconds instead of following events
        (for hosts without SSE or a poll endpoint).
    :param cancel_on_kill: Cancel the run when a user kills the deferred task.
    :param trace_id: The W3C trace id the task's requests use (see ``openwop_core.tracing``), so the wait's
        requests continue that trace (None: a trace of its own). A trace id is no secret.
    """

    def __init__(
        self,
        *,
        run_id: str,
        openwop_conn_id: str = OpenwopHook.default_conn_name,
        last_sequence: int | None = None,
        deadline: float | None = None,
        stop_on_interrupt: bool = False,
        retry: Mapping[str, Any] | None = None,
        poll_interval: float | None = None,
        cancel_on_kill: bool = False,
        trace_id: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.run_id = run_id
        self.openwop_conn_id = openwop_conn_id
        self.last_sequence = last_sequence
        self.deadline = float(deadline) if deadline is not None else None
        self.stop_on_interrupt = bool(stop_on_interrupt)
        self.retry = dict(retry) if retry is not None else None
        self.poll_interval = float(poll_interval) if poll_interval else None
        self.cancel_on_kill = bool(cancel_on_kill)
        self.trace_id = check_trace_id(trace_id) if trace_id is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON kwargs to rebuild this trigger in a triggerer (no secret in them)."""
        return f"{type(self).__module__}.{type(self).__qualname__}", self.kwargs()

    def kwargs(self) -> dict[str, Any]:
        """The JSON kwargs of this trigger."""
        return self._attributes("run_id", "last_sequence", "deadline", "stop_on_interrupt", *CONNECTION_KWARGS)

    def _attributes(self, *names: str) -> dict[str, Any]:
        """``{name: value}`` of these attributes (each constructor kwarg is kept as the attribute of its name)."""
        return {name: getattr(self, name) for name in names}

    def trace(self) -> trace_operation:
        """The task's trace operation, for the requests of this trigger (never held across a ``yield``: the
        triggerer may close the generator from another context)."""
        return trace_operation(self.trace_id)

    def _hook(self, retry: Mapping[str, Any] | None) -> OpenwopHook:
        return OpenwopHook(self.openwop_conn_id, retry=retry)

    def _wait_spec(self, *, stop_on_interrupt: bool) -> WaitSpec:
        """The wait from this trigger's cursor until its deadline."""
        return WaitSpec(
            run_id=self.run_id,
            stop_on_interrupt=stop_on_interrupt,
            deadline=self.deadline,
            last_sequence=self.last_sequence,
            poll_interval=self.poll_interval,
        )

    def _wait_failed(self, error: Exception, wait: RunWait | None) -> RunWaitEvent:
        """The event for a wait that ended without an outcome of the run: its deadline passed, or an error
        retrying cannot fix (a rejected key, an unknown run...)."""
        if isinstance(error, WaitTimeoutError):
            self.log.warning("Deadline passed while waiting for OpenWOP run %s: %s", self.run_id, error)
            return RunWaitEvent.timed_out(error)
        self.log.error("Cannot wait for OpenWOP run %s: %s", self.run_id, error)
        return RunWaitEvent.from_wait_error(self.run_id, error, wait.last_sequence if wait else self.last_sequence)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait, then fire one event."""
        spec = self._wait_spec(stop_on_interrupt=self.stop_on_interrupt)
        wait: RunWait | None = None
        try:
            async with self._hook(self.retry).async_client() as client, self.trace() as trace:
                wait = RunWait(spec, client.retry, self.log)
                self.log.info(
                    "Waiting for OpenWOP run %s at %s (%s); trace %s",
                    self.run_id,
                    client.base_url,
                    "from its first event" if self.last_sequence is None else f"after event {self.last_sequence}",
                    trace.trace_id,
                )
                result = await wait.run_async(client)
        except (OpenwopError, OpenwopConnectionException) as exc:  # WaitTimeoutError is an OpenwopError
            event = self._wait_failed(exc, wait)
        else:
            event = RunWaitEvent.from_result(result)
        yield TriggerEvent(event.to_payload())  # type: ignore[no-untyped-call]

    async def on_kill(self) -> None:
        """A user killed the deferred task (mark failed/success, clear): cancel the run, best effort."""
        if not self.cancel_on_kill:
            self.log.info("Task killed; leaving OpenWOP run %s alone (cancel_on_kill is off).", self.run_id)
            return
        started = time.monotonic()
        try:
            async with self._hook(_CANCEL_RETRY).async_client() as client, self.trace():
                result = await client.runs_cancel(self.run_id, reason="Airflow task killed while deferred")
        except (OpenwopError, OpenwopConnectionException) as exc:
            self.log.warning("Could not cancel OpenWOP run %s: %s", self.run_id, exc)
            return
        self.log.info(
            "Cancelled OpenWOP run %s (status %s%s, %.1fs).",
            self.run_id,
            result.status,
            ", already finished" if result.already_terminal else "",
            time.monotonic() - started,
        )
