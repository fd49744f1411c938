"""Airflow set-up for the reliability suite, shared with ``tests/airflow``: its ``airflow_support`` helpers,
and its environment (a throwaway Airflow home and SQLite database, set before Airflow is imported).

Run together with ``tests/airflow`` (as ``scripts/run-tests.sh`` does), that suite's conftest has already set
the environment, and it is reused. Run alone, this conftest executes that conftest once, as a plain module,
for the same environment. Either way the metadata database is created when it is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_AIRFLOW_TESTS = Path(__file__).resolve().parents[2] / "airflow"
_STANDALONE = "airflow_support" not in sys.modules  # tests/airflow's conftest imports it first when present
if str(_AIRFLOW_TESTS) not in sys.path:
    sys.path.insert(0, str(_AIRFLOW_TESTS))
if _STANDALONE:
    _spec = importlib.util.spec_from_file_location("openwop_tests_airflow_environment", _AIRFLOW_TESTS / "conftest.py")
    assert _spec is not None and _spec.loader is not None
    _spec.loader.exec_module(
        importlib.util.module_from_spec(_spec)
    )  # sets AIRFLOW_HOME & co, imports nothing of Airflow

from airflow_support import API_KEY, connection_json, dag_test_serves_answer_reads  # noqa: E402

from openwop_devhost import DevHost  # noqa: E402

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark these tests ``airflow``; time them out with a thread (Airflow's own timeouts use SIGALRM)."""
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.airflow)
            marker = item.get_closest_marker("timeout")
            seconds = marker.args[0] if marker and marker.args else 300
            item.add_marker(pytest.mark.timeout(seconds, method="thread"))


@pytest.fixture(scope="session", autouse=True)
def reliability_airflow_db() -> Iterator[None]:
    """The metadata database (created unless ``tests/airflow`` already did in this session)."""
    from airflow.settings import engine
    from airflow.utils import db
    from sqlalchemy import inspect

    if not inspect(engine).has_table("dag_run"):
        db.resetdb()
    yield
    if _STANDALONE:
        shutil.rmtree(os.environ["AIRFLOW_HOME"], ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def reliability_answers_readable_in_dag_test() -> Iterator[None]:
    """``dag.test()`` serves a trigger's read of the answer given in Airflow, as a triggerer does (see
    ``airflow_support.dag_test_serves_answer_reads``)."""
    with dag_test_serves_answer_reads():
        yield


@pytest.fixture
def devhost(monkeypatch: pytest.MonkeyPatch) -> Iterator[DevHost]:
    """A local host for one test (with the suite's workflows), wired in as ``openwop_default``, with the
    distinctive key."""
    from reliability_support import WORKFLOWS_DIR

    with DevHost(api_key=API_KEY, workflows_dir=WORKFLOWS_DIR) as host:
        monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(host))
        yield host


@pytest.fixture(scope="module")
def module_devhost() -> Iterator[DevHost]:
    """One local host for a module of properties (the connection is set per test with ``use_host``)."""
    from reliability_support import WORKFLOWS_DIR

    with DevHost(api_key=API_KEY, workflows_dir=WORKFLOWS_DIR, keepalive_interval=0.2) as host:
        yield host
