"""The production-topology tool (``tests/prod_topology.py``, ``make prod``) itself: what a person sees when a
bring-up cannot start or a process dies, and that it stops what it started."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_hygiene import is_running
from prod_topology import Topology, TopologyError


def test_a_taken_port_is_named_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        topo = Topology(tmp_path, ports={"airflow": port}, verbose=False)
        with pytest.raises(TopologyError) as caught:
            topo.up(["airflow"])
    assert f"port {port} for airflow is taken" in str(caught.value)
    assert f"PROD_AIRFLOW_PORT={port + 1} make prod" in str(caught.value)
    assert topo.processes == {}


def test_a_process_that_dies_shows_its_log_without_access_lines(tmp_path):
    topo = Topology(tmp_path, verbose=False)
    script = (
        "import sys; print('INFO uvicorn.access 127.0.0.1 \"GET /api/v2/monitor/health HTTP/1.1\" 200'); "
        "print('ERROR the real cause'); sys.exit(3)"
    )
    topo.start("component", [sys.executable, "-c", script])
    try:
        with pytest.raises(TopologyError) as caught:
            topo.wait_until("the component to answer", lambda: False, 60, watch=["component"], every=0.1)
    finally:
        topo.stop_all()
    message = str(caught.value)
    assert "component exited (code 3)" in message
    assert "ERROR the real cause" in message
    assert "monitor/health" not in message


def test_stop_all_ends_each_process_group(tmp_path):
    topo = Topology(tmp_path, verbose=False)
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"
    process = topo.start("parent", [sys.executable, "-c", child])
    topo.stop_all()
    assert process.poll() is not None


def test_extra_prefect_settings_reach_the_server_cli_and_workers(tmp_path):
    topo = Topology(tmp_path, prefect_env={"PREFECT_WORKER_QUERY_SECONDS": "1"}, prefect_worker_limit=3, verbose=False)
    env = topo.prefect_env()
    assert env["PREFECT_WORKER_QUERY_SECONDS"] == "1"
    assert env["PREFECT_API_URL"] == topo.prefect_api_url
    assert topo.prefect_worker_limit == 3


def test_a_timed_out_wait_says_what_it_saw_instead(tmp_path):
    topo = Topology(tmp_path, verbose=False)
    with pytest.raises(TopologyError) as caught:
        topo.wait_until("all waits deferred", lambda: False, 0.2, every=0.05, describe=lambda: "{'queued': 3}")
    assert str(caught.value).startswith(
        "timed out after 0s waiting for all waits deferred; seen instead: {'queued': 3}"
    )


def test_an_ended_orphan_is_not_running_though_its_zombie_stays(tmp_path):
    """A process whose parent died is re-parented to pytest (the subreaper), which never reaps it: once it ends it
    stays in /proc as a zombie. ``is_running`` must say it ended (the Prefect failover test waited 900 s on two
    such flow-run processes of the killed worker)."""
    marker = tmp_path / "go"
    orphan = f"while [ ! -e {marker} ]; do sleep 0.05; done"
    pid = int(
        subprocess.run(
            ["sh", "-c", f"sh -c '{orphan}' >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert is_running(pid)
    marker.touch()
    deadline = time.monotonic() + 30
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(pid)
    assert Path(f"/proc/{pid}").exists()  # the zombie: what a check of /proc alone took for a live process


def test_a_failed_try_is_explained_from_its_task_and_trigger_logs(tmp_path):
    """Why a try failed, per try: warnings and errors with their exceptions, from the task's log and its trigger's
    (``attempt=N.log.trigger.<job>.log``); info lines, plain-text lines and other tasks are left out."""
    topo = Topology(tmp_path, verbose=False)
    task = topo.airflow_task_logs("d") / "run_id=manual__1" / "task_id=t"
    task.mkdir(parents=True)
    (task / "attempt=1.log").write_text(
        '{"level": "info", "event": "Filling up the DagBag"}\n'
        "not json: a line printed by a library\n"
        '{"level": "error", "event": "Task failed with exception", "error_detail": '
        '[{"exc_type": "AirflowException", "exc_value": "Could not start it", "frames": []}]}\n'
    )
    (task / "attempt=1.log.trigger.7.log").write_text('{"level": "warning", "event": "lost contact"}\n')
    (task / "attempt=2.log").write_text('{"level": "info", "event": "OpenWOP run r (reattached)"}\n')
    other = topo.airflow_task_logs("d") / "run_id=manual__1" / "task_id=t2"
    other.mkdir()
    (other / "attempt=1.log").write_text('{"level": "error", "event": "not this task"}\n')
    assert topo.airflow_task_problems("d", "t") == {
        1: ["error: Task failed with exception (AirflowException: Could not start it)", "warning: lost contact"]
    }
    assert topo.airflow_task_problems("d", "missing") == {}


def test_a_try_whose_celery_workload_failed_is_explained_from_the_workers_log(tmp_path):
    """A try that never ran (the task process's calls to the execution API timed out, as in a CI run with 100
    tasks starting at once): its own log has one info line; the Celery worker's log says why."""
    topo = Topology(tmp_path, verbose=False)
    task = topo.airflow_task_logs("d") / "run_id=manual__1" / "task_id=t"
    task.mkdir(parents=True)
    (task / "attempt=1.log").write_text('{"level": "info", "event": "::group::Pre Execute"}\n')
    topo.logs.mkdir(parents=True, exist_ok=True)
    (topo.logs / "airflow-celery-worker-2.log").write_text(
        "2026-12-08T04:40:01Z [info     ] [2c06dad1-90] Executing workload in Celery: dag_rel_path=PurePosixPath('x.py') "
        "log_path='dag_id=d/run_id=manual__1/task_id=t/attempt=1.log' ti=TaskInstanceDTO(...)\n"
        "2026-12-08T04:40:02Z [info     ] [77777777-00] Executing workload in Celery: dag_rel_path=PurePosixPath('x.py') "
        "log_path='dag_id=d/run_id=manual__1/task_id=t2/attempt=1.log' ti=TaskInstanceDTO(...)\n"
        "2026-12-08T04:40:13Z [warning  ] Starting call to 'airflow.sdk.api.client.Client.request', this is the 1st time\n"
        "2026-12-08T04:40:44Z [error    ] Task execute_workload[2c06dad1-90] raised unexpected: ReadTimeout('timed out') "
        "[celery.app.trace] loc=trace.py:309\n"
        "2026-12-08T04:40:45Z [error    ] Task execute_workload[77777777-00] raised unexpected: OSError('other task')\n"
    )
    assert topo.airflow_task_problems("d", "t") == {1: ["error: its Celery workload raised ReadTimeout('timed out')"]}


def test_the_summary_shows_the_default_key_but_not_a_key_of_ones_own(tmp_path):
    """``make prod`` prints its summary to the console (and so to a CI log): a key set in PROD_API_KEY stays out."""
    own = Topology(tmp_path / "own", api_key="s3cret-key-of-mine", verbose=False)
    default = Topology(tmp_path / "default", verbose=False)
    assert "s3cret-key-of-mine" not in own.summary()
    assert "API key: yours (PROD_API_KEY), not shown" in own.summary()
    assert "API key: dev-key" in default.summary()
