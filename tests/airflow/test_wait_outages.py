"""Waits that meet a failing host (issue #12, items 11, 12 and 15), with the real trigger and ``dag.test()``.

- A burst of 503s on ``/events`` must not hide a finished run: the trigger reads the snapshot while the stream
  cannot be reopened (before the fix it only noticed after the stream's backoff, here past its deadline).
- A host outage that outlasts the task's timeout is reported as one, with the time since when the host was
  unreachable and the fate of the cancel, not as a slow run.
- A timeout in the worker fails with one consistent message, not a chain that contradicts it.
"""

from __future__ import annotations

import asyncio
import time

import pendulum
import pytest
from airflow.triggers.base import TriggerEvent
from airflow_support import connection_json, in_background, run_dag, run_operator_dag, wait_until

from openwop_airflow.triggers.run import OpenwopRunTrigger
from openwop_core import OpenwopClient
from openwop_devhost import DevHost

START = pendulum.datetime(2024, 1, 1, tz="UTC")
EVENTS_ROUTE = "GET /v1/runs/{runId}/events"
#: Long reconnect backoffs: without snapshot reads the trigger would notice nothing before its deadline.
SLOW_STREAM = {"initial_backoff": 20.0, "max_backoff": 60.0}


async def fire(trigger: OpenwopRunTrigger, timeout: float = 90) -> list[TriggerEvent]:
    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return await asyncio.wait_for(collect(), timeout)


def start_run(host: DevHost, workflow_id: str, inputs: dict | None = None) -> str:
    with OpenwopClient(host.base_url, api_key=host.api_key) as client:
        return client.runs_create(workflow_id, inputs).run_id


@pytest.mark.timeout(120)
async def test_trigger_notices_a_finished_run_during_a_503_burst_on_events(devhost, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, retry=SLOW_STREAM))
    devhost.set_faults(fail_requests=[{"route": EVENTS_ROUTE, "status": 503, "count": 12}])
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 1500})

    (event,) = await fire(OpenwopRunTrigger(run_id=run_id, deadline=time.time() + 40))

    assert event.payload["status"] == "success"
    assert event.payload["run_status"] == "completed"


@pytest.mark.timeout(120)
async def test_trigger_reports_a_run_cancelled_during_a_503_burst_as_cancelled(devhost, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, retry=SLOW_STREAM))
    devhost.set_faults(fail_requests=[{"route": EVENTS_ROUTE, "status": 503, "count": 12}])
    run_id = start_run(devhost, "conformance-cancellable", {"delayMs": 60000})
    waiting = asyncio.create_task(fire(OpenwopRunTrigger(run_id=run_id, deadline=time.time() + 40)))
    await asyncio.to_thread(wait_until, lambda: devhost.faults.fail_requests[0].count < 12)
    await asyncio.to_thread(lambda: OpenwopClient(devhost.base_url, api_key=devhost.api_key).runs_cancel(run_id))

    (event,) = await waiting

    assert event.payload["status"] == "error"
    assert event.payload["run_status"] == "cancelled"


async def test_trigger_timeout_during_an_outage_says_since_when_the_host_was_unreachable(devhost, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, retry={"max_attempts": 1, "initial_backoff": 0.2})
    )
    run_id = start_run(devhost, "conformance-cancellable", {"delayMs": 60000})
    devhost.set_faults(fail_requests=[{"route": "*", "status": 503, "count": 100000}])
    before = time.time()

    (event,) = await fire(OpenwopRunTrigger(run_id=run_id, deadline=time.time() + 3))

    assert event.payload["status"] == "timeout"
    assert event.payload["unreachable_since"] >= before
    assert "503" in event.payload["error"]["message"]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_task_succeeds_for_a_run_that_finished_during_a_503_burst(devhost, capfd, monkeypatch, deferrable):
    """The operator's own wait (in the worker, and deferred) during the burst: the task succeeds before its
    ``timeout`` (before the fix the stream's backoff outlasted it and the task timed out)."""
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, retry=SLOW_STREAM))
    devhost.set_faults(fail_requests=[{"route": EVENTS_ROUTE, "status": 503, "count": 12}])
    dag = run_operator_dag(
        "run_burst", workflow_id="conformance-delay", inputs={"delayMs": 1500}, timeout=40, deferrable=deferrable
    )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    assert devhost.get_run(run_id)["status"] == "completed"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_host_outage_past_the_timeout_is_reported_as_an_outage(devhost, capfd, monkeypatch, deferrable):
    """The host goes away while the task waits and stays away past ``timeout``: the final error says since
    when it was unreachable and that the cancel failed too (the run may still be running)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, retry={"max_attempts": 2, "initial_backoff": 0.2})
    )
    dag = run_operator_dag(
        "run_outage",
        workflow_id="conformance-cancellable",
        inputs={"delayMs": 60000},
        timeout=8,
        deferrable=deferrable,
    )

    def stop_once_the_wait_follows_events() -> None:
        wait_until(lambda: any(r["path"].endswith("/events") for r in devhost.requests), timeout=150)
        devhost.stop()

    with in_background(stop_once_the_wait_follows_events):
        result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert "the host was unreachable since" in result.output
    assert "when the task's timeout of 8s ran out" in result.output
    assert "cancelling it failed too" in result.output
    assert "did not finish within the task's timeout" not in result.output


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_timeout_tells_one_story(devhost, capfd, deferrable):
    """``timeout=2``: the task fails with the run's last state and its fate, and no chained error that
    says the opposite (``Timed out after 0s ... The run goes on on the host``)."""
    dag = run_operator_dag(
        "run_timeout_story",
        workflow_id="conformance-cancellable",
        inputs={"delayMs": 60000},
        timeout=2,
        deferrable=deferrable,
    )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert f"OpenWOP run {run_id} did not finish within the task's timeout of 2s (last status running" in (
        result.output
    )
    assert "; it was cancelled." in result.output
    assert "Timed out after 0s" not in result.output
    assert "goes on on the host" not in result.output
