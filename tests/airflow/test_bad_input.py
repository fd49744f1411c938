"""Bad input fails the task with a message naming the cause: a missing connection, an unknown workflow,
a rejected key, an unreachable host, inputs that are not JSON, inputs the workflow refuses."""

from __future__ import annotations

import json
import socket

import pendulum
import pytest
from airflow.sdk import DAG
from airflow_support import API_KEY, connection_json, run_dag, unique_dag_id

from openwop_airflow.operators.run import OpenwopRunOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_each_bad_input_fails_its_task_with_the_cause(devhost, capfd, monkeypatch, deferrable):
    port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_KEY", connection_json(devhost, api_key="not-the-key"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNREACHABLE",
        json.dumps(
            {
                "conn_type": "openwop",
                "host": f"http://127.0.0.1:{port}",
                "password": API_KEY,
                "extra": {"max_attempts": 1},
            }
        ),
    )
    cases = {
        "missing_connection": (
            {"openwop_conn_id": "nope", "workflow_id": "conformance-noop"},
            "OpenWOP connection 'nope' is not defined",
        ),
        "unknown_workflow": (
            {"workflow_id": "no-such-workflow"},
            "Could not start OpenWOP workflow 'no-such-workflow': POST /v1/runs failed with HTTP 404 workflow_not_found",
        ),
        "rejected_key": (
            {"openwop_conn_id": "wrong_key", "workflow_id": "conformance-noop"},
            "Could not start OpenWOP workflow 'conformance-noop': POST /v1/runs failed with HTTP 401",
        ),
        "unreachable_host": (
            {"openwop_conn_id": "unreachable", "workflow_id": "conformance-noop"},
            f"Could not connect to http://127.0.0.1:{port} (POST /v1/runs)",
        ),
        "inputs_not_json": ({"workflow_id": "conformance-noop", "inputs": '{"a": '}, "inputs is not valid JSON"),
        "inputs_not_an_object": (
            {"workflow_id": "conformance-noop", "inputs": "[1, 2]"},
            "inputs must be a JSON object",
        ),
        "inputs_not_serialisable": (
            {"workflow_id": "conformance-noop", "inputs": {"when": {1, 2}}},
            "inputs is not JSON-serialisable",
        ),
        "inputs_refused": (
            {"workflow_id": "conformance-delay", "inputs": {"delayMs": "soon"}},
            "POST /v1/runs failed with HTTP 400 validation_error",
        ),
    }
    with DAG(unique_dag_id("bad_input"), schedule=None, start_date=START) as dag:
        for task_id, (kwargs, _) in cases.items():
            OpenwopRunOperator(task_id=task_id, deferrable=deferrable, **kwargs)
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    for task_id, (_, message) in cases.items():
        assert result.ti_state(task_id) == "failed", task_id
        assert message in result.output, task_id
    assert devhost.runs_created() == 0
    assert API_KEY not in result.output
