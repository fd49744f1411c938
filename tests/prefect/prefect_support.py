"""Helpers for the Prefect tests: read what Prefect recorded (logs, artifacts, flow runs), run a flow in
a background thread, and answer paused flow runs the way a person in the Prefect UI does."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

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


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``fn`` in a thread that shares this context (Prefect's settings live in context variables);
    the dict receives ``result`` or ``error``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    thread.start()
    return thread, box


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
