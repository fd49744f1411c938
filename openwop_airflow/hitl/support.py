"""Airflow's human-in-the-loop calls, imported only where they are used, so the provider still loads on
Airflow versions without them and ``on_interrupt="ask_in_airflow"`` fails with a clear message there.

Airflow 3.1 added the calls a task uses to write a request (``upsert_hitl_detail``) and a trigger uses to
read the answer (``get_hitl_detail_content_detail``); the Required Actions page, the REST API and the
``hitl_detail`` table are part of Airflow itself. Airflow 3.3 added ``TaskAwaitingInput``, which parks a
task without a worker or a trigger until the API server (or the scheduler's timeout sweep) resumes it.
The standard provider's HITL operators are not needed.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from openwop_airflow.exceptions import OpenwopHumanInputUnavailableException
from openwop_airflow.hitl.forms import HumanRequest

#: XCom key holding the id of the wait a task with ``on_interrupt="ask_in_airflow"`` is deferred in now (a
#: fresh id each time it defers), so a trigger left over from an earlier wait can tell it is stale.
WAIT_XCOM_KEY = "openwop_wait"
#: What this provider uses of Airflow's human-in-the-loop support: (module, name).
_NEEDED = (
    ("airflow.sdk.execution_time.hitl", "get_hitl_detail_content_detail"),
    ("airflow.sdk.execution_time.comms", "CreateHITLDetailPayload"),
)


@dataclass(frozen=True)
class HitlSupport:
    """What this Airflow offers for asking a person."""

    airflow_version: str
    #: Whether a task can park in ``awaiting_input`` (Airflow 3.3+); else it waits deferred.
    can_await_input: bool

    def open_request(self, ti_id: Any, request: HumanRequest, assigned_users: list[dict[str, str]] | None) -> Any:
        """Write ``request`` for the task instance, as ``upsert_hitl_detail`` does, and return what Airflow
        stores (``HITLDetailRequest``). For a task instance that has a request already, Airflow keeps its
        text and only clears an earlier answer, so the stored request may differ from ``request``."""
        # upsert_hitl_detail (called by the standard provider's HITLOperator) sends this same message but drops
        # Airflow's reply, the request as stored, which this check needs; pinned to the tested Airflow range.
        from airflow.sdk.execution_time.comms import CreateHITLDetailPayload
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        return SUPERVISOR_COMMS.send(
            msg=CreateHITLDetailPayload(
                ti_id=ti_id,
                options=request.options,
                subject=request.subject,
                body=request.body,
                defaults=None,
                multiple=False,
                params=request.params,
                # dicts, validated into HITLUser by pydantic (HITLUser's module, datamodels._generated, is private)
                assigned_users=[{"id": u["id"], "name": u["name"]} for u in assigned_users or []],  # type: ignore[misc]
            )
        )

    def read_response(self, ti_id: Any) -> Any:
        """The response part of the task instance's request (``HITLDetailResponse``); for triggers."""
        from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail  # as the standard HITLTrigger

        return get_hitl_detail_content_detail(ti_id=ti_id)

    def current_wait(self, ti: Any) -> tuple[str | None, Any]:
        """The state of the task instance ``ti`` and the id of the wait it last deferred in (its
        ``openwop_wait`` XCom); for triggers, to tell whether the task still waits on them."""
        from airflow.providers.common.compat.sdk import XCom
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance  # as the standard WorkflowTrigger

        states = RuntimeTaskInstance.get_task_states(
            dag_id=ti.dag_id, map_index=ti.map_index, task_ids=[ti.task_id], run_ids=[ti.run_id]
        )
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        state = states.get(ti.run_id, {}).get(key)
        wait_id = XCom.get_one(
            key=WAIT_XCOM_KEY, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index
        )
        return (None if state is None else str(state)), wait_id

    def park(self, method_name: str, kwargs: dict[str, Any], timeout: timedelta | None) -> BaseException:
        """The exception that parks the task in ``awaiting_input`` (Airflow 3.3+)."""
        from airflow.sdk.exceptions import TaskAwaitingInput  # as the standard provider's HITLOperator

        return TaskAwaitingInput(method_name=method_name, kwargs=kwargs, timeout=timeout)

    @staticmethod
    def in_dag_test() -> bool:
        """Whether the task runs under ``airflow dags test`` / ``dag.test()``: in-process, with no scheduler to
        enforce a parked task's timeout."""
        # private, no provider does this (nor has a public way); the dags-test timeout below depends on it
        from airflow.sdk.execution_time import task_runner

        return type(getattr(task_runner, "SUPERVISOR_COMMS", None)).__name__ == "InProcessSupervisorComms"

    @staticmethod
    def enforce_timeout_in_dag_test(timeout: timedelta) -> None:
        """Do, when ``timeout`` has passed, what the scheduler's sweep does for a parked task whose response
        deadline passed (``dags test`` runs no scheduler): resume it with the answer given meanwhile, or with
        a timeout event. Runs on a daemon thread of the ``dags test`` process, which owns the database."""

        def sweep() -> None:
            # the scheduler's own sweep (private; no provider calls it): only under dags test, failures logged
            from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

            time.sleep(timeout.total_seconds() + 1.0)  # the sweep takes deadlines that have passed
            try:
                SchedulerJobRunner.check_awaiting_input_timeouts(_SweepLog())  # type: ignore[arg-type]
            except Exception:  # the test may have ended and its database gone
                logging.getLogger(__name__).warning("Could not time out the parked task.", exc_info=True)

        threading.Thread(target=sweep, name="openwop-dag-test-hitl-timeout", daemon=True).start()


class _SweepLog:
    """The scheduler's ``self`` as its awaiting-input sweep uses it: only a logger."""

    log = logging.getLogger("openwop_airflow.dag_test_sweep")


def hitl_support() -> HitlSupport:
    """This Airflow's human-in-the-loop support; raises :class:`OpenwopHumanInputUnavailableException` without it."""
    from airflow import __version__ as airflow_version

    try:
        for module, name in _NEEDED:
            getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise OpenwopHumanInputUnavailableException(
            f'on_interrupt="ask_in_airflow" needs Airflow\'s human-in-the-loop support (Airflow 3.1 or newer); '
            f'this is Airflow {airflow_version} ({exc}). Upgrade Airflow, or use on_interrupt="return" and '
            "answer with OpenwopResolveInterruptOperator."
        ) from None
    try:
        from airflow.sdk.exceptions import TaskAwaitingInput  # noqa: F401
    except ImportError:
        can_await_input = False
    else:
        can_await_input = True
    return HitlSupport(airflow_version=airflow_version, can_await_input=can_await_input)
