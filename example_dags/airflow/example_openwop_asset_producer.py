"""Produce an Airflow asset with an OpenWOP run: the asset event says which run made it.

``outlets=[REPORT]`` makes the task emit an event of the asset ``openwop_example_report`` when it succeeds;
the run operator attaches the run to it (``extra["openwop"]``: run id, status, run URL, workflow id and a
summary of the outputs, at most 2 KB). ``example_openwop_asset_consumer`` is scheduled on that asset and
reads it. Set the connection as for ``example_openwop_run``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset

from openwop_airflow.operators.run import OpenwopRunOperator

#: The asset both example DAGs name (the consumer declares the same name).
REPORT = Asset(name="openwop_example_report")

with DAG(
    dag_id="example_openwop_asset_producer",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openwop"],
):
    OpenwopRunOperator(
        task_id="make_report",
        workflow_id="example-report",
        inputs={"payload": {"requested_by": "{{ dag.dag_id }}"}},
        outlets=[REPORT],
        timeout=600,
    )
