"""Run an OpenWOP workflow and wait for its outputs in the triggerer (deferrable), then use them.

Set the connection first, e.g. for the local host (``python -m openwop_devhost --api-key KEY``):
``AIRFLOW_CONN_OPENWOP_DEFAULT='{"conn_type": "openwop", "host": "http://127.0.0.1:3737", "password": "KEY"}'``

``example-report`` is a workflow of the local host (three nodes, about 3 s). On another host, use one of
its workflows, e.g. ``conformance-identity`` with the same ``payload`` input (it ends at once, so the task
may finish before it defers).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from openwop_airflow.operators.run import OpenwopRunOperator

with DAG(
    dag_id="example_openwop_run",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openwop"],
):
    # Starts example-report (nodes fetch -> review -> echo; it echoes its `payload` input as output after a
    # few seconds), pushes run_id and run_url to XCom before waiting, waits in the triggerer, which logs each
    # node's progress, and returns the run's outputs. A retry of this task reattaches to the same run instead
    # of starting another.
    run = OpenwopRunOperator(
        task_id="run_workflow",
        workflow_id="example-report",
        inputs={
            "payload": {"requested_by": "{{ dag.dag_id }}", "date": "{{ dag_run.run_after.strftime('%Y-%m-%d') }}"}
        },
        tags=["airflow-example"],
        deferrable=True,
        timeout=600,
    )

    @task
    def report(outputs: dict) -> str:
        """Use the run's outputs downstream."""
        return f"workflow echoed {outputs['payload']}"

    report(run.output)
