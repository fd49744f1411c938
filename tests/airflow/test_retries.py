"""Retries never start a second concurrent run: a retry reattaches to the run still going, returns the
outputs of one that completed, and starts afresh only after a failed or cancelled one. Runs are counted
on the host. Also: a kill of the worker cancels the run."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pendulum
import pytest
from airflow.sdk import DAG
from airflow_support import first_run, in_background, run_dag, unique_dag_id, wait_until

from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_core.reattach import next_key

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_retry_reattaches_to_the_run_still_going(devhost, capfd, deferrable):
    """Each try gives up after 2 s (timeout, cancel_on_kill=False) while the run takes 5 s: the retries
    reattach to the one run until it completes; the host never sees a second run."""
    with DAG(unique_dag_id("retry_reattach"), schedule=None, start_date=START) as dag:
        OpenwopRunOperator(
            task_id="run",
            workflow_id="conformance-delay",
            inputs={"delayMs": 5000},
            timeout=2,
            cancel_on_kill=False,
            deferrable=deferrable,
            retries=8,
            retry_delay=timedelta(0),
        )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    assert devhost.runs_created() == 1
    (run_id,) = devhost.run_ids()
    assert result.try_number("run") > 1
    assert f"Reattaching to OpenWOP run {run_id} started by an earlier try of this task" in result.output
    assert result.xcom("run", "run_id") == run_id


def test_retry_after_a_failed_run_starts_a_new_run(devhost, capfd):
    """A run that failed is not reattached: each retry starts a fresh run under the key after that run."""
    with DAG(unique_dag_id("retry_failed"), schedule=None, start_date=START) as dag:
        OpenwopRunOperator(
            task_id="run", workflow_id="conformance-failure", retries=2, retry_delay=timedelta(0), deferrable=True
        )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert result.try_number("run") == 3
    assert devhost.runs_created() == 3
    keys = [
        request["headers"].get("idempotency-key")
        for request in devhost.requests
        if request["method"] == "POST" and request["path"] == "/v1/runs"
    ]
    # base key, then one key after each failed run (each try replays the older ones first)
    base, after_first, after_second = dict.fromkeys(keys)
    first_run, second_run, _ = devhost.run_ids()
    assert (after_first, after_second) == (next_key(base, first_run), next_key(base, second_run))
    assert "ended failed; starting a new run" in result.output


def test_retry_after_a_cancelled_run_starts_a_new_run(devhost, capfd):
    """A run cancelled by a timed-out try is not reattached by the retry."""
    with DAG(unique_dag_id("retry_cancelled"), schedule=None, start_date=START) as dag:
        OpenwopRunOperator(
            task_id="run",
            workflow_id="conformance-cancellable",
            inputs={"delayMs": 60000},
            timeout=1,
            retries=1,
            retry_delay=timedelta(0),
        )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert devhost.runs_created() == 2
    assert all(devhost.wait_for_status(run_id)["status"] == "cancelled" for run_id in devhost.run_ids())
    assert "ended cancelled; starting a new run" in result.output


def test_rerun_of_the_same_task_instance_returns_the_completed_runs_outputs(devhost, capfd):
    """Running the same task instance again (same dag run id) after its run completed returns that run's
    outputs without starting another (as a retry after a worker crash would)."""
    with DAG(unique_dag_id("retry_completed"), schedule=None, start_date=START) as dag:
        OpenwopRunOperator(task_id="run", workflow_id="conformance-identity", inputs={"payload": {"x": 1}})
    when = pendulum.datetime(2025, 3, 1, tz="UTC")
    first = run_dag(dag, capfd, logical_date=when, run_after=when)
    second = run_dag(dag, capfd, logical_date=when, run_after=when)

    assert first.dag_run.run_id == second.dag_run.run_id
    assert second.state == "success"
    assert devhost.runs_created() == 1
    assert second.xcom("run") == {"payload": {"x": 1}}
    (run_id,) = devhost.run_ids()
    assert f"Reattaching to OpenWOP run {run_id}" in second.output


def test_kill_in_the_worker_cancels_the_run(devhost, capfd):
    """SIGTERM to the worker (what Airflow sends to kill a task) runs on_kill, which cancels the run."""
    with DAG(unique_dag_id("kill_sync"), schedule=None, start_date=START) as dag:
        OpenwopRunOperator(task_id="run", workflow_id="conformance-cancellable", inputs={"delayMs": 60000})

    def kill_when_running() -> None:
        run_id = first_run(devhost)
        wait_until(lambda: devhost.get_run(run_id)["status"] == "running")
        os.kill(os.getpid(), signal.SIGTERM)

    with in_background(kill_when_running):
        result = run_dag(dag, capfd)

    (run_id,) = devhost.run_ids()
    assert devhost.wait_for_status(run_id)["status"] == "cancelled"
    assert f"Cancelled OpenWOP run {run_id} (Airflow task killed)" in result.output
    assert result.ti_state("run") == "failed"
