"""Process faults, throttling and outages through real Airflow task runs (``dag.test()``).

* A worker "crashes" at one of five points of a task's life (just after the host made the run, mid-wait,
  just before deferring, after the run completed, while resuming from the trigger): the crash is an error
  that is not the provider's, raised once at that point, which fails the try the way a dead worker's task is
  failed and retried. The retry reattaches to the run the first try started: the host has one run, the task
  succeeds with that run's outputs.
* Every request of a task (create, snapshot, events) first meets a 429 and a 503 with ``Retry-After``: the
  task succeeds, the host saw each next attempt no sooner than ``Retry-After``, and one run per task.
* The host refuses connections for three seconds while a deferred task and a worker-side task wait: both
  resume and succeed, one run each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from airflow_support import run_dag, unique_dag_id
from reliability_support import retry_gaps, stream_connections, wait_until

from openwop_airflow.operators.base import BaseOpenwopRunOperator
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_airflow.utils import waiting
from openwop_devhost import DevHost, FailRule

START = pendulum.datetime(2024, 1, 1, tz="UTC")
PAYLOAD = {"order": "A-17", "lines": [1, 2, 3]}


class WorkerCrash(Exception):
    """Stands for the worker process dying at this point (the try fails; Airflow retries the task)."""


def crash_once(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, *, after_call: bool) -> list[str]:
    """Make ``owner.name`` raise :class:`WorkerCrash` the first time it is called (after doing its work when
    ``after_call``: the effect happened, the answer is lost). Returns a list that records the crash."""
    original = getattr(owner, name)
    crashed: list[str] = []

    def once(self: Any, *args: Any, **kwargs: Any) -> Any:
        if crashed:
            return original(self, *args, **kwargs)
        if after_call:
            original(self, *args, **kwargs)
        crashed.append(name)
        raise WorkerCrash(f"simulated worker crash in {name}")

    monkeypatch.setattr(owner, name, once)
    return crashed


def crash_on_second_event(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The wait dies after it has seen (and logged) two events of the run."""
    original = waiting.RunWait.on_event
    crashed: list[str] = []
    seen: list[int] = []

    def on_event(self: waiting.RunWait, event: Any) -> None:
        original(self, event)
        seen.append(event.sequence)
        if not crashed and len(seen) == 2:
            crashed.append("mid-wait")
            raise WorkerCrash("simulated worker crash mid-wait")

    monkeypatch.setattr(waiting.RunWait, "on_event", on_event)
    return crashed


CRASHES: dict[str, tuple[bool, Callable[[pytest.MonkeyPatch], list[str]]]] = {
    "after the host made the run (answer lost)": (
        False,
        lambda mp: crash_once(mp, OpenwopRunOperator, "start_run", after_call=True),
    ),
    "after the host made the run, deferrable": (
        True,
        lambda mp: crash_once(mp, OpenwopRunOperator, "start_run", after_call=True),
    ),
    "mid-wait in the worker": (False, crash_on_second_event),
    "just before deferring": (True, lambda mp: crash_once(mp, BaseOpenwopRunOperator, "_defer", after_call=False)),
    "after the run completed, before reporting": (
        False,
        lambda mp: crash_once(mp, BaseOpenwopRunOperator, "_finish", after_call=False),
    ),
    "while resuming from the trigger": (
        True,
        lambda mp: crash_once(mp, BaseOpenwopRunOperator, "execute_complete", after_call=False),
    ),
}


@pytest.mark.parametrize("where", list(CRASHES))
def test_a_task_retried_after_a_worker_crash_reattaches_to_its_run(
    devhost: DevHost, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    deferrable, arm = CRASHES[where]
    crashed = arm(monkeypatch)
    with DAG(unique_dag_id("rel_crash"), schedule=None, start_date=START) as dag:
        OpenwopRunOperator(
            task_id="run",
            workflow_id="rel-slow-echo",
            inputs={"payload": PAYLOAD, "delayMs": 1500},
            deferrable=deferrable,
            retries=1,
            retry_delay=timedelta(0),
        )
    result = run_dag(dag, capfd)

    assert crashed, "the crash point was never reached"
    assert result.state == "success", result.output[-3000:]
    assert result.try_number("run") == 2
    assert devhost.runs_created() == 1  # the retry reattached: one remote run
    (run_id,) = devhost.run_ids()
    assert f"Reattaching to OpenWOP run {run_id}" in result.output
    assert result.xcom("run", "run_id") == run_id
    assert result.xcom("run")["payload"] == PAYLOAD
    assert devhost.get_run(run_id)["status"] == "completed"


def test_throttled_requests_are_retried_no_sooner_than_retry_after(
    devhost: DevHost, capfd: pytest.CaptureFixture[str]
) -> None:
    routes = [
        "POST /v1/runs",
        "GET /v1/runs/{runId}",
        "GET /v1/runs/{runId}/events",
        "GET /v1/runs/{runId}/events/poll",
    ]
    devhost.set_faults(
        fail_requests=[
            FailRule(route=route, status=status, count=2, retry_after=1) for route in routes for status in (429, 503)
        ]
    )
    with DAG(unique_dag_id("rel_throttle"), schedule=None, start_date=START) as dag:
        for mode in ("sync", "deferrable"):
            OpenwopRunOperator(
                task_id=mode,
                workflow_id="rel-slow-echo",
                inputs={"payload": {"mode": mode}, "delayMs": 200},
                deferrable=mode == "deferrable",
            )
    result = run_dag(dag, capfd)

    assert result.state == "success", result.output[-3000:]
    assert devhost.runs_created() == 2  # one per task, whatever the refusals
    gaps = retry_gaps(devhost.requests)
    assert len(gaps) >= 8
    assert min(g.seconds for g in gaps) >= 1.0, min(gaps, key=lambda g: g.seconds)


@pytest.mark.parametrize("mode", ["sync", "deferrable"])
def test_a_wait_rides_out_a_host_outage(devhost: DevHost, capfd: pytest.CaptureFixture[str], mode: str) -> None:
    with DAG(unique_dag_id("rel_outage"), schedule=None, start_date=START) as dag:
        OpenwopRunOperator(
            task_id="run",
            workflow_id="rel-slow-echo",
            inputs={"payload": {"mode": mode}, "delayMs": 2500},
            deferrable=mode == "deferrable",
        )
    outage: list[float] = []

    def take_the_host_down() -> None:
        wait_until(lambda: devhost.run_ids() and devhost.get_run(devhost.run_ids()[0])["status"] == "running")
        # the waiter (the task, or its trigger once deferred) has asked for the run's events: down while it reads
        wait_until(lambda: stream_connections(devhost, devhost.run_ids()[0]))
        time.sleep(0.3)
        devhost.stop()
        started = time.monotonic()
        time.sleep(3.0)
        devhost.start()
        outage.append(time.monotonic() - started)

    helper = threading.Thread(target=take_the_host_down, daemon=True)
    helper.start()
    result = run_dag(dag, capfd)
    helper.join(timeout=30)

    assert outage  # the host was down for a while mid-wait
    assert result.state == "success", result.output[-3000:]
    assert devhost.runs_created() == 1
    assert "event stream interrupted" in result.output or "lost contact with the host" in result.output
    assert result.xcom("run")["payload"] == {"mode": mode}
