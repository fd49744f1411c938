"""Test setup for the Airflow provider: a throwaway Airflow home and SQLite database (set when
``airflow_support`` is imported, before anything imports Airflow), a local OpenWOP host per test, and
``dag.test()`` serving answer reads as a triggerer does. The fixtures live in ``airflow_support``, shared
with ``tests/reliability/airflow``."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_support import (  # noqa: F401  (fixtures: importing them registers them for this folder)
    airflow_db,
    answers_readable_in_dag_test,
    devhost,
    devhost_workflows,
    mark_airflow_tests,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test here ``airflow``, with a thread-based timeout (see ``mark_airflow_tests``)."""
    mark_airflow_tests(items, Path(__file__).parent)
