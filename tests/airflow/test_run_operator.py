"""``OpenwopRunOperator`` end to end: real DAGs run with ``dag.test()`` against the local host, in the
worker and deferred (the trigger runs inline)."""

from __future__ import annotations

import json
from datetime import timedelta

import pendulum
import pytest
from airflow.sdk import DAG
from airflow_support import API_KEY, connection_json, run_dag, run_operator_dag, unique_dag_id

from openwop_airflow.exceptions import OpenwopWaitTimeoutException
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.operators.run import OpenwopRunOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_run_returns_outputs_and_publishes_run_id_and_url(devhost, capfd, monkeypatch, deferrable):
    """The task returns the run's outputs, pushes run_id/run_url (built from ui_base_url) and logs progress."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, ui_base_url="https://ui.example.test/app")
    )
    dag = run_operator_dag(
        "run_outputs",
        workflow_id="conformance-identity",
        inputs={"payload": {"dag": "{{ dag.dag_id }}", "n": 3}},
        tags=["airflow-test"],
        deferrable=deferrable,
    )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    assert result.xcom("run", "return_value") == {"payload": {"dag": dag.dag_id, "n": 3}}
    assert result.xcom("run", "run_id") == run_id
    assert result.xcom("run", "run_url") == f"https://ui.example.test/app/runs/{run_id}"
    # the "OpenWOP run" extra link, as Airflow stores it for the UI
    assert result.xcom("run", "_link_OpenwopRunLink") == f"https://ui.example.test/app/runs/{run_id}"
    assert devhost.get_run(run_id)["tags"] == ["airflow-test"]
    assert f"OpenWOP run {run_id} (started)" in result.output


def test_deferred_wait_logs_remote_progress(devhost, capfd):
    """While deferred, the trigger logs each node as it completes (describe_event lines)."""
    dag = run_operator_dag("run_progress", workflow_id="conformance-delay", inputs={"delayMs": 1200}, deferrable=True)
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    assert f"OpenWOP run {run_id}: run started (workflow conformance-delay)" in result.output
    assert f"OpenWOP run {run_id}: node delay completed" in result.output
    assert f"OpenWOP run {run_id}: run completed" in result.output
    assert "[DAG TEST] running trigger in line" in result.output


def test_inputs_from_json_template_file(devhost, capfd, tmp_path):
    """``inputs`` may name a .json template file: it is rendered with Jinja and sent as an object."""
    (tmp_path / "inputs.json").write_text('{"payload": {"run": "{{ run_id }}", "list": [1, 2]}}')
    with DAG(
        unique_dag_id("run_json_file"),
        schedule=None,
        start_date=START,
        template_searchpath=[str(tmp_path)],
    ) as dag:
        OpenwopRunOperator(task_id="run", workflow_id="conformance-identity", inputs="inputs.json")
    result = run_dag(dag, capfd)

    assert result.state == "success"
    outputs = result.xcom("run", "return_value")
    assert outputs["payload"]["list"] == [1, 2]
    assert outputs["payload"]["run"] == result.dag_run.run_id


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_failed_run_fails_the_task_with_the_remote_error(devhost, capfd, deferrable):
    """A failed run fails the task; the message carries the remote error code and message."""
    dag = run_operator_dag("run_failure", workflow_id="conformance-failure", deferrable=deferrable)
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert result.ti_state("run") == "failed"
    (run_id,) = devhost.run_ids()
    assert "OpenwopRunFailedException" in result.output
    assert (
        f"OpenWOP run {run_id} ended failed: conformance_test_failure: Intentional conformance failure" in result.output
    )


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_on_interrupt_return_pushes_the_interrupt(devhost, capfd, deferrable):
    """on_interrupt='return': the task succeeds while the run waits, with the interrupt in XCom."""
    dag = run_operator_dag(
        "run_return", workflow_id="conformance-approval", on_interrupt="return", deferrable=deferrable
    )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    assert devhost.get_run(run_id)["status"] == "waiting-approval"
    interrupt = result.xcom("run", "interrupt")
    assert interrupt["run_id"] == run_id
    assert interrupt["node_id"] == "gate"
    assert interrupt["kind"] == "approval"
    assert interrupt["title"] == "Conformance approval"
    assert interrupt["actions"] == ["accept", "reject"]
    assert interrupt["resume_schema"]["required"] == ["action"]
    json.dumps(interrupt)


def test_on_interrupt_fail_fails_and_leaves_the_run_waiting(devhost, capfd):
    """on_interrupt='fail': the task fails naming the node and kind; the run is left waiting."""
    dag = run_operator_dag(
        "run_fail_on_interrupt", workflow_id="conformance-approval", on_interrupt="fail", deferrable=True
    )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert "OpenwopRunInterruptedException" in result.output
    assert f"OpenWOP run {run_id} stopped: node gate waits for approval" in result.output
    assert devhost.get_run(run_id)["status"] == "waiting-approval"


def test_wait_for_completion_false_returns_the_run_id(devhost, capfd):
    """wait_for_completion=False returns the run id right after the start."""
    dag = run_operator_dag(
        "run_no_wait", workflow_id="conformance-delay", inputs={"delayMs": 5000}, wait_for_completion=False
    )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    assert result.xcom("run", "return_value") == run_id
    assert devhost.get_run(run_id)["status"] == "running"


def test_poll_interval_on_a_host_without_sse(devhost, capfd):
    """With poll_interval the operator reads snapshots (works against a host whose /events answers 404)."""
    devhost.set_faults(sse_unavailable=True)
    dag = run_operator_dag(
        "run_polling",
        workflow_id="conformance-delay",
        inputs={"delayMs": 800},
        poll_interval=0.2,
    )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    assert f"OpenWOP run {run_id}: status completed" in result.output


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_timeout_cancels_the_remote_run(devhost, capfd, deferrable):
    """``timeout`` passing fails the task and cancels the run (best effort, logged)."""
    dag = run_operator_dag(
        "run_timeout",
        workflow_id="conformance-cancellable",
        inputs={"delayMs": 60000},
        timeout=1.5,
        deferrable=deferrable,
    )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert devhost.wait_for_status(run_id)["status"] == "cancelled"
    assert "OpenwopWaitTimeoutException" in result.output
    assert f"OpenWOP run {run_id} did not finish within the task's timeout of 1.5s (last status" in result.output
    assert "; it was cancelled." in result.output


def test_a_timeout_that_finds_the_run_already_finished_says_so(devhost):
    """The wait could not see the run end (its host was unreachable from the triggerer, say) and the timeout's
    cancel finds the run finished: the error says so, instead of "it was cancelled" after a log line that
    said the run had already finished."""
    run_id = OpenwopHook().get_conn().runs_create("conformance-noop").run_id
    devhost.wait_for_status(run_id)
    operator = OpenwopRunOperator(task_id="late", workflow_id="conformance-noop", timeout=75)
    with pytest.raises(OpenwopWaitTimeoutException) as caught:
        operator._timed_out(
            run_id, last_status="running", last_sequence=0, unreachable_since=1.0, host_error="Could not connect"
        )
    text = str(caught.value)
    assert "it had finished by then (completed), which the wait did not see, so nothing was cancelled" in text
    assert "it was cancelled" not in text
    assert devhost.get_run(run_id)["status"] == "completed"


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_execution_timeout_cancels_the_remote_run(devhost, capfd, deferrable):
    """``execution_timeout`` cancels the run too: in the worker through on_kill, while deferred through the
    deadline handed to the trigger (handled in execute_complete)."""
    dag = run_operator_dag(
        "run_exec_timeout",
        workflow_id="conformance-cancellable",
        inputs={"delayMs": 60000},
        execution_timeout=timedelta(seconds=6),
        deferrable=deferrable,
    )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert devhost.wait_for_status(run_id)["status"] == "cancelled"
    assert f"Cancelled OpenWOP run {run_id} (Airflow task" in result.output


def test_cancel_on_kill_false_leaves_the_run_running(devhost, capfd):
    """With cancel_on_kill=False a timeout fails the task but leaves the run alone."""
    dag = run_operator_dag(
        "run_timeout_keep",
        workflow_id="conformance-cancellable",
        inputs={"delayMs": 60000},
        timeout=1,
        cancel_on_kill=False,
    )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert devhost.get_run(run_id)["status"] == "running"
    assert "it was left running" in result.output
    assert API_KEY not in result.output
