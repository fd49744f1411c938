"""Human in the loop on Airflow's own Required Actions page: the run asks, a person answers in Airflow.

When the run stops for an approval, the task puts it on the **Required Actions** page (Browse -> Required
Actions, or the task's *Required Actions* tab): the gate's title and description with a link to the run,
*Approve* / *Reject* and a *Feedback* field. The answer goes to the run with the Airflow user who gave it
(``decidedBy``) and when (``decidedAt``), and the task follows the run to its end. A clarification would
show a form of its questions instead. While it waits, the task holds no worker slot: it parks in
``awaiting_input`` (Airflow 3.3), or, with ``deferrable=True``, waits in the triggerer and also notices at
once an interrupt answered elsewhere, timed out on the host, or a run cancelled meanwhile.

Set the connection first, e.g. for the local host (``python -m openwop_devhost --api-key KEY``):
``AIRFLOW_CONN_OPENWOP_DEFAULT='{"conn_type": "openwop", "host": "http://127.0.0.1:3737", "password": "KEY"}'``
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, XComArg, task

from openwop_airflow.operators.run import OpenwopRunOperator

with DAG(
    dag_id="example_openwop_human_review",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openwop", "human-in-the-loop"],
):
    review = OpenwopRunOperator(
        task_id="review_release",
        workflow_id="conformance-approval",
        on_interrupt="ask_in_airflow",
        response_timeout=timedelta(days=1),  # then the task fails and the run is cancelled
    )

    @task
    def who_decided(answers: list[dict]) -> str:
        """``human_answers``: every answer given in Airflow, with who gave it and when."""
        return "; ".join(
            f"{a['resume_value'].get('action', 'answered')} by {a['decided_by']} at {a['decided_at']}" for a in answers
        )

    who_decided(XComArg(review, key="human_answers"))
