"""Airflow set-up for the reliability suite: the fixtures and environment of ``tests/airflow`` (its
``airflow_support`` module, put on ``sys.path`` here so that this folder also runs alone), with the
reliability workflows on every host, and one host per module for the properties.

Run together with ``tests/airflow`` the metadata database that suite created is reused (see ``airflow_db``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_AIRFLOW_TESTS = str(Path(__file__).resolve().parents[2] / "airflow")
if _AIRFLOW_TESTS not in sys.path:
    sys.path.insert(0, _AIRFLOW_TESTS)

from airflow_support import (  # noqa: E402, F401  (fixtures: importing them registers them for this folder)
    API_KEY,
    airflow_db,
    answers_readable_in_dag_test,
    devhost,
    mark_airflow_tests,
)
from reliability_support import WORKFLOWS_DIR  # noqa: E402

from openwop_devhost import DevHost  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark these tests ``airflow``, with a thread-based timeout (see ``mark_airflow_tests``)."""
    mark_airflow_tests(items, Path(__file__).parent)


@pytest.fixture
def devhost_workflows() -> Path:
    """The ``devhost`` fixture's host serves the reliability suite's workflows too."""
    return WORKFLOWS_DIR


@pytest.fixture(scope="module")
def module_devhost() -> Iterator[DevHost]:
    """One local host for a module of properties (the connection is set per test with ``use_host``)."""
    with DevHost(api_key=API_KEY, workflows_dir=WORKFLOWS_DIR, keepalive_interval=0.2) as host:
        yield host
