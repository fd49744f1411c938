"""The other operators end to end with ``dag.test()``: answering interrupts (by run and node, by token,
retried), the run sensor (poke and deferred), forking a run, and cancelling one."""

from __future__ import annotations

import json
from datetime import timedelta

import pendulum
import pytest
from airflow.sdk import DAG
from airflow_support import API_KEY, connection_json, in_background, run_dag, unique_dag_id, wait_until

from openwop_airflow.operators.cancel import OpenwopCancelRunOperator
from openwop_airflow.operators.fork import OpenwopForkRunOperator
from openwop_airflow.operators.interrupts import OpenwopResolveInterruptOperator
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_airflow.sensors.run import OpenwopRunSensor
from openwop_core import OpenwopClient

START = pendulum.datetime(2024, 1, 1, tz="UTC")


def start_run(host, workflow_id: str, inputs: dict | None = None, *, wait_status: str | None = None) -> str:
    with OpenwopClient(host.base_url, api_key=API_KEY) as client:
        run_id = client.runs_create(workflow_id, inputs).run_id
    if wait_status:
        host.wait_for_status(run_id, {wait_status})
    return run_id


# -- interrupts ------------------------------------------------------------------------------------


def test_approval_flow_run_return_resolve_then_sensor(devhost, capfd):
    """start (on_interrupt='return') -> resolve from the XCom interrupt -> sensor waits for completion."""
    with DAG(unique_dag_id("approval_flow"), schedule=None, start_date=START) as dag:
        start = OpenwopRunOperator(
            task_id="start", workflow_id="conformance-approval", on_interrupt="return", deferrable=True
        )
        approve = OpenwopResolveInterruptOperator(
            task_id="approve",
            run_id="{{ ti.xcom_pull(task_ids='start', key='run_id') }}",
            node_id="{{ ti.xcom_pull(task_ids='start', key='interrupt')['node_id'] }}",
            resume_value={"action": "accept", "feedback": "approved by {{ dag.dag_id }}"},
        )
        done = OpenwopRunSensor(
            task_id="done", run_id="{{ ti.xcom_pull(task_ids='start', key='run_id') }}", deferrable=True
        )
        start >> approve >> done
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    assert devhost.get_run(run_id)["status"] == "completed"
    assert result.xcom("approve")["status"] in ("running", "completed")
    assert result.xcom("done", "run_url").endswith(f"/v1/runs/{run_id}")
    assert f"Answered node gate of run {run_id}" in result.output


def test_resolve_by_token_with_a_json_string(devhost, capfd):
    """token= instead of run and node; resume_value as JSON text. No API key is needed on that route."""
    run_id = start_run(devhost, "conformance-clarification", wait_status="waiting-input")
    (interrupt,) = devhost.open_interrupts(run_id)
    with DAG(unique_dag_id("resolve_token"), schedule=None, start_date=START) as dag:
        OpenwopResolveInterruptOperator(
            task_id="answer", token=interrupt["token"], resume_value='{"answers": {"q1": "{{ dag.dag_id }}"}}'
        )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    assert devhost.wait_for_status(run_id)["status"] == "completed"
    assert interrupt["token"] not in result.output.replace(interrupt["token"][:12], "")


def test_resolve_with_invalid_json_fails_naming_the_argument(devhost, capfd):
    run_id = start_run(devhost, "conformance-approval", wait_status="waiting-approval")
    with DAG(unique_dag_id("resolve_bad_json"), schedule=None, start_date=START) as dag:
        OpenwopResolveInterruptOperator(task_id="answer", run_id=run_id, node_id="gate", resume_value='{"action": ')
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert "resume_value is not valid JSON" in result.output
    assert devhost.get_run(run_id)["status"] == "waiting-approval"


def test_resolve_on_a_node_that_does_not_wait_fails_with_the_host_error(devhost, capfd):
    run_id = start_run(devhost, "conformance-approval", wait_status="waiting-approval")
    with DAG(unique_dag_id("resolve_wrong_node"), schedule=None, start_date=START) as dag:
        OpenwopResolveInterruptOperator(
            task_id="answer", run_id=run_id, node_id="not-a-node", resume_value={"action": "accept"}
        )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert f"Could not answer node not-a-node of run {run_id}" in result.output
    assert "HTTP 404" in result.output


def test_retry_after_the_answer_landed_is_treated_as_done(devhost, capfd, monkeypatch):
    """Try 1's answer reaches the host but its response is lost (the client times out); try 2 sends a
    different body under the same key (409) and succeeds because the run has left the waiting state."""
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, timeout=0.5, max_attempts=1))
    run_id = start_run(devhost, "conformance-approval", wait_status="waiting-approval")
    devhost.set_faults(latency_ms=3000)

    def heal_once_answered() -> None:
        wait_until(lambda: devhost.get_run(run_id)["status"] != "waiting-approval")
        devhost.set_faults(latency_ms=0)

    with DAG(unique_dag_id("resolve_retry"), schedule=None, start_date=START) as dag:
        OpenwopResolveInterruptOperator(
            task_id="answer",
            run_id=run_id,
            node_id="gate",
            resume_value={"action": "accept", "feedback": "try {{ ti.try_number }}"},
            retries=1,
            retry_delay=timedelta(0),
        )
    with in_background(heal_once_answered):
        result = run_dag(dag, capfd)

    assert result.state == "success"
    assert result.try_number("answer") == 2
    assert f"Node gate of run {run_id} was already answered (idempotency_key_mismatch)" in result.output
    assert devhost.wait_for_status(run_id)["status"] == "completed"


