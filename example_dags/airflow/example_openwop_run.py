"""Run an OpenWOP workflow and wait for its outputs in the triggerer (deferrable), then use them.

Set the connection first, e.g. for the local host (``python -m openwop_core.testing --api-key KEY``):
``AIRFLOW_CONN_OPENWOP_DEFAULT='{"conn_type": "openwop", "host": "http://127.0.0.1:3737", "password": "KEY"}'``
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
    # Starts conformance-identity (it echoes its `payload` input as output), pushes run_id and run_url to
    # XCom before waiting, waits in the triggerer, and returns the run's outputs. A retry of this task
    # reattaches to the same run instead of starting another.
    run = OpenwopRunOperator(
        task_id="run_workflow",
        workflow_id="conformance-identity",
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
