"""``BaseOpenwopRunOperator``: what every operator that starts a run and waits for it shares.

Subclasses only say how to start their run (:meth:`BaseOpenwopRunOperator.start_run`: create, fork...).
This base then makes the start idempotent across retries, publishes the run id and URL, waits in the
worker or in the triggerer, puts interrupts to a person in Airflow (``on_interrupt="ask_in_airflow"``),
turns the outcome into a return value or a failure, and cancels the remote run when the task is killed or
times out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal, NoReturn

from airflow.providers.common.compat.sdk import AirflowException, conf
from airflow.sdk import BaseOperator

from openwop_airflow.exceptions import (
    OpenwopHumanInputError,
    OpenwopHumanInputNotShown,
    OpenwopHumanInputTimeout,
    OpenwopRunFailedException,
    OpenwopRunInterruptedException,
    OpenwopWaitTimeoutException,
)
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.links import RUN_ID_XCOM_KEY, RUN_URL_XCOM_KEY, OpenwopRunLink
from openwop_airflow.triggers.hitl import OpenwopHumanInputTrigger
from openwop_airflow.triggers.run import OpenwopRunTrigger
from openwop_airflow.utils.events import HumanInputEvent, RunWaitEvent, interrupt_from_dict, interrupt_to_dict
from openwop_airflow.utils.hitl import WAIT_XCOM_KEY, hitl_support
from openwop_airflow.utils.hitl_forms import AnswerNotUsable, describe_value, request_for, resume_value_for
from openwop_airflow.utils.idempotency import start_or_reattach, task_instance_key
from openwop_airflow.utils.waiting import RunWait, WaitSpec
from openwop_core import (
    ConflictError,
    IdempotencyKeyMismatchError,
    InvalidRequestError,
    NotFoundError,
    OpenwopClient,
    OpenwopError,
    RetryPolicy,
    RunSnapshot,
    RunStatus,
    RunTracker,
    WaitTimeoutError,
    interrupt_is_open,
)
from openwop_core.errors import utc_time

OnInterrupt = Literal["fail", "return", "wait", "ask_in_airflow"]
ON_INTERRUPT_CHOICES = ("fail", "return", "wait", "ask_in_airflow")
#: XCom key of the pending interrupt pushed with ``on_interrupt="return"``.
INTERRUPT_XCOM_KEY = "interrupt"
#: XCom key of the answers given in Airflow during the task's try (``on_interrupt="ask_in_airflow"``).
HUMAN_ANSWERS_XCOM_KEY = "human_answers"
#: How many answers in a row the host may refuse before the task gives up asking.
MAX_REFUSED_ANSWERS = 3


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
        (``interrupt``) for a later task; ``"fail"`` fail the task (the run is left waiting);
        ``"ask_in_airflow"`` ask a person on Airflow's Required Actions page (approve/reject, a form of the
        questions...), send the answer to the run and wait on (needs Airflow 3.1+; see docs/airflow.md).
    :param response_timeout: With ``ask_in_airflow``: how long one question may stay unanswered in Airflow
        (seconds or a timedelta); the task then fails with ``OpenwopHumanInputTimeout`` and the run is
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
        if on_interrupt == "ask_in_airflow" and not wait_for_completion:
            raise ValueError('on_interrupt="ask_in_airflow" needs wait_for_completion=True (it answers while waiting).')
        if assigned_users is not None and not all(
            isinstance(u, dict) and isinstance(u.get("id"), str) and isinstance(u.get("name"), str)
            for u in assigned_users
        ):
            raise ValueError(f'assigned_users must be a list of {{"id": ..., "name": ...}}, got {assigned_users!r}.')
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
        self._parked_in_dag_test = False

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
        if self.on_interrupt == "ask_in_airflow":
            hitl_support()  # fails clearly, before a run is started, where Airflow cannot ask a person
            context["ti"].xcom_push(key=HUMAN_ANSWERS_XCOM_KEY, value=[])
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
        return self._follow(context, run_id, last_sequence=None, deadline=self._deadline(context))

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
        interrupt = payload.interrupt if snapshot.is_waiting else None
        return self._finish(
            context,
            snapshot,
            interrupt,
            (payload.error or {}).get("node_id"),
            last_sequence=payload.last_sequence,
            deadline=deadline,
        )

    def execute_human_answer(self, context: Any, event: Any = None, ask: dict[str, Any] | None = None) -> Any:
        """Resume after a person answered in Airflow (or did not, or the interrupt closed on the host): send
        the answer if the run still waits on that interrupt, then follow the run."""
        if isinstance(event, dict) and "ask" in event:  # the trigger hands it back (dag.test() drops kwargs)
            event = dict(event)
            handed_back = event.pop("ask")
            ask = ask or handed_back
        if isinstance(event, dict) and "status" in event and "run_id" in event:  # the trigger's RunWaitEvent
            return self.execute_complete(context, event, deadline=(ask or {}).get("deadline"))
        if not isinstance(ask, dict) or not isinstance(ask.get("interrupt"), dict):
            raise OpenwopHumanInputError(f"Cannot resume: the question asked is not known (kwargs {ask!r:.300}).")
        answer = HumanInputEvent.from_payload(event)
        interrupt: dict[str, Any] = ask["interrupt"]
        run_id = self._run_id = str(interrupt["run_id"])
        deadline = ask.get("deadline")
        if answer.kind == "closed":
            self.log.info(
                "OpenWOP run %s no longer waits on node %s (status %s): answered elsewhere, timed out on the "
                "host, or the run ended. Following the run.",
                run_id,
                interrupt.get("node_id"),
                answer.run_status,
            )
            return self._follow(context, run_id, last_sequence=answer.last_sequence, deadline=deadline)
        if answer.kind == "no_answer":
            if deadline is not None and time.time() >= deadline:
                self._timed_out(run_id)
            cancelled = self._cancel(run_id, "nobody answered in Airflow")
            raise OpenwopHumanInputTimeout(
                f"Nobody answered the question of OpenWOP run {run_id} (node {interrupt.get('node_id')}) in "
                f"Airflow ({answer.error_type}: {answer.error})"
                + ("; the run was cancelled." if cancelled else "; the run was left waiting.")
            )
        return self._send_answer(context, interrupt, answer, ask)

    def _send_answer(
        self, context: Any, interrupt: dict[str, Any], answer: HumanInputEvent, ask: dict[str, Any]
    ) -> Any:
        """Resolve the interrupt with a person's answer (unless it closed meanwhile), then follow the run."""
        run_id, node_id = str(interrupt["run_id"]), str(interrupt["node_id"])
        last_sequence, deadline = ask.get("last_sequence"), ask.get("deadline")
        who = answer.responder or "Airflow (no user)"
        client = self.hook.get_conn()
        try:
            still_open = interrupt_is_open(client, interrupt_from_dict(interrupt), last_sequence)
        except OpenwopError as exc:
            raise AirflowException(f"Could not read OpenWOP run {run_id}: {exc}") from exc
        if not still_open:
            self.log.warning(
                "OpenWOP run %s no longer waits on node %s (answered elsewhere, timed out on the host, or the run "
                "ended); the answer %s gave in Airflow was not sent. Following the run.",
                run_id,
                node_id,
                who,
            )
            return self._follow(context, run_id, last_sequence=last_sequence, deadline=deadline)
        refused = int(ask.get("refused") or 0)
        interrupt_key = interrupt.get("interrupt_id") or node_id
        key = f"{task_instance_key(context, prefix='airflow-hitl')}:{interrupt_key}:{refused}"
        try:
            value = resume_value_for(interrupt, answer)
            resolution = client.interrupts_resolve_by_run(run_id, node_id, value, idempotency_key=key)
        except (NotFoundError, ConflictError) as exc:
            self.log.warning(
                "OpenWOP run %s: node %s was answered meanwhile (%s); the answer %s gave in Airflow was not used.",
                run_id,
                node_id,
                exc.code,
                who,
            )
            return self._follow(context, run_id, last_sequence=last_sequence, deadline=deadline)
        except (AnswerNotUsable, InvalidRequestError) as exc:
            why = exc.server_message if isinstance(exc, InvalidRequestError) else str(exc)
            if refused + 1 >= MAX_REFUSED_ANSWERS:
                raise OpenwopHumanInputError(
                    f"The answer given in Airflow to OpenWOP run {run_id} (node {node_id}) was refused "
                    f"{refused + 1} times; last: {why}. The run is left waiting."
                ) from exc
            self.log.warning("The answer %s gave in Airflow cannot be used (%s); asking again.", who, why)
            self._ask(
                context,
                interrupt,
                last_sequence=last_sequence,
                deadline=deadline,
                refused=refused + 1,
                workflow_id=ask.get("workflow_id"),
            )
        except OpenwopError as exc:
            raise AirflowException(f"Could not answer OpenWOP run {run_id} (node {node_id}): {exc}") from exc
        self.log.info(
            "Answered node %s of OpenWOP run %s with %s, decided by %s in Airflow; run status now %s.",
            node_id,
            run_id,
            describe_value(value),
            who,
            resolution.status,
        )
        answers = self._answers(context)
        answers.append(
            {
                "node_id": node_id,
                "interrupt_id": interrupt.get("interrupt_id"),
                "kind": interrupt.get("kind"),
                "subject": ask.get("subject"),
                "request": ask.get("request"),
                "resume_value": value,
                "decided_by": answer.responder,
                "decided_at": answer.responded_at,
            }
        )
        context["ti"].xcom_push(key=HUMAN_ANSWERS_XCOM_KEY, value=answers)
        return self._follow(context, run_id, last_sequence=last_sequence, deadline=deadline)

    def _answers(self, context: Any) -> list[dict[str, Any]]:
        """The ``human_answers`` XCom of this try: who answered what in Airflow, and when."""
        ti = context["ti"]
        answers = ti.xcom_pull(task_ids=ti.task_id, key=HUMAN_ANSWERS_XCOM_KEY, map_indexes=ti.map_index)
        return list(answers) if isinstance(answers, list) else []

    def on_kill(self) -> None:
        """The task is being killed (or hit ``execution_timeout``) while waiting in the worker. Under ``airflow
        dags test`` Airflow also calls it on SIGTERM while the task is parked, and nothing else would end
        the test then: it ends here."""
        if self._run_id:
            self._cancel(self._run_id, "Airflow task killed")
        if self._parked_in_dag_test:
            raise SystemExit("airflow dags test stopped by SIGTERM while the task waited for an answer in Airflow.")

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
        interrupt = interrupt_to_dict(result.interrupt) if result.interrupt else None
        return self._finish(
            context,
            result.snapshot,
            interrupt,
            result.failed_node_id,
            last_sequence=result.last_sequence,
            deadline=deadline,
        )

    def _ask(
        self,
        context: Any,
        interrupt: dict[str, Any],
        *,
        last_sequence: int | None,
        deadline: float | None,
        refused: int = 0,
        workflow_id: str | None = None,
    ) -> NoReturn:
        """Put ``interrupt`` to a person on Airflow's Required Actions page, then wait without a worker
        slot: parked in ``awaiting_input`` (Airflow 3.3+, not deferrable) or deferred to
        :class:`OpenwopHumanInputTrigger`, which also watches the run."""
        support = hitl_support()
        run_id = str(interrupt["run_id"])
        request = request_for(interrupt, run_url=self.hook.run_url(run_id), workflow_id=workflow_id)
        ti = context["ti"]
        answered = self._answers(context)
        if answered and answered[-1].get("request") not in (None, request.fingerprint()):
            # checked before writing: writing would clear the earlier answer from Airflow's request
            self._not_shown(interrupt, request, str(answered[-1].get("subject")))
        stored = support.open_request(ti.id, request, self.assigned_users)
        if not request.shows(stored):
            self._not_shown(interrupt, request, stored.subject)
        response_deadline = time.time() + self.response_timeout if self.response_timeout else None
        ask = {
            "interrupt": interrupt,
            "last_sequence": last_sequence,
            "deadline": deadline,
            "response_deadline": response_deadline,
            "refused": refused,
            "workflow_id": workflow_id,
            "subject": request.subject,
            "request": request.fingerprint(),
            "wait_id": self._new_wait(context),
        }
        self.log.info(
            "OpenWOP run %s waits on node %s (%s: %r); asking in Airflow (Required Actions)%s.",
            run_id,
            interrupt.get("node_id"),
            interrupt.get("kind"),
            request.subject,
            " for the assigned users" if self.assigned_users else "",
        )
        if self.deferrable or not support.can_await_input:
            trigger = OpenwopHumanInputTrigger(
                ti_id=str(ti.id),
                ask=ask,
                openwop_conn_id=self.openwop_conn_id,
                retry=self.http_retry,
                poll_interval=self.poll_interval,
                cancel_on_kill=self.cancel_on_kill,
            )
            self.defer(trigger=trigger, method_name="execute_human_answer", kwargs={"ask": ask}, timeout=None)
        ends = [d for d in (deadline, response_deadline) if d is not None]
        timeout = timedelta(seconds=max(1.0, min(ends) - time.time())) if ends else None
        if support.in_dag_test():
            self._park_in_dag_test(timeout)
        raise support.park("execute_human_answer", {"ask": ask}, timeout)

    def _park_in_dag_test(self, timeout: timedelta | None) -> None:
        """``airflow dags test`` runs no scheduler, which would end a parked wait at its timeout: enforce it
        from this process, let SIGTERM end the test (see :meth:`on_kill`), and say how to answer."""
        self._parked_in_dag_test = True
        if timeout is not None:
            hitl_support().enforce_timeout_in_dag_test(timeout)
        self.log.info(
            "airflow dags test runs no scheduler: answer on the Required Actions page of an Airflow API server "
            "that shares this metadata database. %s Ctrl-C or SIGTERM ends the test%s.",
            f"The wait ends after {timeout.total_seconds():.0f}s (response_timeout or timeout), enforced by "
            "this process."
            if timeout is not None
            else "Nothing else ends the wait: neither response_timeout nor timeout is set.",
            " and cancels the run" if self.cancel_on_kill else "",
        )

    def _new_wait(self, context: Any) -> str | None:
        """Record (XCom ``openwop_wait``) that the task now waits anew, before it defers. Airflow 3.3 resumes a
        deferred task itself when someone answers in Airflow; the question's trigger, left running until
        the triggerer cancels it, then sees the task moved on and fires nothing (see the trigger)."""
        if self.on_interrupt != "ask_in_airflow":
            return None
        wait_id = uuid.uuid4().hex
        context["ti"].xcom_push(key=WAIT_XCOM_KEY, value=wait_id)
        return wait_id

    def _not_shown(self, interrupt: dict[str, Any], request: Any, asked: str) -> NoReturn:
        raise OpenwopHumanInputNotShown(
            f"OpenWOP run {interrupt['run_id']} now asks {request.subject!r} (node {interrupt.get('node_id')}, "
            f"{interrupt.get('kind')}), but this task instance already asked {asked!r} in Airflow, and Airflow "
            "keeps one request per task instance without ever changing its text (retries keep it too). The run is "
            "left waiting on the new question: answer it elsewhere (the host, or OpenwopResolveInterruptOperator), "
            "or put each question in a task of its own."
        )

    def _interrupt_of(self, snapshot: RunSnapshot, interrupt: dict[str, Any] | None) -> dict[str, Any]:
        """The full interrupt the run waits on (the events are read again when only the node is known)."""
        if interrupt is not None and interrupt.get("node_id") and interrupt.get("kind") not in (None, "custom"):
            return interrupt
        client = self.hook.get_conn()
        spec = WaitSpec(snapshot.run_id, stop_on_interrupt=True, deadline=time.time() + 60)
        try:
            result = RunWait(spec, client.retry, self.log).run_sync(client)
        except OpenwopError as exc:
            raise AirflowException(f"Could not read what OpenWOP run {snapshot.run_id} waits on: {exc}") from exc
        if result.interrupt is None:
            raise OpenwopHumanInputError(f"OpenWOP run {snapshot.run_id} waits, but not on a node it names.")
        return interrupt_to_dict(result.interrupt)

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

    def _defer(self, context: Any, run_id: str, *, last_sequence: int | None, deadline: float | None) -> NoReturn:
        self._new_wait(context)
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
        self,
        context: Any,
        snapshot: RunSnapshot,
        interrupt: dict[str, Any] | None,
        failed_node_id: str | None,
        *,
        last_sequence: int | None = None,
        deadline: float | None = None,
    ) -> Any:
        """The task's outcome for a run whose wait is over: its outputs, its interrupt (or a question to a
        person, with ``ask_in_airflow``), or a failure."""
        run_id = snapshot.run_id
        if RunStatus.is_success(snapshot.status):
            self.log.info("OpenWOP run %s completed.", run_id)
            return snapshot.outputs
        if snapshot.is_waiting and self.on_interrupt == "ask_in_airflow":
            self._ask(
                context,
                self._interrupt_of(snapshot, interrupt),
                last_sequence=last_sequence,
                deadline=deadline,
                workflow_id=snapshot.workflow_id,
            )
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
        if cancelled:
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
        raised."""
        self._cancel_error: str | None = None
        if not self.cancel_on_kill:
            self.log.info("Leaving OpenWOP run %s running (cancel_on_kill is off).", run_id)
            return False
        try:
            result = self.hook.cancel_run(run_id, reason=reason)
        except Exception as exc:
            self.log.warning("Could not cancel OpenWOP run %s: %s", run_id, exc)
            self._cancel_error = str(exc)
            return False
        self.log.info(
            "Cancelled OpenWOP run %s (%s): status %s%s.",
            run_id,
            reason,
            result.status,
            ", it had already finished" if result.already_terminal else "",
        )
        return True
