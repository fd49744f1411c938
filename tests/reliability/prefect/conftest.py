"""Prefect set-up for the reliability suite, shared with ``tests/prefect``: its ``prefect_support`` helpers and
its environment (a throwaway ``PREFECT_HOME``, set before Prefect is imported), and one offline Prefect
server (``prefect_test_harness``) for the session.

Run together with ``tests/prefect`` (as ``scripts/run-tests.sh`` does), that suite's conftest has already set
the environment and its session-wide server is reused. Run alone, this conftest executes that conftest once,
as a plain module, for the same environment, and starts the server itself.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

_PREFECT_TESTS = Path(__file__).resolve().parents[2] / "prefect"
_STANDALONE = "prefect_support" not in sys.modules  # tests/prefect's conftest imports it first when present
if str(_PREFECT_TESTS) not in sys.path:
    sys.path.insert(0, str(_PREFECT_TESTS))
if _STANDALONE:
    _spec = importlib.util.spec_from_file_location("openwop_tests_prefect_environment", _PREFECT_TESTS / "conftest.py")
    assert _spec is not None and _spec.loader is not None
    _spec.loader.exec_module(importlib.util.module_from_spec(_spec))  # sets PREFECT_HOME & co first

from prefect.settings import PREFECT_API_URL  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402
from prefect_support import SECRET_KEY, Responder  # noqa: E402
from reliability_support import WORKFLOWS_DIR  # noqa: E402

from openwop_devhost import DevHost  # noqa: E402
from openwop_prefect import OpenwopCredentials  # noqa: E402

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs Prefect."""
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.prefect)


@pytest.fixture(scope="session", autouse=True)
def reliability_prefect_server() -> Iterator[None]:
    """The session's Prefect server: ``tests/prefect``'s when it already runs, else one of our own."""
    if not _STANDALONE and PREFECT_API_URL.value():
        yield
        return
    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def host() -> Iterator[DevHost]:
    """A local host for one test, with the distinctive key and the suite's workflows."""
    with DevHost(api_key=SECRET_KEY, workflows_dir=WORKFLOWS_DIR) as devhost:
        yield devhost


@pytest.fixture
def credentials(host: DevHost) -> OpenwopCredentials:
    """Credentials for ``host``."""
    return OpenwopCredentials(base_url=host.base_url, api_key=SecretStr(host.api_key), timeout=10)


@pytest.fixture
def responder() -> Iterator[Callable[..., Responder]]:
    """``responder([answer, ...])`` answers paused flow runs in the background, as a person in the UI."""
    started: list[Responder] = []

    def start(answers: list[dict[str, Any]], timeout: float = 60.0) -> Responder:
        helper = Responder(answers, timeout)
        started.append(helper)
        return helper

    yield start
    for helper in started:
        helper.answers.clear()
        helper.join()
