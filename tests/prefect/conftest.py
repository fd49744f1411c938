"""Shared set-up for the Prefect tests: an offline Prefect server (``prefect_test_harness``, one per
session: it takes ~10-13 s to start), a local OpenWOP host per test, and helpers to read what Prefect
recorded (logs, artifacts) and to answer a paused flow run the way the Prefect UI does."""

from __future__ import annotations

import os
import tempfile

# Prefect reads its settings at import time: set them before anything imports prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="openwop-prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prefect.testing.utilities import prefect_test_harness
from prefect_support import SECRET_KEY, Responder

from openwop_devhost import DevHost
from openwop_prefect import OpenwopCredentials


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs Prefect (the ``prefect`` marker declared in pyproject)."""
    for item in items:
        item.add_marker(pytest.mark.prefect)


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    """One temporary Prefect server (SQLite) for the whole session."""
    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def host() -> Iterator[DevHost]:
    """A fresh local OpenWOP host per test, with the distinctive API key."""
    with DevHost(api_key=SECRET_KEY) as devhost:
        yield devhost


@pytest.fixture
def credentials(host: DevHost) -> OpenwopCredentials:
    """Credentials for ``host`` (two attempts per request keeps failure tests quick)."""
    return OpenwopCredentials(base_url=host.base_url, api_key=host.api_key, retry_attempts=2, timeout=10)


@pytest.fixture
def responder() -> Iterator[Callable[..., Responder]]:
    """``responder([answer, ...])`` starts a background responder for this test."""
    started: list[Responder] = []

    def start(answers: list[dict[str, Any]], timeout: float = 60.0) -> Responder:
        helper = Responder(answers, timeout)
        started.append(helper)
        return helper

    yield start
    for helper in started:
        helper.answers.clear()
        helper.join()
