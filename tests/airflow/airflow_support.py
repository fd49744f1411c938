"""The Airflow test home, for ``tests/airflow`` and ``tests/reliability/airflow`` alike: the test environment,
the fixtures both suites' conftests register, and helpers that run real DAGs with ``dag.test()``, read what
they left behind and answer questions through Airflow's REST API as a person does.

Importing this module sets the environment (a throwaway Airflow home and SQLite database, every
``AIRFLOW_*`` variable) before anything imports Airflow: each conftest imports it first, and it imports no
Airflow at module level. Helpers shared by every environment live in ``shared_support`` (re-exported here).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from shared_support import in_background as in_background  # re-exported: the Airflow tests' one import
from shared_support import wait_until as wait_until

from openwop_devhost import DevHost

#: A distinctive API key: tests search captured logs, XComs and triggers for it.
API_KEY = "owk-SECRET-7f3a9c2e-DO-NOT-LEAK"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags" / "airflow"

# -- the test environment (set once per process, at import, before Airflow is imported) ----------------

#: The throwaway Airflow home of this test session (removed by the ``airflow_db`` fixture at its end).
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="openwop-airflow-tests-"))
(AIRFLOW_HOME / "dags").mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(AIRFLOW_HOME / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)
for _name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_")]:
    del os.environ[_name]


def mark_airflow_tests(items: list[pytest.Item], folder: Path) -> None:
    """Mark every test under ``folder`` ``airflow`` and time it out with a thread (keeping the seconds of its
    own ``timeout`` marker, else 300): Airflow's own ``execution_timeout`` uses SIGALRM, which pytest-timeout's
    default signal method would clash with. The thread marker goes first, so it is the one pytest-timeout reads."""
    for item in items:
        if folder in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.airflow)
            marker = item.get_closest_marker("timeout")
            seconds = marker.args[0] if marker and marker.args else 300
            item.add_marker(pytest.mark.timeout(seconds, method="thread"), append=False)


# -- fixtures (each conftest imports them, which registers them for its folder) -------------------------


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> Iterator[Path]:
    """The metadata database, created once per session (unless the other Airflow suite of the same session
    already did); the Airflow home is removed at the end."""
    from airflow.settings import engine
    from airflow.utils import db
    from sqlalchemy import inspect

    if not inspect(engine).has_table("dag_run"):
        db.resetdb()
    yield AIRFLOW_HOME
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def answers_readable_in_dag_test() -> Iterator[None]:
    """``dag.test()`` serves a trigger's read of the answer given in Airflow, as a triggerer does (see
    :func:`dag_test_serves_answer_reads`)."""
    with dag_test_serves_answer_reads():
        yield


@pytest.fixture
def devhost_workflows() -> Path | None:
    """Extra workflow definitions for the ``devhost`` fixture's host (a suite's conftest overrides it)."""
    return None


@pytest.fixture
def devhost(monkeypatch: pytest.MonkeyPatch, devhost_workflows: Path | None) -> Iterator[DevHost]:
    """A local OpenWOP host for one test, with the distinctive key, wired in as ``openwop_default``
    (AIRFLOW_CONN_OPENWOP_DEFAULT)."""
    with DevHost(api_key=API_KEY, workflows_dir=devhost_workflows) as host:
        monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(host))
        yield host


# -- helpers -------------------------------------------------------------------------------------------


def connection_json(host: DevHost, *, api_key: str | None = API_KEY, **extra: Any) -> str:
    """``AIRFLOW_CONN_*`` JSON for ``host``."""
    doc: dict[str, Any] = {"conn_type": "openwop", "host": host.base_url, "extra": extra}
    if api_key is not None:
        doc["password"] = api_key
    return json.dumps(doc)


_DAG_COUNTER = iter(range(1_000_000))


def unique_dag_id(prefix: str) -> str:
    """DAG ids must differ between tests: all tests share one metadata database."""
    return f"{prefix}_{os.getpid()}_{next(_DAG_COUNTER)}"


def run_operator_dag(prefix: str, **op_kwargs: Any) -> Any:
    """A DAG of one ``OpenwopRunOperator`` (task ``run``, ``op_kwargs`` its arguments) under a DAG id of its
    own (:func:`unique_dag_id`), for :func:`run_dag`."""
    import pendulum
    from airflow.sdk import DAG

    from openwop_airflow.operators.run import OpenwopRunOperator

    start = pendulum.datetime(2024, 1, 1, tz="UTC")
    with DAG(unique_dag_id(prefix), schedule=None, start_date=start, catchup=False) as dag:
        OpenwopRunOperator(task_id="run", **op_kwargs)
    return dag


def _dagbag_module() -> Any:
    """The module holding ``DagBag`` and ``sync_bag_to_db``: ``airflow.dag_processing.dagbag`` on Airflow 3.3,
    ``airflow.models.dagbag`` on 3.1 (3.3 keeps only a deprecated ``DagBag`` alias there)."""
    try:
        return importlib.import_module("airflow.dag_processing.dagbag")
    except ModuleNotFoundError:
        return importlib.import_module("airflow.models.dagbag")


def dag_bag(dag_folder: str | Path) -> Any:
    """The DAGs of ``dag_folder``, parsed as the DAG processor does (a ``DagBag``)."""
    return _dagbag_module().DagBag(dag_folder=str(dag_folder))


def register_dag(dag: Any) -> None:
    """Serialise a DAG defined in a test into the database, as the DAG processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    dagbag = _dagbag_module()
    DagBundlesManager().sync_bundles_to_db()
    bag = dagbag.DagBag(dag_folder=None, collect_dags=False)
    bag.bag_dag(dag)
    dagbag.sync_bag_to_db(bag, "dags-folder", None)


