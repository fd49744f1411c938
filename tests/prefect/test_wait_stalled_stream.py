"""The Prefect waits during a burst of 503s on ``/events`` (issue #12, item 11): the flow and the wait task
use the core's ``wait_for_run``, which reads the run's snapshot while the stream cannot be reopened. Before
the fix the stream's backoff outlasted the ``timeout`` given here and the wait timed out on a finished run."""

from __future__ import annotations

import pytest
from prefect import flow

from openwop_prefect import create_openwop_run, run_openwop_workflow, wait_for_openwop_run

EVENTS_ROUTE = "GET /v1/runs/{runId}/events"


def burst(host, count: int = 12) -> None:
    host.set_faults(fail_requests=[{"route": EVENTS_ROUTE, "status": 503, "count": count}])


@pytest.mark.timeout(180)
def test_flow_reports_the_finished_run_during_a_503_burst(credentials, host):
    burst(host)
    state = run_openwop_workflow(
        credentials, "conformance-delay", {"delayMs": 1500}, timeout=40, check_interval=1, return_state=True
    )

    assert state.is_completed()
    [run_id] = host.run_ids()
    assert host.get_run(run_id)["status"] == "completed"


@pytest.mark.timeout(180)
def test_wait_task_reports_the_finished_run_during_a_503_burst(credentials, host):
    @flow
    def create_then_wait() -> str:
        run_id = create_openwop_run(credentials, "conformance-delay", {"delayMs": 1500})
        burst(host)
        return wait_for_openwop_run(credentials, run_id, timeout=40).status

    assert create_then_wait() == "completed"
