"""As production runs it: a real scheduler (LocalExecutor), a real ``airflow triggerer`` and the API server,
each its own process, sharing a temporary Airflow home and SQLite database (one deployment for the module).

A deferred OpenWOP task waits in the triggerer. The triggerer is killed (SIGKILL) mid-wait and a new one
started: the task still ends with the run's outputs and the host saw exactly one run for it. Another deferred
task is marked failed through the REST API, as a user would in the UI: the triggerer's ``on_kill`` cancels its
remote run (Airflow 3.3+: ``BaseTrigger.on_kill``; Airflow 3.1 leaves the run alone).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from airflow_support import API_KEY, connection_json, wait_until
from process_hygiene import start_process, stop_process_tree

from openwop_devhost import DevHost

pytestmark = pytest.mark.slow

DAG_ID = "openwop_production_check"
KILL_DAG_ID = "openwop_production_kill"
DAG_FILE = textwrap.dedent(
    f'''
    """Deferred waits for the production test: one survives a triggerer crash, one is killed by a user."""
    import pendulum
    from airflow.sdk import DAG

    from openwop_airflow.operators.run import OpenwopRunOperator

    START = pendulum.datetime(2024, 1, 1, tz="UTC")
    with DAG("{DAG_ID}", schedule=None, start_date=START, catchup=False):
        OpenwopRunOperator(
            task_id="survives_restart",
            workflow_id="conformance-identity-slow",
            inputs={{"payload": {{"from": "production test"}}}},
            deferrable=True,
        )
    with DAG("{KILL_DAG_ID}", schedule=None, start_date=START, catchup=False):
        OpenwopRunOperator(
            task_id="killed_by_user",
            workflow_id="conformance-cancellable",
            inputs={{"delayMs": 60000}},
            deferrable=True,
        )
    '''
)
#: A workflow for the first task: waits, then echoes its payload (so the outputs prove the right result).
SLOW_IDENTITY = {
    "id": "conformance-identity-slow",
    "nodes": [
        {"id": "wait", "typeId": "core.delay", "config": {"delayMs": 40000}},
        {"id": "identity", "typeId": "core.identity"},
    ],
    "edges": [{"source": "wait", "target": "identity"}],
    "variables": [{"name": "payload", "type": "object", "required": True}],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Deployment:
    """The Airflow processes, their environment and their logs."""

    def __init__(self, root: Path, host: DevHost) -> None:
        self.root = root
        self.port = free_port()
        self.db = root / "airflow.db"
        dags = root / "dags"
        dags.mkdir()
        (dags / "openwop_production_check.py").write_text(DAG_FILE)
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env = {
            **base,
            "AIRFLOW_HOME": str(root / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Four processes share one SQLite file: a writer waits up to 60 s for the lock instead of SQLite's
            # default 5 s, which a loaded machine exceeds (the API server then answers 500 "Database error").
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}?timeout=60",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": "production-test-secret",
            "AIRFLOW__API_AUTH__JWT_SECRET": "production-test-jwt-secret",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_OPENWOP_DEFAULT": connection_json(host),
        }
        (root / "home").mkdir()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def airflow(self, *args: str, timeout: float = 120) -> str:
        """Run one ``airflow`` CLI command to completion."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a long-running component; its output goes to ``<root>/<name>.log``."""
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        process = start_process(
            [sys.executable, "-m", "airflow", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[name] = process
        return process

    def start_all(self, *, triggerer: str = "triggerer") -> None:
        """Migrate the database, serialise the DAGs, start the API server, the scheduler and a triggerer
        (its log named ``triggerer``), and wait until the API server answers."""
        self.airflow("db", "migrate", timeout=180)
        with sqlite3.connect(self.db) as conn:  # readers (this test's polling among them) no longer block writers
            conn.execute("pragma journal_mode=wal")
        self.airflow("dags", "reserialize", timeout=180)
        self.start("api-server", "api-server")
        self.start("scheduler", "scheduler")
        self.start(triggerer, "triggerer")
        wait_for(
            "the API server", lambda: _get(f"http://127.0.0.1:{self.port}/api/v2/monitor/health") == 200, self, 120
        )

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def diagnosis(self) -> str:
        """What a failure message shows: task instances, triggers, the tails of the task and trigger logs, and
        of each process's log without the API server's access lines."""
        parts = [
            f"task instances: {self.query('select task_id, state, try_number, next_method, trigger_id from task_instance')}",
            f"triggers: {self.query('select id, classpath, triggerer_id, created_date from trigger')}",
        ]
        for path in sorted((self.root / "home" / "logs").rglob("*.log")):
            parts.append(f"===== {path.relative_to(self.root)}\n{path.read_text(errors='replace')[-3000:]}")
        for name in self.processes:
            lines = [line for line in self.log(name).splitlines() if "http.access" not in line]
            parts.append(f"===== {name}\n" + "\n".join(lines)[-5000:])
        return "\n".join(parts)

    def query(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def stop_all(self) -> None:
        """Stop every component with its children (a scheduler's LocalExecutor workers and ``serve-logs``)."""
        for process in self.processes.values():
            stop_process_tree(process)

    def api(self) -> httpx.Client:
        base = f"http://127.0.0.1:{self.port}"
        token = httpx.get(f"{base}/auth/token", timeout=10).json()["access_token"]
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def wait_for(what: str, predicate, deployment: Deployment, timeout: float) -> object:
    """``wait_until`` polling every 0.5 s; on a timeout the deployment's diagnosis follows the message."""
    return wait_until(predicate, timeout, interval=0.5, what=what, detail=deployment.diagnosis)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, DevHost]]:
    """The running deployment (API server, scheduler, a first triggerer) and its OpenWOP host."""
    root = tmp_path_factory.mktemp("production")
    workflows = root / "workflows"
    workflows.mkdir()
    (workflows / "identity_slow.json").write_text(json.dumps(SLOW_IDENTITY))
    with DevHost(api_key=API_KEY, workflows_dir=workflows) as host:
        airflow = Deployment(root, host)
        try:
            airflow.start_all(triggerer="triggerer-1")
            yield airflow, host
        finally:
            airflow.stop_all()


def start_dag_run(api: httpx.Client, dag_id: str) -> str:
    response = api.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
    assert response.status_code == 200, response.text
    return str(response.json()["dag_run_id"])


def deferred_in_triggerer(airflow: Deployment, dag_id: str) -> list[tuple[str, int]]:
    """``(task_id, triggerer_id)`` of the DAG's deferred tasks whose trigger a triggerer runs."""
    rows = airflow.query(
        "select ti.task_id, t.triggerer_id from task_instance ti join trigger t on ti.trigger_id = t.id "
        "where ti.dag_id = ? and ti.state = 'deferred' and t.triggerer_id is not null",
        dag_id,
    )
    return [(task_id, triggerer) for task_id, triggerer in rows]


@pytest.mark.timeout(420, method="thread")
def test_deferred_wait_survives_a_triggerer_crash(deployment):
    airflow, host = deployment
    with airflow.api() as api:
        dag_run_id = start_dag_run(api, DAG_ID)
        wait_for("the task deferred in the triggerer", lambda: deferred_in_triggerer(airflow, DAG_ID), airflow, 180)
        assert host.runs_created("conformance-identity-slow") == 1
        old_triggerer = {triggerer for _, triggerer in deferred_in_triggerer(airflow, DAG_ID)}

        stop_process_tree(airflow.processes["triggerer-1"], sig=signal.SIGKILL)  # a crash: no clean-up runs
        airflow.start("triggerer-2", "triggerer")

        def picked_up_again() -> bool:
            ids = {row[0] for row in airflow.query("select triggerer_id from trigger")}
            return bool(ids) and None not in ids and not ids & old_triggerer

        wait_for("the new triggerer to take over the trigger", picked_up_again, airflow, 120)

        def survivor_state() -> str | None:
            (state,) = airflow.query(
                "select state from task_instance where dag_id = ? and task_id = 'survives_restart'", DAG_ID
            )[0]
            return state if state in ("success", "failed", "up_for_retry") else None

        assert wait_for("the surviving task to finish", survivor_state, airflow, 150) == "success"
        xcom = api.get(
            f"/api/v2/dags/{DAG_ID}/dagRuns/{dag_run_id}/taskInstances/survives_restart/xcomEntries/return_value"
        ).json()
        value = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
        assert value["payload"] == {"from": "production test"}
        links = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{dag_run_id}/taskInstances/survives_restart/links").json()
        run_id = xcom_value(api, dag_run_id, "survives_restart", "run_id")
        assert links["extra_links"]["OpenWOP run"] == f"{host.base_url}/v1/runs/{run_id}"

    assert host.runs_created("conformance-identity-slow") == 1
    task_logs = {str(p): p.read_text(errors="replace") for p in (airflow.root / "home" / "logs").rglob("*.log")}
    resumed = [text for path, text in task_logs.items() if "survives_restart" in path and ".trigger." in path]
    assert any("Waiting for OpenWOP run" in text and "run completed" in text for text in resumed)
    everything = "".join(task_logs.values()) + "".join(airflow.log(name) for name in airflow.processes)
    assert API_KEY not in everything


@pytest.mark.airflow33
@pytest.mark.timeout(420, method="thread")
def test_a_user_killing_a_deferred_task_cancels_its_run(deployment):
    """Airflow 3.3 calls ``BaseTrigger.on_kill`` when a user ends a deferred task (mark failed, success or clear);
    the trigger then cancels the remote run (``cancel_on_kill``)."""
    airflow, host = deployment
    with airflow.api() as api:
        dag_run_id = start_dag_run(api, KILL_DAG_ID)
        wait_for(
            "the task deferred in the triggerer", lambda: deferred_in_triggerer(airflow, KILL_DAG_ID), airflow, 180
        )
        (killed_run,) = [r for r in host.run_ids() if host.get_run(r)["workflowId"] == "conformance-cancellable"]
        response = api.patch(
            f"/api/v2/dags/{KILL_DAG_ID}/dagRuns/{dag_run_id}/taskInstances/killed_by_user",
            json={"new_state": "failed"},
        )
        assert response.status_code == 200, response.text
        wait_for(
            "the user kill to cancel the remote run",
            lambda: host.get_run(killed_run)["status"] == "cancelled",
            airflow,
            60,
        )
    everything = "".join(p.read_text(errors="replace") for p in (airflow.root / "home" / "logs").rglob("*.log"))
    assert API_KEY not in everything + "".join(airflow.log(name) for name in airflow.processes)


def xcom_value(api: httpx.Client, dag_run_id: str, task_id: str, key: str) -> object:
    entry = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{key}")
    value = entry.json()["value"]
    return json.loads(value) if isinstance(value, str) and value[:1] in '{["' else value


def _get(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None
