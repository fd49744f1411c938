"""The shipped flow deployed as users deploy it: a real ``prefect server start`` (its own SQLite home), a real
``prefect worker start`` on a process work pool, a saved ``OpenwopCredentials`` block chosen by reference
(``{"$ref": {"block_document_id": ...}}``, as the Prefect UI sends it), and the local OpenWOP host.

Both entrypoint shapes are covered: a file path into the package (``openwop_prefect/flows.py:...``, what
``from_source``/``to_deployment`` write; it used to load a second ``OpenwopCredentials`` class and fail the
parameter validation) and the module path that ``docs/prefect.md`` recommends for ``.deploy()``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings
from prefect.types.entrypoint import EntrypointType
from prefect_support import SECRET_KEY

import openwop_prefect
from openwop_devhost import DevHost
from openwop_prefect import OpenwopCredentials, run_openwop_workflow

REPO_ROOT = Path(openwop_prefect.__file__).resolve().parent.parent
PREFECT_CLI = Path(sys.executable).with_name("prefect")
POOL = "openwop-process-pool"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the process and everything it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # children that outlived their parent (a flow run process)
        os.killpg(process.pid, signal.SIGKILL)


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.fixture(scope="module")
def prefect_stack() -> Iterator[dict[str, Any]]:
    """A real Prefect server and a real process worker, each in its own process group, stopped afterwards."""
    home = Path(tempfile.mkdtemp(prefix="openwop-prefect-deploy-"))
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
    }
    started: list[subprocess.Popen[bytes]] = []
    try:
        server_log = home / "server.log"
        with server_log.open("wb") as out:
            started.append(
                subprocess.Popen(
                    [str(PREFECT_CLI), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=home,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 240  # a slow, shared machine: not a timing assertion
        while True:
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if started[0].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prefect server did not start:\n{_log_tail(server_log)}")
            time.sleep(0.5)
        worker_log = home / "worker.log"
        with temporary_settings({PREFECT_API_URL: api_url, PREFECT_LOCAL_STORAGE_PATH: home / "results"}):
            with get_client(sync_client=True) as client:
                client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
            with worker_log.open("wb") as out:
                started.append(
                    subprocess.Popen(
                        [str(PREFECT_CLI), "worker", "start", "--pool", POOL],
                        env=env,
                        cwd=home,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            yield {"api_url": api_url, "worker_log": worker_log, "server_log": server_log}
    finally:
        for process in reversed(started):
            _stop(process)


def _run_with_block_reference(deployment_id: Any, block_id: Any, host: DevHost, worker_log: Path) -> FlowRun:
    flow_run = run_deployment(
        deployment_id,
        parameters={
            "credentials": {"$ref": {"block_document_id": str(block_id)}},
            "workflow_id": "conformance-identity",
            "inputs": {"payload": {"answer": 42}},
            "check_interval": 1,
        },
        timeout=0,
    )
    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run.id)
            if flow_run.state is not None and flow_run.state.is_final():
                return flow_run
            if time.monotonic() > deadline:
                pytest.fail(f"the worker did not finish flow run {flow_run.id}:\n{_log_tail(worker_log)}")
            time.sleep(0.5)


def test_shipped_flow_deployed_to_a_process_worker_runs_with_a_block_chosen_by_reference(
    prefect_stack: dict[str, Any],
) -> None:
    with DevHost(api_key=SECRET_KEY) as host:
        block_id = OpenwopCredentials(base_url=host.base_url, api_key=SECRET_KEY).save("deployed", overwrite=True)
        from_file = run_openwop_workflow.from_source(
            source=str(REPO_ROOT), entrypoint="openwop_prefect/flows.py:run_openwop_workflow"
        ).deploy(name="from-file-entrypoint", work_pool_name=POOL, print_next_steps=False)
        from_module = run_openwop_workflow.deploy(
            name="from-module-entrypoint",
            work_pool_name=POOL,
            entrypoint_type=EntrypointType.MODULE_PATH,
            print_next_steps=False,
        )

        for deployment_id in (from_file, from_module):
            flow_run = _run_with_block_reference(deployment_id, block_id, host, prefect_stack["worker_log"])
            assert flow_run.state is not None
            assert flow_run.state.is_completed(), f"{flow_run.state.message}\n{_log_tail(prefect_stack['worker_log'])}"
            assert flow_run.state.result() == {"payload": {"answer": 42}}

        assert host.runs_created("conformance-identity") == 2
        for run_id in host.run_ids():
            assert host.get_run(run_id)["status"] == "completed"
    worker_output = prefect_stack["worker_log"].read_text(errors="replace")
    assert "matches existing registered type" not in worker_output  # no second OpenwopCredentials class
    assert SECRET_KEY not in worker_output
