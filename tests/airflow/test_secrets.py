"""The API key never leaves the connection: it is in no log line, XCom, rendered field, trigger row,
serialised trigger, repr or error message (searched for a distinctive key after real DAG runs)."""

from __future__ import annotations

import json

import pendulum
from airflow.sdk import DAG
from airflow_support import API_KEY, run_dag, unique_dag_id
from sqlalchemy import select

from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.operators.interrupts import OpenwopResolveInterruptOperator
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_airflow.sensors.run import OpenwopRunSensor

START = pendulum.datetime(2024, 1, 1, tz="UTC")


def test_the_key_appears_nowhere_after_real_runs(devhost, capfd):
    with DAG(unique_dag_id("secrets"), schedule=None, start_date=START) as dag:
        start = OpenwopRunOperator(
            task_id="start", workflow_id="conformance-approval", on_interrupt="return", deferrable=True
        )
        answer = OpenwopResolveInterruptOperator(
            task_id="answer",
            run_id="{{ ti.xcom_pull(task_ids='start', key='run_id') }}",
            node_id="gate",
            resume_value={"action": "accept"},
        )
        wait = OpenwopRunSensor(
            task_id="wait", run_id="{{ ti.xcom_pull(task_ids='start', key='run_id') }}", deferrable=True
        )
        OpenwopRunOperator(task_id="slow", workflow_id="conformance-delay", inputs={"delayMs": 500}, deferrable=True)
        OpenwopRunOperator(task_id="failing", workflow_id="conformance-failure", deferrable=True)
        start >> answer >> wait
    result = run_dag(dag, capfd)

    assert result.ti_state("wait") == "success"
    assert result.ti_state("slow") == "success"
    assert result.ti_state("failing") == "failed"
    assert result.output.count("[DAG TEST] running trigger in line") >= 2

    # logs (dag.test does not mask secrets, so this checks the provider itself)
    assert API_KEY not in result.output
    # XComs
    assert result.raw_xcom_text()
    assert API_KEY not in result.raw_xcom_text()
    # trigger rows, task instances' next kwargs, rendered template fields
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = [json.dumps(t.kwargs, default=str) for t in session.scalars(select(Trigger))]
        stored += [
            json.dumps(ti.next_kwargs, default=str)
            for ti in session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag.dag_id))
        ]
        stored += [
            json.dumps(r.rendered_fields, default=str)
            for r in session.scalars(
                select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.dag_id == dag.dag_id)
            )
        ]
    text = "\n".join(stored)
    assert "openwop_conn_id" in text  # the trigger kwargs are in there...
    assert API_KEY not in text  # ...but never the key


def test_reprs_of_the_hook_settings_and_clients_hide_the_key(devhost):
    hook = OpenwopHook()
    assert API_KEY not in repr(hook.get_connection_settings())
    assert API_KEY not in repr(hook.get_conn())
    assert API_KEY not in repr(hook.get_conn().settings)
    assert API_KEY not in repr(hook.get_conn().settings.auth())