def through_trigger_row(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` as a triggerer reads them back from a trigger's row: serialised in this Airflow's format
    (``airflow.sdk.serde`` on 3.3, ``BaseSerialization`` on 3.1), encrypted and stored as text."""
    from airflow.models.trigger import Trigger

    return cast(dict[str, Any], Trigger._decrypt_kwargs(Trigger.encrypt_kwargs(kwargs)))


class DagRunResult:
    """What a ``dag.test()`` left behind: task states, XComs, trigger rows and the captured output."""

    def __init__(self, dag_run: Any, output: str) -> None:
        self.dag_run = dag_run
        self.output = output

    @property
    def state(self) -> str:
        return str(self.dag_run.state)

    def _tis(self) -> list[Any]:
        from airflow.utils.session import create_session

        with create_session() as session:
            tis = self.dag_run.get_task_instances(session=session)
            for ti in tis:
                session.expunge(ti)
            return tis

    def ti_state(self, task_id: str, map_index: int = -1) -> str | None:
        for ti in self._tis():
            if ti.task_id == task_id and ti.map_index == map_index:
                return None if ti.state is None else str(ti.state)
        raise KeyError(task_id)

    def try_number(self, task_id: str, map_index: int = -1) -> int:
        for ti in self._tis():
            if ti.task_id == task_id and ti.map_index == map_index:
                return int(ti.try_number)
        raise KeyError(task_id)

    def xcoms(self, task_id: str | None = None) -> dict[tuple[str, int, str], Any]:
        """``{(task_id, map_index, key): value}`` of the run."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.execute(
                select(XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value).where(
                    XComModel.dag_id == self.dag_run.dag_id, XComModel.run_id == self.dag_run.run_id
                )
            ).all()
        result = {}
        for row_task, map_index, key, value in rows:
            if task_id is None or row_task == task_id:
                result[(row_task, map_index, key)] = value
        return result

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.xcoms(task_id)[(task_id, map_index, key)]

    def raw_xcom_text(self) -> str:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            values = session.execute(select(XComModel.value).where(XComModel.dag_id == self.dag_run.dag_id)).scalars()
            return "\n".join(json.dumps(v) for v in values)


class _Collect(logging.Handler):
    """Keeps every stdlib log record's message (Airflow routes some loggers there, not to the fds)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name}: {record.getMessage()}")
        except Exception:
            self.lines.append(str(record.msg))


@contextlib.contextmanager
def captured_output(capfd: pytest.CaptureFixture[str]) -> Iterator[list[str]]:
    """Everything printed to stdout/stderr and every stdlib log message during the block, as one text
    (appended to the yielded list when the block ends)."""
    handler = _Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    capfd.readouterr()
    texts: list[str] = []
    try:
        yield texts
    finally:
        root.removeHandler(handler)
        out, err = capfd.readouterr()
        texts.append(out + err + "\n".join(handler.lines))
        print(texts[-1][-20000:])  # keep it visible when the test fails


def run_dag(dag: Any, capfd: pytest.CaptureFixture[str], **kwargs: Any) -> DagRunResult:
    """Register and run ``dag`` with ``dag.test()``; returns the run with the output it printed and logged."""
    register_dag(dag)
    with captured_output(capfd) as texts:
        dag_run = dag.test(**kwargs)
    return DagRunResult(dag_run, texts[0])


def first_run(host: DevHost, workflow_id: str | None = None) -> str:
    """Wait until the host has a run (of ``workflow_id``) and return its id."""

    def find() -> str | None:
        for run_id in host.run_ids():
            if workflow_id is None or host.get_run(run_id).get("workflowId") == workflow_id:
                return run_id
        return None

    return wait_until(find)


@contextlib.contextmanager
def dag_test_serves_answer_reads() -> Iterator[None]:
    """Let a trigger that ``dag.test()`` runs in line read the answer given in Airflow, as a triggerer's
    supervisor lets it in production (``GetHITLDetailResponse``): the in-process supervisor ``dag.test()`` uses
    does not serve that read ("Unhandled request"). On Airflow 3.1, where nothing else resumes a deferred
    question, a test answering one in Airflow needs it; on 3.3 it only lets the trigger's first read succeed."""
    from airflow.jobs.triggerer_job_runner import HITLDetailResponseResult
    from airflow.sdk.execution_time.comms import GetHITLDetailResponse
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    handle = InProcessTestSupervisor._handle_request

    def serving(self: Any, msg: Any, log: Any, req_id: int) -> None:
        if not isinstance(msg, GetHITLDetailResponse):
            return handle(self, msg, log, req_id)
        response = self.client.hitl.get_detail_response(ti_id=msg.ti_id)
        self.send_msg(HITLDetailResponseResult.from_api_response(response=response), request_id=req_id)
        return None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(InProcessTestSupervisor, "_handle_request", serving)
        yield


# -- Airflow's own REST API, as the UI calls it (human-in-the-loop tests) ------------------------------

#: Airflow users of the simple auth manager, with their passwords, for tests that answer as a person.
AIRFLOW_USERS = {"ada": "ada-password", "bob": "bob-password"}


@functools.lru_cache(maxsize=1)
def core_api() -> Any:
    """Airflow's REST API app (the one the UI calls) served in-process over the test database, with the
    simple auth manager's users ``ada`` and ``bob`` (created on first use, ~5-10 s)."""
    passwords = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.test.json"
    passwords.write_text(json.dumps(AIRFLOW_USERS))
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join(f"{user}:admin" for user in AIRFLOW_USERS)
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    return TestClient(create_app(apps="core"))


def waiting_states() -> list[str]:
    """The states of a task that waits for an answer: ``awaiting_input`` (parked, Airflow 3.3+; 3.1's REST API
    refuses a state it does not know) or ``deferred``, which ``dag.test()`` shows as ``queued`` while it runs
    the trigger in line."""
    from airflow.utils.state import TaskInstanceState

    return [state.value for state in TaskInstanceState if state.value in ("awaiting_input", "deferred", "queued")]


class AirflowUser:
    """One person using Airflow's REST API with their own token, as the UI does for them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.api = core_api()
        response = self.api.post("/auth/token", json={"username": name, "password": AIRFLOW_USERS[name]})
        assert response.status_code == 201, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def pending_requests(self, dag_id: str, *, waiting_tasks_only: bool = True) -> list[dict[str, Any]]:
        """The Required Actions page's list for the DAG: requests without a response whose task waits (see
        :func:`waiting_states`; ``waiting_tasks_only=False``: whatever the task's state)."""
        params: dict[str, Any] = {"response_received": "false"}
        if waiting_tasks_only:
            params["state"] = waiting_states()
        response = self.api.get(f"/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()["hitl_details"]

    def request_of(self, dag_id: str, dag_run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance's request (and response, once given)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/hitlDetails"
        response = self.api.get(path, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def respond(
        self, request: dict[str, Any], chosen_options: list[str], params_input: dict[str, Any] | None = None
    ) -> Any:
        """Answer a request from :meth:`pending_requests` exactly as the UI's form does (PATCH hitlDetails)."""
        ti = request["task_instance"]
        path = (
            f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/"
            f"{ti['map_index']}/hitlDetails"
        )
        return self.api.patch(
            path, json={"chosen_options": chosen_options, "params_input": params_input or {}}, headers=self.headers
        )


def wait_for_request(
    user: AirflowUser, dag_id: str, timeout: float = 90, *, waiting_tasks_only: bool = True
) -> dict[str, Any]:
    """Wait until the DAG's Required Actions list shows a pending request (its task waiting on it), and
    return it. After an answer, the request leaves the list until the task asks again."""

    def first() -> dict[str, Any] | None:
        return next(iter(user.pending_requests(dag_id, waiting_tasks_only=waiting_tasks_only)), None)

    def settled() -> dict[str, Any] | None:
        # A request shows the moment the task writes it, and its task shows parked (or deferred) a little before
        # dag.test() has finished running it; people are slower. An answer inside that window strands the task
        # under dag.test() (ci11: answered 20 ms after the task showed awaiting_input, 20 ms before dag.test
        # ended the task, which then waited for input until the test timed out: nothing resumes a task that
        # parks already answered there). So a request is read again a second after it was first seen, as a
        # person would read the page, and answered if it is still pending.
        if first() is None:
            return None
        time.sleep(1.0)
        return first()

    return wait_until(settled, timeout=timeout, interval=0.2)


def scheduler_settled(
    task_logs: Iterable[Path], scheduler_log: str, dag_id: str, task_id: str, *, quiet: float = 10.0
) -> bool:
    """Whether the scheduler has processed the executor's reports of a task's workloads so far (each ended by
    deferring or parking: "Pausing task as DEFERRED" / "AWAITING_INPUT" in the task's attempt logs). An answer
    that resumes the task before that races Airflow: a report processed while the resumed task runs (its key is
    the same) marks it failed, "state changed externally". People are slower. A report per pause, or, as the
    executor sometimes merges the reports of one key, a report logged after the last pause and ``quiet``
    seconds since it."""

    def moment(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    pauses = [
        moment(json.loads(line)["timestamp"])
        for path in task_logs
        if ".trigger." not in path.name
        for line in path.read_text(errors="replace").splitlines()
        if "Pausing task as DEFERRED" in line or "Pausing task as AWAITING_INPUT" in line
    ]
    reports = [
        moment(stamp)
        for stamp in re.findall(
            rf"^(\S+) .*TaskInstance Finished: dag_id={dag_id}, task_id={task_id},", scheduler_log, flags=re.MULTILINE
        )
    ]
    if not pauses or not reports:
        return False
    calm = datetime.now(timezone.utc) - max(pauses) > timedelta(seconds=quiet)
    return len(reports) >= len(pauses) or (max(reports) > max(pauses) and calm)
