"""``on_interrupt="ask_in_airflow"`` deferred, as production runs it: an API server, a scheduler
(LocalExecutor) and a triggerer, each its own process, and a person (``ada``, a user of the simple auth
manager) answering over HTTP with the calls the Required Actions page makes.

Two deferred tasks: one approval, answered once; one gate that loops back on reject through a 20 s revision,
so it asks twice. (Without the revision the run asks again within a second of the reject: the trigger then
fires a few seconds after the task deferred again, and a loaded LocalExecutor scheduler that has not yet
processed the report of that deferral fails the re-queued task, Airflow's "task-state-changed-externally"
race; docs/airflow.md.) While they wait, ``OpenwopHumanInputTrigger`` runs in the triggerer; ada's answers reach the runs (with
``decidedBy`` = ada) and both tasks end with their runs' outputs.
"""

from __future__ import annotations

import copy
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from airflow_support import API_KEY, scheduler_settled
from test_production import Deployment, wait_for

from openwop_devhost import DevHost
from openwop_devhost.workflows.catalogue import builtin_documents

pytestmark = pytest.mark.slow

DAG_ID = "openwop_hitl_production_check"
LOOPBACK_ID = "hitl-production-reject-loopback"
DAG_FILE = textwrap.dedent(
    f'''
    """Two deferred questions for the human-in-the-loop production test."""
    import pendulum
    from airflow.sdk import DAG

    from openwop_airflow.operators.run import OpenwopRunOperator

    with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False):
        for task_id, workflow_id in (("approve", "conformance-approval"),
                                     ("asked_twice", "{LOOPBACK_ID}")):
            OpenwopRunOperator(
                task_id=task_id, workflow_id=workflow_id, on_interrupt="ask_in_airflow", deferrable=True
            )
    '''
)
PASSWORD = "ada-production-password"


def loopback_with_revision() -> dict:
    """``conformance-approval-reject-loopback`` whose ``revise`` step takes 20 s (``core.delay``)."""
    (doc,) = [d for d in builtin_documents() if d["id"] == "conformance-approval-reject-loopback"]
    doc = copy.deepcopy(doc)
    doc["id"] = LOOPBACK_ID
    (revise,) = [n for n in doc["nodes"] if n["id"] == "revise"]
    revise.update(typeId="core.delay", config={"delayMs": 20000})
    return doc


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Deployment, DevHost]]:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "loopback.json").write_text(json.dumps(loopback_with_revision()))
    with DevHost(api_key=API_KEY, workflows_dir=workflows) as host:
        deployment = Deployment(tmp_path, host)
        (tmp_path / "dags" / "openwop_hitl_production_check.py").write_text(DAG_FILE)
        passwords = tmp_path / "passwords.json"
        passwords.write_text(json.dumps({"ada": PASSWORD}))
        deployment.env.update(
            {
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ada:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            }
        )
        try:
            yield deployment, host
        finally:
            deployment.stop_all()


def as_ada(deployment: Deployment) -> httpx.Client:
    base = f"http://127.0.0.1:{deployment.port}"
    response = httpx.post(f"{base}/auth/token", json={"username": "ada", "password": PASSWORD}, timeout=10)
    assert response.status_code == 201, response.text
    token = response.json()["access_token"]
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.mark.timeout(480, method="thread")
def test_deferred_questions_are_answered_on_the_rest_api_and_the_runs_complete(deployment):
    airflow, host = deployment
    airflow.start_all()
    with as_ada(airflow) as api:
        response = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
        assert response.status_code == 200, response.text
        dag_run_id = response.json()["dag_run_id"]

        def pending(task_id: str) -> dict | None:
            """The task's request, once it is pending on the Required Actions page with the task deferred."""
            listed = api.get(
                f"/api/v2/dags/{DAG_ID}/dagRuns/{dag_run_id}/hitlDetails",
                params={"response_received": "false", "state": ["deferred"], "task_id": task_id},
            ).json()["hitl_details"]
            in_triggerer = airflow.query(
                "select count(*) from task_instance ti join trigger t on ti.trigger_id = t.id "
                "where ti.dag_id = ? and ti.task_id = ? and t.triggerer_id is not null",
                DAG_ID,
                task_id,
            )[0][0]
            return listed[0] if listed and in_triggerer else None

        def settled(task_id: str) -> bool:
            """The scheduler has processed the executor's reports of the task's deferrals so far (see
            ``scheduler_settled``: answering earlier races Airflow)."""
            logs = (airflow.root / "home" / "logs" / f"dag_id={DAG_ID}").rglob(f"task_id={task_id}/attempt=*.log")
            return scheduler_settled(logs, airflow.log("scheduler"), DAG_ID, task_id)

        def respond(task_id: str, option: str, feedback: str) -> dict:
            wait_for(f"the scheduler to settle {task_id}'s deferral", lambda: settled(task_id), airflow, 60)
            path = f"/api/v2/dags/{DAG_ID}/dagRuns/{dag_run_id}/taskInstances/{task_id}/-1/hitlDetails"
            answered = api.patch(path, json={"chosen_options": [option], "params_input": {"feedback": feedback}})
            assert answered.status_code == 200, f"{answered.text}\n{airflow.diagnosis()}"
            return answered.json()

        first = wait_for("the approval to be asked", lambda: pending("approve"), airflow, 180)
        assert first["subject"] == "Conformance approval"
        assert first["options"] == ["Approve", "Reject"]
        assert respond("approve", "Approve", "ok")["responded_by"] == {"id": "ada", "name": "ada"}

        wait_for("the loop-back gate to ask", lambda: pending("asked_twice"), airflow, 180)
        respond("asked_twice", "Reject", "revise")
        again = wait_for("the loop-back gate to ask again", lambda: pending("asked_twice"), airflow, 180)
        assert again["subject"] == "Conformance approval (reject loops back)"
        respond("asked_twice", "Approve", "good now")

        def states() -> dict[str, str] | None:
            rows = dict(airflow.query("select task_id, state from task_instance where dag_id = ?", DAG_ID))
            return rows if all(s in ("success", "failed", "up_for_retry") for s in rows.values()) else None

        assert wait_for("both tasks to finish", states, airflow, 180) == {
            "approve": "success",
            "asked_twice": "success",
        }

    runs = {host.get_run(r)["workflowId"]: r for r in host.run_ids()}
    decisions = {
        workflow: [
            (e["payload"]["action"], e["payload"]["decidedBy"])
            for e in host.events(run_id)
            if e["type"] == "approval.received"
        ]
        for workflow, run_id in runs.items()
    }
    assert decisions == {
        "conformance-approval": [("accept", "ada")],
        LOOPBACK_ID: [("reject", "ada"), ("accept", "ada")],
    }
    assert all(host.get_run(r)["status"] == "completed" for r in runs.values())
    task_logs = {str(p): p.read_text(errors="replace") for p in (airflow.root / "home" / "logs").rglob("*.log")}
    in_triggerer = "".join(text for path, text in task_logs.items() if ".trigger." in path)
    assert "Waiting for an answer in Airflow to OpenWOP run" in in_triggerer
    everything = "".join(task_logs.values()) + "".join(airflow.log(name) for name in airflow.processes)
    assert "decided by ada in Airflow" in everything
    assert API_KEY not in everything
