"""Every example DAG in ``example_dags/airflow`` loads without errors and runs to success against the local
host with ``dag.test()`` (deferral included), reading the connection from AIRFLOW_CONN_OPENWOP_DEFAULT. The
human-in-the-loop example is answered on Airflow's REST API by a person (``ada``), from a background thread."""

from __future__ import annotations

from typing import Any

import pytest
from airflow_support import API_KEY, EXAMPLE_DAGS, AirflowUser, dag_bag, in_background, run_dag, wait_for_request

EXPECTED = {
    "example_openwop_run",
    "example_openwop_approval",
    "example_openwop_fork",
    "example_openwop_fan_out",
    "example_openwop_human_review",
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
    assert statuses == {"completed"}
    if dag_id == "example_openwop_run":
        assert result.xcom("report").startswith("workflow echoed {'requested_by': 'example_openwop_run'")
    elif dag_id == "example_openwop_fan_out":
        assert devhost.runs_created() == 3
        assert result.xcom("collect") == ["alpha", "beta", "gamma"]
    elif dag_id == "example_openwop_fork":
        assert devhost.runs_created() == 2
        fork_id = result.xcom("fork_run", "run_id")
        assert devhost.get_run(fork_id)["sourceRunId"] == result.xcom("original_run", "run_id")
    elif dag_id == "example_openwop_human_review":
        assert result.xcom("who_decided").startswith("accept by ada at ")
    elif dag_id == "example_openwop_approval":
        assert devhost.runs_created() == 1
        assert result.xcom("answer")["node_id"] == "gate"
