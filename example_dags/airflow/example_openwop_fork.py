"""Fork a run: re-run a finished run from one of its events (``replay``), or branch off it (``branch``).

The first task runs a workflow; the second picks the event to fork from (here: the first node's
completion, read from the run's event log through the hook); the third forks and waits for the fork
like any run.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, XComArg, task

from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.operators.fork import OpenwopForkRunOperator
from openwop_airflow.operators.run import OpenwopRunOperator

with DAG(
    dag_id="example_openwop_fork",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openwop"],
):
    original = OpenwopRunOperator(
        task_id="original_run",
        workflow_id="conformance-multi-node",
        deferrable=True,
    )

    @task
    def pick_sequence(source_run_id: str) -> int:
        """The sequence of the first ``node.completed`` event: the fork replays what comes after it."""
        client = OpenwopHook().get_conn()
        page = client.runs_poll_events(source_run_id, timeout_seconds=1)
        return next(event.sequence for event in page.events if event.type == "node.completed")

    original_run_id = XComArg(original, key="run_id")

    # mode="replay" re-executes from `from_seq` with the recorded history; "branch" starts a new branch
    # (and may change `configurable`, `tags` and `metadata` for it).
    OpenwopForkRunOperator(
        task_id="fork_run",
        source_run_id=original_run_id,
        mode="replay",
        from_seq=pick_sequence(original_run_id),
        deferrable=True,
    )
