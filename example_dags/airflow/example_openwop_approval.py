"""Human-in-the-loop: start a run that asks for approval, answer it from Airflow, then wait for the end.

``on_interrupt="return"`` makes the first task succeed as soon as the run waits, pushing the pending
interrupt (node, kind, title, resume schema...) to XCom; a later task answers it; a sensor waits for the
run to complete. In a real DAG the answer would come from your own logic or a person (e.g. Airflow's
HITL operators) instead of a fixed "accept".
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, XComArg, task

from openwop_airflow.operators.interrupts import OpenwopResolveInterruptOperator
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_airflow.sensors.run import OpenwopRunSensor

RUN_ID = "{{ ti.xcom_pull(task_ids='start_review', key='run_id') }}"

with DAG(
    dag_id="example_openwop_approval",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openwop"],
):
    start = OpenwopRunOperator(
        task_id="start_review",
        workflow_id="conformance-approval",
        on_interrupt="return",
        deferrable=True,
    )

    @task
    def decide(interrupt: dict) -> dict:
        """Look at what the run asks and decide (here: accept when accepting is allowed)."""
        action = "accept" if "accept" in interrupt["actions"] else interrupt["actions"][0]
        return {"action": action, "feedback": f"decided in Airflow on {interrupt['title']!r}"}

    answer = OpenwopResolveInterruptOperator(
        task_id="answer",
        run_id=RUN_ID,
        node_id="{{ ti.xcom_pull(task_ids='start_review', key='interrupt')['node_id'] }}",
        resume_value=decide(XComArg(start, key="interrupt")),
    )

    answer >> OpenwopRunSensor(task_id="wait_until_finished", run_id=RUN_ID, deferrable=True, timeout=600)
