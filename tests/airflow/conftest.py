"""Test setup for the Airflow provider: a throwaway Airflow home and SQLite database, a local OpenWOP host
per test, and helpers that run real DAGs with ``dag.test()``.

Every ``AIRFLOW_*`` variable is set here, at import time, before anything imports Airflow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="openwop-airflow-tests-"))
_DAGS_FOLDER = _AIRFLOW_HOME / "dags"
_DAGS_FOLDER.mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)
for _name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_")]:
    del os.environ[_name]

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from airflow_support import API_KEY, connection_json, dag_test_serves_answer_reads  # noqa: E402

from openwop_devhost import DevHost  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test here ``airflow`` and guard it with a thread-based timeout (Airflow's own
    ``execution_timeout`` uses SIGALRM, which pytest-timeout's default signal method would clash with)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.airflow)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(300, method="thread"))


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> Iterator[Path]:
    """Create the metadata database once per session (and remove the Airflow home afterwards)."""
    from airflow.utils import db

    db.resetdb()
    yield _AIRFLOW_HOME
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def answers_readable_in_dag_test() -> Iterator[None]:
    """``dag.test()`` serves a trigger's read of the answer given in Airflow, as a triggerer does."""
    with dag_test_serves_answer_reads():
        yield


@pytest.fixture
def devhost(monkeypatch: pytest.MonkeyPatch) -> Iterator[DevHost]:
    """A local OpenWOP host for one test, wired in as ``openwop_default`` (AIRFLOW_CONN_OPENWOP_DEFAULT)."""
    with DevHost(api_key=API_KEY) as host:
        monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(host))
        yield host
