"""``BaseOpenwopRunOperator``: what every operator that starts a run and waits for it shares.

Subclasses only say how to start their run (:meth:`BaseOpenwopRunOperator.start_run`: create, fork...).
This base then makes the start idempotent across retries, publishes the run id and URL, waits in the
worker or in the triggerer, turns the outcome into a return value or a failure, and cancels the remote
run when the task is killed or times out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal, NoReturn

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException

from openwop_airflow.exceptions import (
    OpenwopRunFailedException,
    OpenwopRunInterruptedException,
    OpenwopWaitTimeoutException,
)
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.links import RUN_ID_XCOM_KEY, RUN_URL_XCOM_KEY, OpenwopRunLink
from openwop_airflow.triggers.run import OpenwopRunTrigger
from openwop_airflow.utils.events import RunWaitEvent, interrupt_to_dict
from openwop_airflow.utils.idempotency import start_or_reattach, task_instance_key
from openwop_airflow.utils.waiting import RunWait, WaitSpec
from openwop_core import (
    IdempotencyKeyMismatchError,
    OpenwopClient,
    OpenwopError,
    RetryPolicy,
    RunSnapshot,
    RunStatus,
    RunTracker,
    WaitTimeoutError,
)

OnInterrupt = Literal["fail", "return", "wait"]
ON_INTERRUPT_CHOICES = ("fail", "return", "wait")
#: XCom key of the pending interrupt pushed with ``on_interrupt="return"``.
INTERRUPT_XCOM_KEY = "interrupt"


def seconds(name: str, value: float | timedelta | None) -> float | None:
    """A duration argument (seconds or timedelta) as positive seconds; None stays None."""
    if value is None:
        return None
    number = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)) or number <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or a timedelta, got {value!r}.")
    return float(number)


class BaseOpenwopRunOperator(BaseOperator):
    """Start an OpenWOP run (how: :meth:`start_run`), then follow it to the end.

    :param openwop_conn_id: The Airflow connection of the host (type ``openwop``).
    :param wait_for_completion: Wait for the run; False returns its run id as soon as it started.
    :param deferrable: Wait in the triggerer (frees the worker slot). Defaults to
        ``[operators] default_deferrable``.
    :param timeout: Longest wait in seconds (or a timedelta); the run is then cancelled (``cancel_on_kill``)
        and the task fails. ``execution_timeout`` is honoured the same way, also while deferred.
    :param poll_interval: Read the run's state every this many seconds instead of following its event
        stream; only for hosts that offer neither SSE nor the poll endpoint.
    :param on_interrupt: When the run waits on a person or system: ``"wait"`` (default) for someone to
        answer it elsewhere; ``"return"`` succeed now and push the pending interrupt to XCom
        (``interrupt``) for a later task; ``"fail"`` fail the task (the run is left waiting).
    :param cancel_on_kill: Cancel the remote run when the task is killed or times out.
    :param idempotency_key: Base of the key that makes retries reattach to the same run; by default
        derived from dag id, task id, run id and map index.
    :param http_retry: Retry policy for HTTP calls (an ``openwop_core.RetryPolicy`` or its dict); default:
        the connection's. (Airflow's own ``retries``/``retry_policy`` decide about task retries.)
    """

    template_fields: Sequence[str] = ("openwop_conn_id", "idempotency_key")
    operator_extra_links = (OpenwopRunLink(),)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        openwop_conn_id: str = OpenwopHook.default_conn_name,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        timeout: float | timedelta | None = None,
        poll_interval: float | None = None,
        on_interrupt: OnInterrupt = "wait",
        cancel_on_kill: bool = True,
        idempotency_key: str | None = None,
        http_retry: RetryPolicy | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_interrupt not in ON_INTERRUPT_CHOICES:
            raise ValueError(f"on_interrupt must be one of {', '.join(ON_INTERRUPT_CHOICES)}, got {on_interrupt!r}.")
        self.openwop_conn_id = openwop_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.timeout = seconds("timeout", timeout)
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.on_interrupt = on_interrupt
        self.cancel_on_kill = cancel_on_kill
        self.idempotency_key = idempotency_key
        self.http_retry = None if http_retry is None else RetryPolicy.model_validate(http_retry).model_dump(mode="json")
        self._run_id: str | None = None

    # -- what subclasses provide ---------------------------------------------------------------------

    def prepare(self, context: Any) -> None:
        """Check the rendered arguments before anything is sent (subclasses raise on bad input)."""

    def start_run(self, client: OpenwopClient, idempotency_key: str) -> tuple[str, bool]:
        """Start (or, for a known key, replay) the run; return ``(run_id, replayed)``."""
        raise NotImplementedError

    def describe_start(self) -> str:
        """What is being started, for messages (e.g. ``workflow 'x'``)."""
        return "the OpenWOP run"

    # -- execution ----------------------------------------------------------------------------------

    @cached_property
    def hook(self) -> OpenwopHook:
        """The hook for ``openwop_conn_id`` (one sync client per task execution)."""
        return OpenwopHook(self.openwop_conn_id, retry=self.http_retry)

    @property
    def stop_on_interrupt(self) -> bool:
        """Whether the wait ends when the run waits on someone."""
        return self.on_interrupt != "wait"

    def execute(self, context: Any) -> Any:
        """Start or reattach, publish run id and URL, then wait (in the worker or deferred)."""
        self.prepare(context)
        client = self.hook.get_conn()
        base_key = self.idempotency_key or task_instance_key(context)
        try:
            attachment = start_or_reattach(
                lambda key: self.start_run(client, key),
                lambda run_id: client.runs_get(run_id).status,
                base_key,
                self.log,
            )
        except IdempotencyKeyMismatchError as exc:
            raise AirflowException(
                f"Could not start {self.describe_start()}: an earlier try of this task sent different arguments "
                f"under the same idempotency key ({exc.server_message}). Make the rendered arguments the same on "
                "every try (no try number or timestamps), or set idempotency_key."
            ) from exc
        except OpenwopError as exc:
            raise AirflowException(f"Could not start {self.describe_start()}: {exc}") from exc
        run_id = self._run_id = attachment.run_id
        url = self.hook.run_url(run_id)
        context["ti"].xcom_push(key=RUN_ID_XCOM_KEY, value=run_id)
        context["ti"].xcom_push(key=RUN_URL_XCOM_KEY, value=url)
        self.log.info("OpenWOP run %s (%s): %s", run_id, "reattached" if attachment.reattached else "started", url)
        if not self.wait_for_completion:
            return run_id
        if self.deferrable:
            snapshot = self._snapshot(client, run_id)
            if snapshot.is_terminal:
                return self._finish(context, snapshot, None, None)
            self._defer(run_id, last_sequence=None, deadline=self._deadline(context))
        spec = WaitSpec(
            run_id,
            stop_on_interrupt=self.stop_on_interrupt,
            deadline=self._deadline(context),
            poll_interval=self.poll_interval,
        )
        try:
            result = RunWait(spec, client.retry, self.log).run_sync(client)
        except WaitTimeoutError:
            self._timed_out(run_id)
        except OpenwopError as exc:
            raise AirflowException(f"Lost track of OpenWOP run {run_id}: {exc}") from exc
        interrupt = interrupt_to_dict(result.interrupt) if result.interrupt else None
        return self._finish(context, result.snapshot, interrupt, result.failed_node_id)

    def execute_complete(self, context: Any, event: Any = None, deadline: float | None = None) -> Any:
        """Resume after the trigger fired: validate its event, re-read the run, finish (or wait on)."""
        payload = RunWaitEvent.from_payload(event)
        run_id = self._run_id = payload.run_id
        if payload.status == "timeout":
            self._timed_out(run_id)
        if payload.status == "error" and payload.run_status is None:
            raise AirflowException(f"Waiting for OpenWOP run {run_id} failed: {payload.error_text()}")
        snapshot = self._snapshot(self.hook.get_conn(), run_id)
        if not self._wait_is_over(snapshot):
            self.log.info("OpenWOP run %s is %s again; waiting on.", run_id, snapshot.status)
            self._defer(run_id, last_sequence=payload.last_sequence, deadline=deadline)
        interrupt = payload.interrupt if snapshot.is_waiting else None
        return self._finish(context, snapshot, interrupt, (payload.error or {}).get("node_id"))

    def on_kill(self) -> None:
        """The task is being killed (or hit ``execution_timeout``) while waiting in the worker."""
        if self._run_id:
            self._cancel(self._run_id, "Airflow task killed")

    # -- helpers ------------------------------------------------------------------------------------

    def _wait_is_over(self, snapshot: RunSnapshot) -> bool:
        return snapshot.is_terminal or (self.stop_on_interrupt and snapshot.is_waiting)

    def _snapshot(self, client: OpenwopClient, run_id: str) -> RunSnapshot:
        try:
            return client.runs_get(run_id)
        except OpenwopError as exc:
            raise AirflowException(f"Could not read OpenWOP run {run_id}: {exc}") from exc

    def _deadline(self, context: Any) -> float | None:
        """When the wait must end (epoch seconds): ``timeout`` from now, and, when deferring,
        ``execution_timeout`` from the start of this try (Airflow enforces it itself in the worker)."""
        deadlines = []
        if self.timeout:
            deadlines.append(time.time() + self.timeout)
        if self.deferrable and self.execution_timeout:
            started = getattr(context["ti"], "start_date", None)
            start = started.timestamp() if started is not None else time.time()
            deadlines.append(start + self.execution_timeout.total_seconds())
        return min(deadlines) if deadlines else None

    def _defer(self, run_id: str, *, last_sequence: int | None, deadline: float | None) -> NoReturn:
        trigger = OpenwopRunTrigger(
            run_id=run_id,
            openwop_conn_id=self.openwop_conn_id,
            last_sequence=last_sequence,
            deadline=deadline,
            stop_on_interrupt=self.stop_on_interrupt,
            retry=self.http_retry,
            poll_interval=self.poll_interval,
            cancel_on_kill=self.cancel_on_kill,
        )
        self.defer(trigger=trigger, method_name="execute_complete", kwargs={"deadline": deadline}, timeout=None)

    def _finish(
        self, context: Any, snapshot: RunSnapshot, interrupt: dict[str, Any] | None, failed_node_id: str | None
    ) -> Any:
        """The task's outcome for a run whose wait is over: its outputs, its interrupt, or a failure."""
        run_id = snapshot.run_id
        if RunStatus.is_success(snapshot.status):
            self.log.info("OpenWOP run %s completed.", run_id)
            return snapshot.outputs
        if snapshot.is_waiting:
            if interrupt is None:
                pending = RunTracker(run_id).pending_interrupt(snapshot)
                interrupt = interrupt_to_dict(pending) if pending else {"run_id": run_id, "node_id": None}
            where = f"node {interrupt.get('node_id')} waits for {interrupt.get('kind') or snapshot.status}"
            if self.on_interrupt == "return":
                context["ti"].xcom_push(key=INTERRUPT_XCOM_KEY, value=interrupt)
                self.log.info("OpenWOP run %s: %s (%s); returning it.", run_id, where, interrupt.get("title"))
                return None
            raise OpenwopRunInterruptedException(
                f"OpenWOP run {run_id} stopped: {where} ({interrupt.get('title')}). The run is left waiting; "
                "answer it with OpenwopResolveInterruptOperator, or use on_interrupt='return' or 'wait'."
            )
        error = snapshot.error
        raise OpenwopRunFailedException(
            run_id,
            snapshot.status,
            error.code if error else None,
            error.message if error else None,
            failed_node_id=failed_node_id,
        )

    def _timed_out(self, run_id: str) -> NoReturn:
        cancelled = self._cancel(run_id, "Airflow task timed out") if self.cancel_on_kill else False
        raise OpenwopWaitTimeoutException(
            f"OpenWOP run {run_id} did not finish within the task's timeout"
            + ("; it was cancelled." if cancelled else "; it was left running.")
        )

    def _cancel(self, run_id: str, reason: str) -> bool:
        """Cancel the remote run, best effort: failures are logged, never raised."""
        if not self.cancel_on_kill:
            self.log.info("Leaving OpenWOP run %s running (cancel_on_kill is off).", run_id)
            return False
        try:
            result = self.hook.cancel_run(run_id, reason=reason)
        except Exception as exc:
            self.log.warning("Could not cancel OpenWOP run %s: %s", run_id, exc)
            return False
        self.log.info(
            "Cancelled OpenWOP run %s (%s): status %s%s.",
            run_id,
            reason,
            result.status,
            ", it had already finished" if result.already_terminal else "",
        )
        return True
