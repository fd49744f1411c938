"""The README's main job, end to end: ``scripts/demo.py`` runs every example DAG through a real Airflow
and every example flow through a real Prefect against a local host (the environments must exist:
``scripts/run-tests.sh`` builds them before the tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)  # five Airflow processes and an ephemeral Prefect, one after the other
def test_demo_runs_workflows_from_airflow_and_prefect(capsys) -> None:
    for venv in (".venv-airflow", ".venv-prefect"):
        assert (ROOT / venv / "bin" / "python").exists(), f"{venv} is missing: run ./scripts/setup-envs.sh first"
    spec = importlib.util.spec_from_file_location("openwop_demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)

    rows = demo.main()

    printed = capsys.readouterr().out
    assert "airflow dags test example_openwop_run: ok" in printed
    assert "prefect flows: ok" in printed
    workflows = {row["workflow"] for row in rows}
    assert {"conformance-identity", "conformance-approval", "conformance-multi-node"} <= workflows
    assert all(row["status"] == "completed" for row in rows), rows
    approvals = [row for row in rows if row["workflow"] == "conformance-approval"]
    assert len(approvals) == 2  # one answered in Airflow (resolve operator), one through Prefect's resume API
    assert all(row["outputs"]["approval"]["action"] == "accept" for row in approvals)
    assert demo.API_KEY not in printed  # the demo never echoes the key it configured
