"""Fan out: one OpenWOP run per input with dynamic task mapping, then collect the outputs.

Each mapped task instance gets its own idempotency key (the map index is part of it), so a retry of one
item reattaches to that item's run only.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from openwop_airflow.operators.run import OpenwopRunOperator

with DAG(
    dag_id="example_openwop_fan_out",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openwop"],
):

    @task
    def list_items() -> list[dict]:
        """The work to spread over runs (in real life: files, customers, partitions...)."""
        return [{"payload": {"item": name}} for name in ("alpha", "beta", "gamma")]

    runs = OpenwopRunOperator.partial(
        task_id="run_per_item",
        workflow_id="conformance-identity",
        deferrable=True,
        max_active_tis_per_dag=8,
    ).expand(inputs=list_items())

    @task
    def collect(outputs: list[dict]) -> list[str]:
        """All runs' outputs, in map-index order."""
        return [output["payload"]["item"] for output in outputs]

    collect(runs.output)