# -- sensor ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferred"])
def test_sensor_succeeds_with_the_outputs(devhost, capfd, deferrable):
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 1000})
    with DAG(unique_dag_id("sensor_ok"), schedule=None, start_date=START) as dag:
        OpenwopRunSensor(task_id="wait", run_id=run_id, poke_interval=0.2, deferrable=deferrable)
    result = run_dag(dag, capfd)

    assert result.state == "success"
    assert devhost.get_run(run_id)["status"] == "completed"
    assert result.xcom("wait") == devhost.get_run(run_id)["variables"]


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferred"])
def test_sensor_fails_with_the_remote_error(devhost, capfd, deferrable):
    run_id = start_run(devhost, "conformance-failure")
    with DAG(unique_dag_id("sensor_fail"), schedule=None, start_date=START) as dag:
        OpenwopRunSensor(task_id="wait", run_id=run_id, poke_interval=0.2, deferrable=deferrable)
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert f"OpenWOP run {run_id} ended failed: conformance_test_failure: Intentional conformance failure" in (
        result.output
    )


def test_deferred_sensor_times_out_without_touching_the_run(devhost, capfd):
    run_id = start_run(devhost, "conformance-cancellable", {"delayMs": 60000})
    with DAG(unique_dag_id("sensor_timeout"), schedule=None, start_date=START) as dag:
        OpenwopRunSensor(task_id="wait", run_id=run_id, timeout=1, deferrable=True)
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert f"OpenWOP run {run_id} did not complete within 1" in result.output
    assert devhost.get_run(run_id)["status"] == "running"


# -- fork ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["replay", "branch"])
def test_fork_from_a_sequence_waits_for_the_fork(devhost, capfd, mode):
    """Fork a completed run from one of its events; the fork is followed like any run, and running the
    same task instance again reattaches to that fork instead of forking twice."""
    source = start_run(devhost, "conformance-identity", {"payload": {"v": 42}})
    devhost.wait_for_status(source)
    seq = devhost.events(source)[1]["sequence"]
    with DAG(unique_dag_id(f"fork_{mode}"), schedule=None, start_date=START) as dag:
        OpenwopForkRunOperator(
            task_id="fork", source_run_id=source, mode=mode, from_seq="{{ params.seq }}", deferrable=True, params={}
        )
    dag.params["seq"] = seq
    when = pendulum.datetime(2025, 4, 1, tz="UTC")
    result = run_dag(dag, capfd, logical_date=when, run_after=when)

    assert result.state == "success"
    assert devhost.runs_created() == 2
    fork_id = result.xcom("fork", "run_id")
    assert fork_id != source
    fork = devhost.get_run(fork_id)
    assert fork["status"] == "completed"
    assert fork.get("sourceRunId", source) == source
    assert result.xcom("fork") == {"payload": {"v": 42}}

    again = run_dag(dag, capfd, logical_date=when, run_after=when)
    assert again.state == "success"
    assert devhost.runs_created() == 2
    assert again.xcom("fork", "run_id") == fork_id


def test_fork_rejects_a_bad_sequence(devhost, capfd):
    with DAG(unique_dag_id("fork_bad_seq"), schedule=None, start_date=START) as dag:
        OpenwopForkRunOperator(task_id="fork", source_run_id="run_x", from_seq="soon")
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert "from_seq must be an event sequence (an integer >= 0), got 'soon'" in result.output


# -- cancel ----------------------------------------------------------------------------------------


def test_cancel_operator_cancels_a_running_run_and_accepts_a_finished_one(devhost, capfd):
    running = start_run(devhost, "conformance-cancellable", {"delayMs": 60000}, wait_status="running")
    finished = start_run(devhost, "conformance-identity", {"payload": {}})
    devhost.wait_for_status(finished)
    with DAG(unique_dag_id("cancel"), schedule=None, start_date=START) as dag:
        OpenwopCancelRunOperator(task_id="cancel_running", run_id=running, reason="stop {{ dag.dag_id }}")
        OpenwopCancelRunOperator(task_id="cancel_finished", run_id=finished)
    result = run_dag(dag, capfd)

    assert result.state == "success"
    assert devhost.wait_for_status(running)["status"] == "cancelled"
    assert result.xcom("cancel_running") in ("cancelling", "cancelled")
    assert result.xcom("cancel_finished") == "completed"
    assert f"OpenWOP run {finished} had already finished (completed); nothing to cancel." in result.output
    json.dumps(list(result.xcoms().values()))
