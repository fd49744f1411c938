"""``AskInAirflowMixin``: the ``on_interrupt="ask_in_airflow"`` half of the run operators.

When the run waits on a person, the task writes a request for Airflow's Required Actions page and waits
without a worker slot (parked in ``awaiting_input`` on Airflow 3.3+, else deferred to
``OpenwopHumanInputTrigger``). When it resumes it sends the answer to the run, unless the interrupt closed
meanwhile, asks again when the host refuses the answer, and then follows the run on. The question travels
between those steps as an :class:`~openwop_airflow.hitl.question.AskedQuestion`.

It is mixed into :class:`~openwop_airflow.operators.base.BaseOpenwopRunOperator`, which provides the wait
(``_follow``), the failures (``_timed_out``, ``_cancel``) and the hook.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowException

from openwop_airflow.exceptions import (
    OpenwopHumanInputException,
    OpenwopHumanInputNotShownException,
    OpenwopHumanInputTimeoutException,
)
from openwop_airflow.hitl.events import HumanInputEvent
from openwop_airflow.hitl.forms import AnswerNotUsableError, HumanRequest, describe_value, request_for, resume_value_for
from openwop_airflow.hitl.question import AskedQuestion
from openwop_airflow.hitl.support import WAIT_XCOM_KEY, hitl_support
from openwop_airflow.triggers.hitl import OpenwopHumanInputTrigger
from openwop_airflow.utils.idempotency import task_instance_key
from openwop_airflow.utils.tracing import task_trace
from openwop_airflow.utils.waiting import RunWait, WaitSpec
from openwop_core import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    OpenwopError,
    PendingInterrupt,
    RunSnapshot,
    interrupt_is_open,
)

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

    from openwop_airflow.hooks.openwop import OpenwopHook

    _Operator = BaseOperator
else:
    _Operator = object

#: XCom key of the answers given in Airflow during the task's try (``on_interrupt="ask_in_airflow"``).
HUMAN_ANSWERS_XCOM_KEY = "human_answers"
#: How many answers in a row the host may refuse before the task gives up asking.
MAX_REFUSED_ANSWERS = 3


def check_ask_arguments(on_interrupt: str, wait_for_completion: bool, assigned_users: Any) -> None:
    """Refuse, when the DAG is parsed, arguments ``ask_in_airflow`` cannot work with."""
    if on_interrupt == "ask_in_airflow" and not wait_for_completion:
        raise ValueError('on_interrupt="ask_in_airflow" needs wait_for_completion=True (it answers while waiting).')
    if assigned_users is not None and not all(
        isinstance(u, dict) and isinstance(u.get("id"), str) and isinstance(u.get("name"), str) for u in assigned_users
    ):
        raise ValueError(f'assigned_users must be a list of {{"id": ..., "name": ...}}, got {assigned_users!r}.')


class AskInAirflowMixin(_Operator):
    """Put the interrupts of the run to a person in Airflow, send the answers, follow the run on."""

    if TYPE_CHECKING:  # provided by BaseOpenwopRunOperator

        @property
        def hook(self) -> OpenwopHook: ...

        deferrable: bool
        on_interrupt: str
        cancel_on_kill: bool
        response_timeout: float | None
        assigned_users: list[dict[str, str]] | None
        _run_id: str | None

        def _follow(self, context: Any, run_id: str, *, last_sequence: int | None, deadline: float | None) -> Any: ...
        def _timed_out(self, run_id: str) -> NoReturn: ...
        def _cancel(self, run_id: str, reason: str) -> bool: ...
        def _trigger_connection(self) -> dict[str, Any]: ...
        def execute_complete(self, context: Any, event: Any = None, deadline: float | None = None) -> Any: ...

    _parked_in_dag_test = False

    def _prepare_to_ask(self, context: Any) -> None:
        """Before a run is started: fail clearly where Airflow cannot ask a person, and start this try's
        ``human_answers`` XCom."""
        if self.on_interrupt == "ask_in_airflow":
            hitl_support()
            context["ti"].xcom_push(key=HUMAN_ANSWERS_XCOM_KEY, value=[])

    @task_trace(resumed=True)
    def execute_human_answer(self, context: Any, event: Any = None, ask: dict[str, Any] | None = None) -> Any:
        """Resume after a person answered in Airflow (or did not, or the interrupt closed on the host): send
        the answer if the run still waits on that interrupt, then follow the run."""
        if isinstance(event, dict) and "ask" in event:  # the trigger hands it back (dag.test() drops kwargs)
            event = dict(event)
            handed_back = event.pop("ask")
            ask = ask or handed_back
        if isinstance(event, dict) and "status" in event and "run_id" in event:  # the trigger's RunWaitEvent
            deadline = AskedQuestion.from_json(ask).deadline if ask is not None else None
            return self.execute_complete(context, event, deadline=deadline)
        question = AskedQuestion.from_json(ask)
        answer = HumanInputEvent.from_payload(event)
        run_id = self._run_id = question.run_id
        node_id = question.interrupt.node_id
        if answer.kind == "closed":
            self.log.info(
                "OpenWOP run %s no longer waits on node %s (status %s): answered elsewhere, timed out on the "
                "host, or the run ended. Following the run.",
                run_id,
                node_id,
                answer.run_status,
            )
            return self._follow(context, run_id, last_sequence=answer.last_sequence, deadline=question.deadline)
        if answer.kind == "no_answer":
            if question.deadline is not None and time.time() >= question.deadline:
                self._timed_out(run_id)
            cancelled = self._cancel(run_id, "nobody answered in Airflow")
            raise OpenwopHumanInputTimeoutException(
                f"Nobody answered the question of OpenWOP run {run_id} (node {node_id}) in "
                f"Airflow ({answer.error_type}: {answer.error})"
                + ("; the run was cancelled." if cancelled else "; the run was left waiting.")
            )
        return self._send_answer(context, question, answer)

    def _send_answer(self, context: Any, question: AskedQuestion, answer: HumanInputEvent) -> Any:
        """Resolve the interrupt with a person's answer (unless it closed meanwhile), then follow the run."""
        interrupt = question.interrupt
        run_id, node_id = interrupt.run_id, interrupt.node_id
        who = answer.responder or "Airflow (no user)"
        client = self.hook.get_conn()
        try:
            still_open = interrupt_is_open(client, interrupt, question.last_sequence)
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
            return self._follow_on(context, question)
        interrupt_key = interrupt.interrupt_id or node_id
        key = f"{task_instance_key(context, prefix='airflow-hitl')}:{interrupt_key}:{question.refused}"
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
            return self._follow_on(context, question)
        except (AnswerNotUsableError, InvalidRequestError) as exc:
            why = exc.server_message if isinstance(exc, InvalidRequestError) else str(exc)
            if question.refused + 1 >= MAX_REFUSED_ANSWERS:
                raise OpenwopHumanInputException(
                    f"The answer given in Airflow to OpenWOP run {run_id} (node {node_id}) was refused "
                    f"{question.refused + 1} times; last: {why}. The run is left waiting."
                ) from exc
            self.log.warning("The answer %s gave in Airflow cannot be used (%s); asking again.", who, why)
            self._ask(context, question.asked_again())
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
                "interrupt_id": interrupt.interrupt_id,
                "kind": interrupt.kind,
                "subject": question.subject,
                "request": question.request,
                "resume_value": value,
                "decided_by": answer.responder,
                "decided_at": answer.responded_at,
            }
        )
        context["ti"].xcom_push(key=HUMAN_ANSWERS_XCOM_KEY, value=answers)
        return self._follow_on(context, question)

    def _follow_on(self, context: Any, question: AskedQuestion) -> Any:
        """Follow the run from where it was when ``question`` was asked."""
        return self._follow(context, question.run_id, last_sequence=question.last_sequence, deadline=question.deadline)

    def _answers(self, context: Any) -> list[dict[str, Any]]:
        """The ``human_answers`` XCom of this try: who answered what in Airflow, and when."""
        ti = context["ti"]
        answers = ti.xcom_pull(task_ids=ti.task_id, key=HUMAN_ANSWERS_XCOM_KEY, map_indexes=ti.map_index)
        return list(answers) if isinstance(answers, list) else []

    def _ask_about(
        self,
        context: Any,
        snapshot: RunSnapshot,
        interrupt: PendingInterrupt | None,
        *,
        last_sequence: int | None,
        deadline: float | None,
    ) -> NoReturn:
        """Ask a person about what the waiting run (``snapshot``) waits on (``interrupt``, when known)."""
        interrupt = self._interrupt_of(snapshot, interrupt)
        question = AskedQuestion(interrupt, last_sequence, deadline, workflow_id=snapshot.workflow_id)
        self._ask(context, question)

    def _ask(self, context: Any, question: AskedQuestion) -> NoReturn:
        """Put ``question`` to a person on Airflow's Required Actions page, then wait without a worker slot:
        parked in ``awaiting_input`` (Airflow 3.3+, not deferrable) or deferred to
        :class:`OpenwopHumanInputTrigger`, which also watches the run."""
        support = hitl_support()
        interrupt = question.interrupt
        request = request_for(interrupt, run_url=self.hook.run_url(question.run_id), workflow_id=question.workflow_id)
        ti = context["ti"]
        answered = self._answers(context)
        if answered and answered[-1].get("request") not in (None, request.fingerprint()):
            # checked before writing: writing would clear the earlier answer from Airflow's request
            self._not_shown(interrupt, request, str(answered[-1].get("subject")))
        stored = support.open_request(ti.id, request, self.assigned_users)
        if not request.shows(stored):
            self._not_shown(interrupt, request, stored.subject)
        question = replace(
            question,
            response_deadline=time.time() + self.response_timeout if self.response_timeout else None,
            subject=request.subject,
            request=request.fingerprint(),
            wait_id=self._new_wait(context),
        )
        self.log.info(
            "OpenWOP run %s waits on node %s (%s: %r); asking in Airflow (Required Actions)%s.",
            question.run_id,
            interrupt.node_id,
            interrupt.kind,
            request.subject,
            " for the assigned users" if self.assigned_users else "",
        )
        ask = question.to_json()
        if self.deferrable or not support.can_await_input:
            trigger = OpenwopHumanInputTrigger(ti_id=str(ti.id), ask=ask, **self._trigger_connection())
            self.defer(trigger=trigger, method_name="execute_human_answer", kwargs={"ask": ask}, timeout=None)
        ends = [d for d in (question.deadline, question.response_deadline) if d is not None]
        timeout = timedelta(seconds=max(1.0, min(ends) - time.time())) if ends else None
        if support.in_dag_test():
            self._park_in_dag_test(timeout)
        raise support.park("execute_human_answer", {"ask": ask}, timeout)

    def _park_in_dag_test(self, timeout: timedelta | None) -> None:
        """``airflow dags test`` runs no scheduler, which would end a parked wait at its timeout: enforce it
        from this process, let SIGTERM end the test (see :meth:`_end_parked_dag_test`), and say how to answer."""
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

    def _end_parked_dag_test(self) -> None:
        """On ``on_kill``: under ``airflow dags test`` Airflow also calls it on SIGTERM while the task is
        parked, and nothing else would end the test then: it ends here."""
        if self._parked_in_dag_test:
            raise SystemExit("airflow dags test stopped by SIGTERM while the task waited for an answer in Airflow.")

    def _new_wait(self, context: Any) -> str | None:
        """Record (XCom ``openwop_wait``) that the task now waits anew, before it defers. Airflow 3.3 resumes a
        deferred task itself when someone answers in Airflow; the question's trigger, left running until
        the triggerer cancels it, then sees the task moved on and fires nothing (see the trigger)."""
        if self.on_interrupt != "ask_in_airflow":
            return None
        wait_id = uuid.uuid4().hex
        context["ti"].xcom_push(key=WAIT_XCOM_KEY, value=wait_id)
        return wait_id

    def _not_shown(self, interrupt: PendingInterrupt, request: HumanRequest, asked: str) -> NoReturn:
        raise OpenwopHumanInputNotShownException(
            f"OpenWOP run {interrupt.run_id} now asks {request.subject!r} (node {interrupt.node_id}, "
            f"{interrupt.kind}), but this task instance already asked {asked!r} in Airflow, and Airflow "
            "keeps one request per task instance without ever changing its text (retries keep it too). The run is "
            "left waiting on the new question: answer it elsewhere (the host, or OpenwopResolveInterruptOperator), "
            "or put each question in a task of its own."
        )

    def _interrupt_of(self, snapshot: RunSnapshot, interrupt: PendingInterrupt | None) -> PendingInterrupt:
        """The full interrupt the run waits on (the events are read again when only the node is known)."""
        if interrupt is not None and interrupt.node_id and interrupt.kind != "custom":
            return interrupt
        client = self.hook.get_conn()
        spec = WaitSpec(snapshot.run_id, stop_on_interrupt=True, deadline=time.time() + 60)
        try:
            result = RunWait(spec, client.retry, self.log).run_sync(client)
        except OpenwopError as exc:
            raise AirflowException(f"Could not read what OpenWOP run {snapshot.run_id} waits on: {exc}") from exc
        if result.interrupt is None:
            raise OpenwopHumanInputException(f"OpenWOP run {snapshot.run_id} waits, but not on a node it names.")
        return result.interrupt
