"""Prefect set-up for the reliability suite: the fixtures and environment of ``tests/prefect`` (its
``prefect_support`` module, put on ``sys.path`` here so that this folder also runs alone), with the
reliability workflows on every host and credentials with the default retry policy.

Run together with ``tests/prefect`` the session's Prefect server is that suite's (see ``prefect_server``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_PREFECT_TESTS = str(Path(__file__).resolve().parents[2] / "prefect")
if _PREFECT_TESTS not in sys.path:
    sys.path.insert(0, _PREFECT_TESTS)

from prefect_support import (  # noqa: E402, F401  (fixtures: importing them registers them for this folder)
    host,
    mark_prefect_tests,
    prefect_server,
    responder,
)
from pydantic import SecretStr  # noqa: E402
from reliability_support import WORKFLOWS_DIR  # noqa: E402

from openwop_devhost import DevHost  # noqa: E402
from openwop_prefect import OpenwopCredentials  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs Prefect."""
    mark_prefect_tests(items, Path(__file__).parent)


@pytest.fixture
def devhost_workflows() -> Path:
    """The ``host`` fixture's host serves the reliability suite's workflows too."""
    return WORKFLOWS_DIR


@pytest.fixture
def credentials(host: DevHost) -> OpenwopCredentials:  # noqa: F811  (the imported fixture, requested)
    """Credentials for ``host`` with the default retry policy, as users have it (``tests/prefect``'s keep two
    attempts so that its failure tests are quick)."""
    return OpenwopCredentials(base_url=host.base_url, api_key=SecretStr(host.api_key), timeout=10)
