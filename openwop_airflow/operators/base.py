"""``BaseOpenwopRunOperator``: what every operator that starts a run and waits for it shares.

Subclasses only say how to start their run (:meth:`BaseOpenwopRunOperator.start_run`: create, fork...).
This base then makes the start idempotent across retries, publishes the run id and URL, waits in the
worker or in the triggerer, turns the outcome into a return value or a failure, and cancels the remote run
when the task is killed or times out. Putting interrupts to a person in Airflow
(``on_interrupt="ask_in_airflow"``) is :class:`~openwop_airflow.hitl.ask_in_airflow.AskInAirflowMixin`'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal, NoReturn

from airflow.providers.common.compat.sdk import AirflowException, conf
from airflow.sdk import BaseOperator

from openwop_airflow.exceptions import (
    OpenwopRunFailedException,
    OpenwopRunInterruptedException,
    OpenwopWaitTimeoutException,
)
from openwop_airflow.hitl.ask_in_airflow import AskInAirflowMixin, check_ask_arguments
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.links import RUN_ID_XCOM_KEY, RUN_URL_XCOM_KEY, OpenwopRunLink
from openwop_airflow.operators.asset_events import publish_run
from openwop_airflow.operators.lineage import OpenLineageMixin
from openwop_airflow.triggers.run import OpenwopRunTrigger
from openwop_airflow.utils.hook_mixin import OpenwopHookMixin
from openwop_airflow.utils.idempotency import start_or_reattach, task_instance_key
from openwop_airflow.utils.interrupt_dict import interrupt_to_dict
from openwop_airflow.utils.run_wait_event import RunWaitEvent
from openwop_airflow.utils.tracing import TRACE_ID_XCOM_KEY, task_trace
from openwop_airflow.utils.waiting import RunWait, WaitSpec
from openwop_core import (
    IdempotencyKeyMismatchError,
    OpenwopClient,
    OpenwopError,
    PendingInterrupt,
    RetryPolicy,
    RunSnapshot,
    RunStatus,
    RunTracker,
    WaitTimeoutError,
    current_trace_id,
)
from openwop_core.errors import utc_time

OnInterrupt = Literal["fail", "return", "wait", "ask_in_airflow"]
ON_INTERRUPT_CHOICES = ("fail", "return", "wait", "ask_in_airflow")
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


def _failed_node(snapshot: RunSnapshot) -> str | None:
    """The node the snapshot reports failed, for when no event named it (the run had ended before the wait
    began, as a deferred task often finds): the failure message then names it in every mode."""
    failed = [
        node_id
        for node_id, state in snapshot.node_states.items()
        if isinstance(state, dict) and state.get("status") == "failed"
    ]
    return failed[-1] if failed else None


class BaseOpenwopRunOperator(OpenwopHookMixin, AskInAirflowMixin, OpenLineageMixin, BaseOperator):
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
        (``interrupt``) for a later task; ``"fail"`` fail the task (the run is left waiting);
        ``"ask_in_airflow"`` ask a person on Airflow's Required Actions page (approve/reject, a form of the
        questions...), send the answer to the run and wait on (needs Airflow 3.1+; see docs/airflow.md).
    :param response_timeout: With ``ask_in_airflow``: how long one question may stay unanswered in Airflow
        (seconds or a timedelta); the task then fails with ``OpenwopHumanInputTimeoutException`` and the run is
        cancelled (``cancel_on_kill``). None: no limit.
    :param assigned_users: With ``ask_in_airflow``: who may answer, as ``[{"id": ..., "name": ...}]``
        Airflow users; None: anyone allowed to act on the DAG.
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
        response_timeout: float | timedelta | None = None,
        assigned_users: list[dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_interrupt not in ON_INTERRUPT_CHOICES:
            raise ValueError(f"on_interrupt must be one of {', '.join(ON_INTERRUPT_CHOICES)}, got {on_interrupt!r}.")
        check_ask_arguments(on_interrupt, wait_for_completion, assigned_users)
        self.openwop_conn_id = openwop_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.timeout = seconds("timeout", timeout)
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.on_interrupt = on_interrupt
        self.cancel_on_kill = cancel_on_kill
        self.idempotency_key = idempotency_key
        self.http_retry = None if http_retry is None else RetryPolicy.model_validate(http_retry).model_dump(mode="json")
        self.response_timeout = seconds("response_timeout", response_timeout)
        self.assigned_users = assigned_users
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

    @property
    def stop_on_interrupt(self) -> bool:
        """Whether the wait ends when the run waits on someone."""
        return self.on_interrupt != "wait"

    @task_trace(resumed=False)
    def execute(self, context: Any) -> Any:
        """Start or reattach, publish run id and URL, then wait (in the worker or deferred)."""
        self.prepare(context)
        self._prepare_to_ask(context)
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
        context["ti"].xcom_push(key=TRACE_ID_XCOM_KEY, value=(trace_id := current_trace_id()))
        how = "reattached" if attachment.reattached else "started"
        self.log.info("OpenWOP run %s (%s): %s (trace %s)", run_id, how, url, trace_id)
        if not self.wait_for_completion:
            publish_run(self, context, run_id, attachment.status)
            return run_id
        return self._follow(context, run_id, last_sequence=None, deadline=self._deadline(context))

    @task_trace(resumed=True)
    def execute_complete(self, context: Any, event: Any = None, deadline: float | None = None) -> Any:
        """Resume after the trigger fired: validate its event, re-read the run, finish (or wait on)."""
        payload = RunWaitEvent.from_payload(event)
        run_id = self._run_id = payload.run_id
        if payload.status == "timeout":
            self._timed_out(
                run_id,
                last_status=payload.run_status,
                last_sequence=payload.last_sequence,
                unreachable_since=payload.unreachable_since,
                host_error=(payload.error or {}).get("message"),
            )
        if payload.status == "error" and payload.run_status is None:
            raise AirflowException(f"Waiting for OpenWOP run {run_id} failed: {payload.error_text()}")
        snapshot = self._snapshot(self.hook.get_conn(), run_id)
        if not self._wait_is_over(snapshot):
            self.log.info("OpenWOP run %s is %s again; waiting on.", run_id, snapshot.status)
            self._defer(context, run_id, last_sequence=payload.last_sequence, deadline=deadline)
        interrupt = payload.pending_interrupt if snapshot.is_waiting else None
        return self._finish(
            context,
            snapshot,
            interrupt,
            (payload.error or {}).get("node_id"),
            last_sequence=payload.last_sequence,
            deadline=deadline,
        )

    def on_kill(self) -> None:
        """The task is being killed (or hit ``execution_timeout``) while waiting in the worker (or, under
        ``airflow dags test``, while parked for an answer in Airflow, which ends the test)."""
        if self._run_id:
            self._cancel(self._run_id, "Airflow task killed")
        self._end_parked_dag_test()

    # -- helpers ------------------------------------------------------------------------------------

    def _follow(self, context: Any, run_id: str, *, last_sequence: int | None, deadline: float | None) -> Any:
        """Wait for the run from ``last_sequence`` (deferred, or in the worker), then finish."""
        client = self.hook.get_conn()
        if self.deferrable:
            snapshot = self._snapshot(client, run_id)
            if snapshot.is_terminal:
                return self._finish(context, snapshot, None, None)
            self._defer(context, run_id, last_sequence=last_sequence, deadline=deadline)
        spec = WaitSpec(
            run_id,
            stop_on_interrupt=self.stop_on_interrupt,
            deadline=deadline,
            last_sequence=last_sequence,
            poll_interval=self.poll_interval,
        )
        wait = RunWait(spec, client.retry, self.log)
        try:
            result = wait.run_sync(client)
        except WaitTimeoutError as exc:
            self._timed_out(
                run_id,
                last_status=exc.last_status,
                last_sequence=exc.last_sequence,
                unreachable_since=exc.unreachable_since,
                host_error=wait.last_error,
            )
        except OpenwopError as exc:
            raise AirflowException(f"Lost track of OpenWOP run {run_id}: {exc}") from exc
        return self._finish(
            context,
            result.snapshot,
            result.interrupt,
            result.failed_node_id,
            last_sequence=result.last_sequence,
            deadline=deadline,
        )

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

    def _trigger_connection(self) -> dict[str, Any]:
        """The triggers' kwargs of how to reach and treat the host (``triggers.run.CONNECTION_KWARGS``)."""
        return {
            "openwop_conn_id": self.openwop_conn_id,
            "retry": self.http_retry,
            "poll_interval": self.poll_interval,
            "cancel_on_kill": self.cancel_on_kill,
            "trace_id": current_trace_id(),
        }

    def _defer(self, context: Any, run_id: str, *, last_sequence: int | None, deadline: float | None) -> NoReturn:
        self._new_wait(context)
        trigger = OpenwopRunTrigger(
            run_id=run_id,
            last_sequence=last_sequence,
            deadline=deadline,
            stop_on_interrupt=self.stop_on_interrupt,
            **self._trigger_connection(),
        )
        self.defer(trigger=trigger, method_name="execute_complete", kwargs={"deadline": deadline}, timeout=None)

    def _finish(
        self,
        context: Any,
        snapshot: RunSnapshot,
        interrupt: PendingInterrupt | None,
        failed_node_id: str | None,
        *,
        last_sequence: int | None = None,
        deadline: float | None = None,
    ) -> Any:
        """The task's outcome for a run whose wait is over: its outputs, its interrupt (or a question to a
        person, with ``ask_in_airflow``), or a failure."""
        run_id = snapshot.run_id
        self._final_snapshot = snapshot
        if RunStatus.is_success(snapshot.status):
            self.log.info("OpenWOP run %s completed.", run_id)
            publish_run(self, context, run_id, snapshot.status, snapshot)
            return snapshot.outputs
        if snapshot.is_waiting and self.on_interrupt == "ask_in_airflow":
            self._ask_about(context, snapshot, interrupt, last_sequence=last_sequence, deadline=deadline)
        if snapshot.is_waiting:
            pending = interrupt or RunTracker(run_id).pending_interrupt(snapshot)
            node, kind, title = (pending.node_id, pending.kind, pending.title) if pending else (None, None, None)
            where = f"node {node} waits for {kind or snapshot.status}"
            if self.on_interrupt == "return":
                value = interrupt_to_dict(pending) if pending else {"run_id": run_id, "node_id": None}
                context["ti"].xcom_push(key=INTERRUPT_XCOM_KEY, value=value)
                self.log.info("OpenWOP run %s: %s (%s); returning it.", run_id, where, title)
                publish_run(self, context, run_id, snapshot.status, snapshot)
                return None
            raise OpenwopRunInterruptedException(
                f"OpenWOP run {run_id} stopped: {where} ({title}). The run is left waiting; "
                "answer it with OpenwopResolveInterruptOperator, or use on_interrupt='return' or 'wait'."
            )
        error = snapshot.error
        raise OpenwopRunFailedException(
            run_id,
            snapshot.status,
            error.code if error else None,
            error.message if error else None,
            failed_node_id=failed_node_id or _failed_node(snapshot),
        )

    def _timed_out(
        self,
        run_id: str,
        *,
        last_status: str | None = None,
        last_sequence: int | None = None,
        unreachable_since: float | None = None,
        host_error: str | None = None,
    ) -> NoReturn:
        """Fail the task whose time ran out, with one story: what was last known of the run, whether the
        host was unreachable (since when), and what became of the run (cancelled, left running, or the
        cancel failed). Raised without the wait's own timeout error chained: this message says it all."""
        cancelled = self._cancel(run_id, "Airflow task timed out")
        if self._found_finished:  # the run ended while the wait could not see it
            fate = (
                f"it had finished by then ({self._found_finished}), which the wait did not see, so nothing was "
                "cancelled; a retry of this task reattaches to the run and reads how it ended."
            )
        elif cancelled:
            fate = "it was cancelled."
        elif not self.cancel_on_kill:
            fate = "it was left running (cancel_on_kill is off)."
        else:
            fate = f"cancelling it failed too ({self._cancel_error}), so it may still be running on the host."
        known = last_status is not None or last_sequence is not None
        event = "no event seen yet" if last_sequence is None else f"last event {last_sequence}"
        seen = f" (last status {last_status or 'unknown'}, {event})" if known else ""
        if unreachable_since is not None:
            head = (
                f"OpenWOP run {run_id}: the host was unreachable since {utc_time(unreachable_since)} "
                f"(last error: {host_error or 'none recorded'}) when the task's {self._limit_text()} ran out, "
                f"so how the run went on is unknown{seen}; "
            )
        else:
            head = f"OpenWOP run {run_id} did not finish within the task's {self._limit_text()}{seen}; "
        raise OpenwopWaitTimeoutException(head + fate) from None

    def _limit_text(self) -> str:
        """The limit that bounded the wait: ``timeout`` or ``execution_timeout`` (the shorter one)."""
        execution = self.execution_timeout.total_seconds() if self.execution_timeout else None
        if self.timeout and (execution is None or self.timeout <= execution):
            return f"timeout of {self.timeout:g}s"
        if execution is not None:
            return f"execution_timeout of {execution:g}s"
        return "timeout"

    def _cancel(self, run_id: str, reason: str) -> bool:
        """Cancel the remote run, best effort: failures are logged (and kept in ``_cancel_error``), never
        raised; a run found already finished is kept in ``_found_finished`` (its status)."""
        self._cancel_error: str | None = None
        self._found_finished: str | None = None
        if not self.cancel_on_kill:
            self.log.info("Leaving OpenWOP run %s running (cancel_on_kill is off).", run_id)
            return False
        try:
            result = self.hook.cancel_run(run_id, reason=reason)
        except Exception as exc:
            self.log.warning("Could not cancel OpenWOP run %s: %s", run_id, exc)
            self._cancel_error = str(exc)
            return False
        if result.already_terminal:
            self._found_finished = str(result.status)
            self.log.info("OpenWOP run %s had already finished (%s); nothing to cancel.", run_id, result.status)
        else:
            self.log.info("Cancelled OpenWOP run %s (%s): status %s.", run_id, reason, result.status)
        return True
