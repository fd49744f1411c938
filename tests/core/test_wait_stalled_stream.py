"""A failing event stream never ends or stalls a wait while the run's snapshot can be read (issue #12, 11).

The local host answers ``/events`` with a burst of 503s (``fail_requests``), or cuts the stream and then
refuses to reopen it. The client's stream budget is small (``stream_max_reconnects=2``), so before the fix
the wait raised ``ServerError`` after three failed reconnects although the run finished; now the waiter
reads the snapshot while the stream is down and reports how the run ended, sync and async.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from core_helpers import call

from openwop_core import AsyncOpenwopClient, OpenwopClient, RunEvent
from openwop_devhost import DevHost

EVENTS_ROUTE = "GET /v1/runs/{runId}/events"
#: A small stream budget and a real backoff: without snapshot reads, the burst below exhausts it.
STRICT = {"initial_backoff": 0.5, "max_backoff": 30.0, "stream_max_reconnects": 2, "max_attempts": 2}


@pytest.fixture(params=["sync", "async"])
async def strict_client(request: pytest.FixtureRequest, host: DevHost) -> AsyncIterator[Any]:
    """Sync and async clients whose stream gives up after two failed reconnects in a row."""
    if request.param == "sync":
        with OpenwopClient(host.base_url, api_key=host.api_key, retry=STRICT) as sync_client:
            yield sync_client
    else:
        async with AsyncOpenwopClient(host.base_url, api_key=host.api_key, retry=STRICT) as async_client:
            yield async_client


def burst(count: int = 12) -> list[dict[str, Any]]:
    return [{"route": EVENTS_ROUTE, "status": 503, "count": count}]


@pytest.mark.timeout(90)
async def test_503_burst_on_events_still_reports_the_finished_run(strict_client: Any, host: DevHost) -> None:
    host.set_faults(fail_requests=burst())
    run = await call(strict_client.runs_create("conformance-delay", inputs={"delayMs": 1500}))
    seen: list[RunEvent] = []

    result = await call(strict_client.wait_for_run(run.run_id, timeout=80, on_event=seen.append))

    assert result.status == "completed" and result.outcome == "completed"
    # the events the stream could not deliver were read once from the poll endpoint, in order
    assert [e.type for e in seen][-1] == "run.completed"
    assert [e.sequence for e in seen] == sorted({e.sequence for e in seen})


@pytest.mark.timeout(90)
async def test_503_burst_reports_a_run_cancelled_meanwhile_as_cancelled(strict_client: Any, host: DevHost) -> None:
    host.set_faults(fail_requests=burst())
    run = await call(strict_client.runs_create("conformance-cancellable", inputs={"delayMs": 60000}))

    def cancel_once_the_stream_failed() -> None:
        while host.faults.fail_requests[0].count == 12:
            time.sleep(0.05)
        with OpenwopClient(host.base_url, api_key=host.api_key) as other:
            other.runs_cancel(run.run_id, reason="cancelled while the stream is down")

    canceller = threading.Thread(target=cancel_once_the_stream_failed, daemon=True)
    canceller.start()
    result = await call(strict_client.wait_for_run(run.run_id, timeout=80))
    canceller.join(10)

    assert result.status == "cancelled" and result.outcome == "cancelled"


@pytest.mark.timeout(90)
async def test_stalled_stream_still_stops_on_the_interrupt(strict_client: Any, host: DevHost) -> None:
    host.set_faults(fail_requests=burst())
    run = await call(strict_client.runs_create("conformance-approval"))

    result = await call(strict_client.wait_for_run(run.run_id, timeout=80, stop_on_interrupt=True))

    assert result.outcome == "interrupted"
    assert result.interrupt is not None and result.interrupt.kind == "approval"


@pytest.mark.timeout(90)
async def test_cut_stream_that_cannot_be_reopened(strict_client: Any, host: DevHost) -> None:
    """The stream delivers one event, is cut, and every reconnect then answers 503."""
    host.set_faults(drop_sse_after_events=1)

    def cut_then_refuse(event: RunEvent) -> None:
        if not host.faults.fail_requests:
            host.set_faults(drop_sse_after_events=1, fail_requests=burst(50))

    run = await call(strict_client.runs_create("conformance-delay", inputs={"delayMs": 1500}))
    result = await call(strict_client.wait_for_run(run.run_id, timeout=80, on_event=cut_then_refuse))

    assert result.status == "completed"
