"""OpenLineage events of the run operators, as Airflow's OpenLineage provider emits them from a real
``airflow dags test`` (its own process, so the provider's settings and listener are those of a fresh
Airflow) to the file transport: START/COMPLETE of a run that created an artifact, of a fork of it, and
START/FAIL of a failing run. The provider is optional (extra ``[openlineage]``): without it the methods
return nothing and the operators import nothing of it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow_support import API_KEY, unique_dag_id

needs_provider = pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="the OpenLineage provider is not installed",
)

LINEAGE_DAG = """
import pendulum
from airflow.sdk import DAG
from openwop_airflow.operators.fork import OpenwopForkRunOperator
from openwop_airflow.operators.run import OpenwopRunOperator

with DAG("DAG_ID", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    made = OpenwopRunOperator(task_id="make", workflow_id="devhost-artifact", inputs={"data": {"rows": 3}})
    fork = OpenwopForkRunOperator(task_id="fork", source_run_id="{{ ti.xcom_pull('make', key='run_id') }}")
    made >> fork
    OpenwopRunOperator(task_id="fail", workflow_id="conformance-failure")
"""


def _task_events(path: Path, dag_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(task_id, eventType): event}`` of the task-level events of ``dag_id`` in the transport's file."""
    events = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        name = event["job"]["name"]
        if name.startswith(f"{dag_id}."):
            events[(name.removeprefix(f"{dag_id}."), event["eventType"])] = event
    return events


def test_without_the_provider_nothing_is_imported_and_the_methods_return_nothing(monkeypatch):
    """Importing the operators imports no OpenLineage; with the provider missing, the methods return None
    (Airflow's extractor then reports no lineage for the task)."""
    code = (
        "import sys; import openwop_airflow.operators.run, openwop_airflow.operators.fork; "
        "print(sorted(m for m in sys.modules if m.startswith(('openlineage', 'airflow.providers.openlineage.')) "
        "or m.endswith('lineage_facets')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Airflow itself reads every installed provider's get_provider_info; the operators load nothing more
    assert loaded.strip().splitlines()[-1] in ("[]", "['airflow.providers.openlineage.get_provider_info']")

    from openwop_airflow.operators.run import OpenwopRunOperator

    monkeypatch.setitem(sys.modules, "openwop_airflow.operators.lineage_facets", None)  # as if not installed
    operator = OpenwopRunOperator(task_id="t", workflow_id="w")
    assert operator.get_openlineage_facets_on_start() is None
    assert operator.get_openlineage_facets_on_complete(None) is None


@needs_provider
@pytest.mark.timeout(240)
def test_dags_test_emits_the_openwop_run_in_lineage_events(devhost, tmp_path):
    dag_id = unique_dag_id("lineage")
    dag_file = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    dag_file.write_text(LINEAGE_DAG.replace("DAG_ID", dag_id))
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "openwop-tests",
    }
    try:
        process = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
        )
    finally:
        dag_file.unlink()
    output = process.stdout + process.stderr
    assert events_file.exists(), output[-5000:]
    text = events_file.read_text()
    assert API_KEY not in text and API_KEY not in output
    events = _task_events(events_file, dag_id)
    host = devhost.base_url
    runs = {devhost.get_run(run_id)["workflowId"]: run_id for run_id in devhost.run_ids()}

    # START names the host and the workflow about to run (no run id yet)
    started = events[("make", "START")]["run"]["facets"]["openwopRun"]
    assert started["host"] == host and started["workflowId"] == "devhost-artifact"
    assert started.get("runId") is None

    # COMPLETE: the run, its status, duration, link and workflow version; its artifact is an output dataset
    complete = events[("make", "COMPLETE")]
    facet = complete["run"]["facets"]["openwopRun"]
    made = facet["runId"]
    assert made in devhost.run_ids()
    assert facet["status"] == "completed" and facet["workflowVersion"] == "1.0"
    assert facet["runUrl"] == f"{host}/v1/runs/{made}"
    assert facet["durationSeconds"] >= 0
    assert facet["_schemaURL"].endswith("#/$defs/OpenwopRunFacet")
    assert complete["run"]["facets"]["externalQuery"] == {
        **complete["run"]["facets"]["externalQuery"],
        "externalQueryId": made,
        "source": host,
    }
    (artifact_id,) = [e["payload"]["artifactId"] for e in devhost.events(made) if e["type"] == "artifact.created"]
    assert [(o["namespace"], o["name"]) for o in complete["outputs"]] == [
        (host, f"runs/{made}/artifacts/{artifact_id}")
    ]

    # the fork names its source
    forked = events[("fork", "COMPLETE")]["run"]["facets"]["openwopRun"]
    assert forked["sourceRunId"] == made and forked["status"] == "completed"
    assert forked["workflowId"] == "devhost-artifact" and forked["runId"] != made

    # FAIL carries the remote error
    failed = events[("fail", "FAIL")]["run"]["facets"]
    assert failed["openwopRun"]["runId"] == runs["conformance-failure"]
    assert failed["openwopRun"]["status"] == "failed"
    assert failed["openwopRun"]["errorCode"] == "conformance_test_failure"
    assert failed["openwopRun"]["errorMessage"]
    assert failed["openwopErrorMessage"]["message"].startswith("conformance_test_failure: ")
    assert "conformance_test_failure" in failed["errorMessage"]["message"]  # Airflow's own, from the exception
