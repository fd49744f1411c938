"""Every example DAG in ``example_dags/airflow`` loads without errors and runs to success against the local
host with ``dag.test()`` (deferral included), reading the connection from AIRFLOW_CONN_OPENWOP_DEFAULT. The
human-in-the-loop example is answered on Airflow's REST API by a person (``ada``), from a background thread."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from airflow_support import API_KEY, EXAMPLE_DAGS, AirflowUser, dag_bag, in_background, run_dag, wait_for_request

EXPECTED = {
    "example_openwop_run",
    "example_openwop_approval",
    "example_openwop_fork",
    "example_openwop_fan_out",
    "example_openwop_human_review",
    "example_openwop_asset_producer",
    "example_openwop_asset_consumer",
}


@pytest.fixture(scope="module")
def example_bag() -> Any:
    return dag_bag(EXAMPLE_DAGS)


def test_example_dags_load_without_errors(example_bag):
    assert example_bag.import_errors == {}
    assert set(example_bag.dag_ids) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_example_dag_runs_to_success(example_bag, devhost, capfd, dag_id):
    if dag_id == "example_openwop_human_review":
        ada = AirflowUser("ada")

        def approve() -> None:
            response = ada.respond(wait_for_request(ada, dag_id), ["Approve"], {"feedback": "ship it"})
            assert response.status_code == 200, response.text

        with in_background(approve):
            result = run_dag(example_bag.get_dag(dag_id), capfd)
    else:
        result = run_dag(example_bag.get_dag(dag_id), capfd)

    assert result.state == "success", dag_id
    assert API_KEY not in result.output
    statuses = {devhost.get_run(run_id)["status"] for run_id in devhost.run_ids()}
    assert statuses == (set() if dag_id == "example_openwop_asset_consumer" else {"completed"})
    if dag_id == "example_openwop_run":
        assert result.xcom("report").startswith("workflow echoed {'requested_by': 'example_openwop_run'")
        # the run outlasts the operator's start, so the task defers and the trigger logs each node's progress
        run_id = result.xcom("run_workflow", "run_id")
        progress_lines = (
            "run started (workflow example-report)",
            "node fetch completed in",
            "node review completed in",
            "node echo completed in",
            "run completed",
        )
        for progress in progress_lines:
            assert f"OpenWOP run {run_id}: {progress}" in result.output, progress
        # the "OpenWOP run" link (the run_url XCom), opened in a browser, shows the local host's page of the run
        page = httpx.get(result.xcom("run_workflow", "run_url"), headers={"Accept": "text/html,*/*;q=0.8"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert run_id in page.text and "example-report" in page.text and "node.completed" in page.text
    elif dag_id == "example_openwop_fan_out":
        assert devhost.runs_created() == 3
        assert result.xcom("collect") == ["alpha", "beta", "gamma"]
    elif dag_id == "example_openwop_fork":
        assert devhost.runs_created() == 2
        fork_id = result.xcom("fork_run", "run_id")
        assert devhost.get_run(fork_id)["sourceRunId"] == result.xcom("original_run", "run_id")
    elif dag_id == "example_openwop_human_review":
        assert result.xcom("who_decided").startswith("accept by ada at ")
    elif dag_id == "example_openwop_asset_consumer":
        # run by hand (no asset event): it says so and succeeds; tests/airflow/test_assets.py runs it triggered
        assert result.xcoms("which_run") == {}  # it returned None
        assert "No OpenWOP run's asset event triggered this DAG run" in result.output
    elif dag_id == "example_openwop_approval":
        assert devhost.runs_created() == 1
        assert result.xcom("answer")["node_id"] == "gate"
