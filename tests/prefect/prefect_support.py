"""The Prefect test home, for ``tests/prefect`` and ``tests/reliability/prefect`` alike: the test environment,
the fixtures both suites' conftests register (one offline Prefect server per session, a local OpenWOP host
per test, a responder), and helpers that read what Prefect recorded (logs, artifacts, flow runs) and answer
paused flow runs the way a person in the Prefect UI does.

Importing this module first sets Prefect's environment (a throwaway ``PREFECT_HOME``), which Prefect reads
when it is imported: each conftest imports it before anything else imports Prefect. Helpers shared by every
environment live in ``shared_support`` (re-exported here).
"""

from __future__ import annotations

import functools
import os
import tempfile

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="openwop-prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import shared_support
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.flow_runs import resume_flow_run
from prefect.logging.handlers import APILogHandler
from prefect.testing.utilities import prefect_test_harness
from shared_support import in_thread as in_thread  # re-exported: the Prefect tests' one import

from openwop_devhost import DevHost
from openwop_prefect import OpenwopCredentials

#: A distinctive key: the secrecy tests search every output for it.
SECRET_KEY = "owk-SECRET-7f3a9c-do-not-print"


# -- reading what Prefect recorded -----------------------------------------------------------------


def flow_run_logs(flow_run_id: UUID) -> list[str]:
    """Every log message Prefect stored for the flow run (and its task runs)."""
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def flow_run_artifacts(flow_run_id: UUID) -> list[Any]:
    """The artifacts the flow run created."""
    with get_client(sync_client=True) as client:
        return list(
            client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
        )


def read_flow_run(flow_run_id: UUID) -> FlowRun:
    """The flow run as the Prefect API has it now."""
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def flow_runs_in_state(state_type: StateType) -> list[FlowRun]:
    """Flow runs currently in ``state_type`` (the harness is shared, so earlier tests' runs exist)."""
    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[state_type])))
            )
        )


def active_flow_run_ids() -> set[UUID]:
    """Ids of flow runs running or paused now (to tell a test's own runs from any earlier test left behind
    in the shared harness)."""
    return {run.id for state in (StateType.RUNNING, StateType.PAUSED) for run in flow_runs_in_state(state)}


def new_running_flow_runs(before: set[UUID]) -> list[FlowRun]:
    """Flow runs now RUNNING that did not exist in ``before``."""
    return [run for run in flow_runs_in_state(StateType.RUNNING) if run.id not in before]


#: ``shared_support.wait_until`` polling every 0.1 s: each poll here is a round trip to the Prefect server.
wait_until = functools.partial(shared_support.wait_until, interval=0.1)


class Responder:
    """Answers paused flow runs as a person in the Prefect UI would: finds each new PAUSED flow run
    (one answer per pause) and calls ``resume_flow_run(flow_run_id, run_input=...)``."""

    def __init__(self, answers: list[dict[str, Any]], timeout: float = 60.0) -> None:
        self.answers = list(answers)
        self.timeout = timeout
        self.answered: list[tuple[UUID, str]] = []
        self.ignore = active_flow_run_ids()  # paused runs of earlier tests are not ours to answer
        self._thread, self._box = in_thread(self._run)

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        seen: set[tuple[UUID, str]] = set()
        with get_client(sync_client=True) as client:
            while self.answers and time.monotonic() < deadline:
                paused = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                    )
                )
                for run in paused:
                    pause_key = str(run.state.state_details.pause_key) if run.state else ""
                    if run.id in self.ignore or (run.id, pause_key) in seen or not self.answers:
                        continue
                    try:
                        resume_flow_run(run.id, run_input=self.answers[0])
                    except Exception:  # the form's schema may not be saved yet: try again shortly
                        continue
                    seen.add((run.id, pause_key))
                    self.answered.append((run.id, pause_key))
                    self.answers.pop(0)
                time.sleep(0.2)

    def join(self) -> None:
        """Wait for the responder to finish; re-raise its error."""
        self._thread.join(self.timeout + 5)
        if "error" in self._box:
            raise self._box["error"]


def mark_prefect_tests(items: list[pytest.Item], folder: Path) -> None:
    """Mark every test under ``folder`` ``prefect`` (the marker declared in pyproject)."""
    for item in items:
        if folder in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.prefect)


# -- fixtures (each conftest imports them, which registers them for its folder) -------------------------

#: Whether this session's Prefect server runs already (the other Prefect suite's conftest started it).
_server_running = False


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    """One temporary Prefect server (SQLite) for the whole session, ~10-13 s to start: the first Prefect
    suite of the session starts it, the other one reuses it."""
    global _server_running
    if _server_running:
        yield
        return
    with prefect_test_harness(server_startup_timeout=90):
        _server_running = True
        try:
            yield
        finally:
            _server_running = False


@pytest.fixture
def devhost_workflows() -> Path | None:
    """Extra workflow definitions for the ``host`` fixture (a suite's conftest overrides it)."""
    return None


@pytest.fixture
def host(devhost_workflows: Path | None) -> Iterator[DevHost]:
    """A fresh local OpenWOP host per test, with the distinctive API key."""
    with DevHost(api_key=SECRET_KEY, workflows_dir=devhost_workflows) as devhost:
        yield devhost


@pytest.fixture
def credentials(host: DevHost) -> OpenwopCredentials:
    """Credentials for ``host`` (two attempts per request keeps failure tests quick)."""
    return OpenwopCredentials(base_url=host.base_url, api_key=host.api_key, retry_attempts=2, timeout=10)


@pytest.fixture
def responder() -> Iterator[Callable[..., Responder]]:
    """``responder([answer, ...])`` starts a background :class:`Responder` for this test."""
    started: list[Responder] = []

    def start(answers: list[dict[str, Any]], timeout: float = 60.0) -> Responder:
        helper = Responder(answers, timeout)
        started.append(helper)
        return helper

    yield start
    for helper in started:
        helper.answers.clear()
        helper.join()
