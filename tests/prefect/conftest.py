"""Test setup for the Prefect integration: an offline Prefect server (``prefect_test_harness``, one per
session), a local OpenWOP host per test, its credentials, and a responder that answers paused flow runs as
the Prefect UI does. The environment (a throwaway ``PREFECT_HOME``) is set when ``prefect_support`` is
imported, before Prefect is; the fixtures live there too, shared with ``tests/reliability/prefect``."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect_support import (  # noqa: F401  (fixtures: importing them registers them for this folder)
    credentials,
    devhost_workflows,
    host,
    mark_prefect_tests,
    prefect_server,
    responder,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs Prefect."""
    mark_prefect_tests(items, Path(__file__).parent)
