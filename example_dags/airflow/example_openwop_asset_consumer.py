"""Run when ``example_openwop_asset_producer``'s OpenWOP run has produced its asset, and read which run it was.

The asset event's ``extra["openwop"]`` names the run (``openwop_airflow.operators.asset_events.produced_by``
reads it). Run by hand or with ``airflow dags test``, no asset event triggered the DAG run: the task says so
and succeeds.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

from openwop_airflow.operators.asset_events import produced_by

#: The asset ``example_openwop_asset_producer`` emits (declared by name in both DAGs).
REPORT = Asset(name="openwop_example_report")

with DAG(
    dag_id="example_openwop_asset_consumer",
    schedule=[REPORT],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openwop"],
):

    @task
    def which_run(triggering_asset_events: Any = None) -> dict[str, Any] | None:
        """The OpenWOP run behind the newest event of the asset that triggered this DAG run, or None."""
        # Airflow 3.1's Asset is not hashable: look it up in the accessor, never in a plain dict.
        events = list(triggering_asset_events.get(REPORT, [])) if triggering_asset_events else []
        runs = [run for run in map(produced_by, events) if run is not None]
        if not runs:
            print("No OpenWOP run's asset event triggered this DAG run (started by hand or by dags test).")
            return None
        run = runs[-1]
        print(f"Triggered by OpenWOP run {run['run_id']} ({run['status']}): {run['run_url']}")
        return run

    which_run()
