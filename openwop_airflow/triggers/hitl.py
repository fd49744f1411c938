"""``OpenwopHumanInputTrigger``: while a person is asked in Airflow, watch both sides at once.

A task with ``on_interrupt="ask_in_airflow"`` that waits deferred hands this trigger the interrupt it put
to a person. The trigger then waits for whichever comes first:

- **the answer in Airflow**: on Airflow 3.3 the API server resumes the deferred task itself the moment
  someone answers, so the trigger only reads the response once when it starts (an answer given before the
  task deferred); before 3.3 it polls the response, as the standard provider's ``HITLTrigger`` does.
- **the interrupt closing on the OpenWOP host**: answered elsewhere (the host's UI, another client, a
  signed token), timed out there, or the run ended or was cancelled. It follows the run's events (resuming
  after dropped streams, as :class:`~openwop_airflow.triggers.run.OpenwopRunTrigger` does), so this is
  noticed at once, not at Airflow's response timeout.
- **a deadline**: ``response_deadline`` (nobody answered in Airflow) or the task's overall ``deadline``.

It fires one event: the answer (in the shape Airflow's API server uses), a ``closed`` event, a
``no_answer`` timeout (the shape Airflow's scheduler uses) or a :class:`RunWaitEvent` (overall timeout, or
an error retrying cannot fix); but only while the task is still deferred in the wait it was made for (the
task records each wait in its ``openwop_wait`` XCom). A trigger the API server left behind by resuming the
task fires nothing: on SQLite its event could otherwise resume a later wait that reused its id.

Each event also hands back the task's ``ask`` state, so the event alone resumes the task (``dag.test()``
drops the deferral's kwargs). Serialised state is plain JSON without secrets; ``on_kill`` cancels the run
like ``OpenwopRunTrigger`` does, unless the task was resumed by an answer given in Airflow (Airflow calls
``on_kill`` then too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any

from airflow.triggers.base import TriggerEvent

from openwop_airflow.exceptions import OpenwopConnectionException
from openwop_airflow.hitl.events import INTERRUPT_CLOSED_MARK, HumanInputEvent
from openwop_airflow.hitl.interrupt_wait import InterruptWait
from openwop_airflow.hitl.question import AskedQuestion
from openwop_airflow.hitl.support import hitl_support
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.triggers.run import CONNECTION_KWARGS, OpenwopRunTrigger
from openwop_core import OpenwopError

#: Seconds between two reads of the Airflow response (the standard provider's HITLTrigger uses 5).
DEFAULT_RESPONSE_CHECK_INTERVAL = 5.0


class OpenwopHumanInputTrigger(OpenwopRunTrigger):
    """Wait for a person's answer in Airflow, or for the interrupt to close on the host, or a deadline.

    :param ti_id: The task instance whose human-in-the-loop request was written.
    :param ask: What the task asked, as JSON (:meth:`AskedQuestion.to_json
        <openwop_airflow.hitl.question.AskedQuestion.to_json>`): the interrupt, the run's event cursor then,
        the task's ``deadline``, the ``response_deadline`` and whatever else the task needs back.
    :param response_check_interval: Seconds between two reads of the Airflow response.

    The other arguments are those of :class:`~openwop_airflow.triggers.run.OpenwopRunTrigger`.
    """

    def __init__(
        self,
        *,
        ti_id: str,
        ask: Mapping[str, Any],
        openwop_conn_id: str = OpenwopHook.default_conn_name,
        retry: Mapping[str, Any] | None = None,
        poll_interval: float | None = None,
        cancel_on_kill: bool = False,
        response_check_interval: float = DEFAULT_RESPONSE_CHECK_INTERVAL,
        trace_id: str | None = None,
    ) -> None:
        question = AskedQuestion.from_json(ask)
        super().__init__(
            run_id=question.run_id,
            openwop_conn_id=openwop_conn_id,
            last_sequence=question.last_sequence,
            deadline=question.deadline,
            retry=retry,
            poll_interval=poll_interval,
            cancel_on_kill=cancel_on_kill,
            trace_id=trace_id,
        )
        self.ti_id = str(ti_id)
        self.ask = dict(ask)  # handed back as it came, with each event
        self.interrupt = question.interrupt
        self.response_deadline = question.response_deadline
        self.response_check_interval = float(response_check_interval)
        self._readable = True  # False once reading the Airflow response failed (then only the API server resumes)

    def kwargs(self) -> dict[str, Any]:
        """The JSON kwargs of this trigger (no secret in them)."""
        return self._attributes("ti_id", "ask", "response_check_interval", *CONNECTION_KWARGS)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch both sides; fire one event (or none, once Airflow itself resumed the task)."""
        self.log.info(
            "Waiting for an answer in Airflow to OpenWOP run %s, node %s (%s), while following the run.",
            self.run_id,
            self.interrupt.node_id,
            self.interrupt.kind,
        )
        api_resumes = hitl_support().can_await_input
        payload = await self._read_answer()  # given before the task deferred: Airflow did not resume it then
        if payload is None:
            payload = await self._first_of(self._interrupt_closed(), self._airflow_side(poll=not api_resumes))
            answer = payload if "chosen_options" in payload else await self._read_answer()
            if answer is not None:
                self.log.info("Answered in Airflow by %s: %s", _who(answer), answer["chosen_options"])
            elif INTERRUPT_CLOSED_MARK in payload:
                self.log.info(
                    "OpenWOP run %s no longer waits on node %s (run status %s): answered elsewhere, timed out "
                    "there, or the run ended.",
                    self.run_id,
                    self.interrupt.node_id,
                    payload["run_status"],
                )
            payload = answer or payload
        if not await self._still_waited_on():
            # Airflow's API server resumed the task with the answer given in Airflow (and it may have deferred
            # again since). An event would be at best ignored, at worst resume another wait that got this
            # trigger's id (SQLite reuses ids), so this trigger ends without one; ending as cancelled (not
            # as failed) also frees its id in the triggerer at once.
            self.log.info("The task no longer waits on this question (Airflow resumed it); nothing to fire.")
            raise asyncio.CancelledError("stale OpenWOP question")
        yield TriggerEvent({**payload, "ask": self.ask})  # type: ignore[no-untyped-call]

    async def on_kill(self) -> None:
        """Airflow cancels this trigger, calling ``on_kill``, whenever its task leaves the deferred state other
        than by this trigger's event: a user killed the task (mark failed or success, clear), or, on Airflow
        3.3, the API server resumed it with the answer someone gave. Only a kill cancels the run."""
        self._readable = True  # read afresh, whatever happened to earlier reads
        if (answer := await self._read_answer()) is not None:
            self.log.info("Answered in Airflow by %s; the task goes on with OpenWOP run %s.", _who(answer), self.run_id)
            return
        await super().on_kill()

    async def _still_waited_on(self) -> bool:
        """Whether the task is still deferred in the wait this trigger was made for: deferred, and its
        ``openwop_wait`` XCom is this question's ``wait_id``. Assumed so when that cannot be read (as in
        ``dag.test()``, which runs the trigger in line, or for a question asked by an older release)."""
        wait_id, ti = self.ask.get("wait_id"), self.task_instance
        if not wait_id or ti is None:
            return True
        from asgiref.sync import sync_to_async

        try:
            state, current = await sync_to_async(hitl_support().current_wait)(ti)
        except Exception as exc:
            self.log.warning("Could not read whether the task still waits (%s: %s).", type(exc).__name__, exc)
            return True
        return state == "deferred" and current in (None, wait_id)

    @staticmethod
    async def _first_of(*watchers: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
        """The result of the first watcher to finish; the others are cancelled."""
        tasks = [asyncio.create_task(watcher) for watcher in watchers]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def _interrupt_closed(self) -> dict[str, Any]:
        """The host side: the payload once the interrupt is no longer open (or the overall deadline passed)."""
        spec = self._wait_spec(stop_on_interrupt=False)  # the run already waits on this interrupt
        wait: InterruptWait | None = None
        try:
            async with self._hook(self.retry).async_client() as client, self.trace():
                wait = InterruptWait(spec, client.retry, self.log, self.interrupt)
                snapshot = await wait.until_closed_async(client)
        except (OpenwopError, OpenwopConnectionException) as exc:  # WaitTimeoutError is an OpenwopError
            return self._wait_failed(exc, wait).to_payload()
        return HumanInputEvent.closed_payload(self.run_id, snapshot.status, wait.last_sequence)

    async def _airflow_side(self, *, poll: bool) -> dict[str, Any]:
        """The Airflow side: the answer (when ``poll``: Airflow before 3.3 does not resume a deferred task
        by itself), or a timeout payload at ``response_deadline``."""
        while True:
            if poll and (payload := await self._read_answer()) is not None:
                return payload
            left = None if self.response_deadline is None else self.response_deadline - time.time()
            if left is not None and left <= 0:
                self.log.warning("Nobody answered in Airflow before the response deadline.")
                return {"error": "Nobody answered in Airflow within the response timeout.", "error_type": "timeout"}
            pause = self.response_check_interval if poll and self._readable else 3600.0
            await asyncio.sleep(pause if left is None else min(pause, left))

    async def _read_answer(self) -> dict[str, Any] | None:
        """The answer given in Airflow (an event payload), or None: none yet, or it cannot be read here."""
        if not self._readable:
            return None
        from asgiref.sync import sync_to_async

        try:
            response = await sync_to_async(hitl_support().read_response)(self.ti_id)
        except Exception as exc:  # the API server is unreachable, or the task instance was cleared
            self.log.warning("Could not read the answer given in Airflow (%s: %s).", type(exc).__name__, exc)
            return None
        if not hasattr(response, "response_received"):  # dag.test()'s in-process supervisor cannot serve it
            self._readable = False
            self.log.warning(
                "Cannot read the answer given in Airflow from here; %s",
                "relying on Airflow's API server to resume the task when someone answers."
                if hitl_support().can_await_input
                else "this Airflow does not resume a deferred task itself, so only the interrupt closing on the host "
                "or the response deadline ends this wait.",
            )
            return None
        answered = bool(response.response_received and response.chosen_options)
        return self._answer_payload(response) if answered else None

    def _answer_payload(self, response: Any) -> dict[str, Any]:
        user = response.responded_by_user
        responder = {"id": user.id, "name": user.name} if user is not None else None
        return {
            "chosen_options": list(response.chosen_options),
            "params_input": response.params_input or {},
            "responded_at": response.responded_at,
            "responded_by_user": responder,
            "timedout": False,
        }


def _who(answer: Mapping[str, Any]) -> str:
    return str((answer.get("responded_by_user") or {}).get("name") or "Airflow")
