"""A waiter that shows progress events (``on_event``, as the Airflow trigger does) does not wait one more
snapshot check for a stream that cannot come back before it (issue #15, goal 3).

While the event stream is refused the waiter reads the run's snapshot every ``STALL_CHECK_INTERVAL``; with an
``on_event`` callback a terminal snapshot used to give the stream one more check to deliver the run's last
events itself, even when its reconnect backoff had grown past that check (a 503 burst): the end was noticed a
whole check later (up to two intervals in all, ~5 s at p99 on a loaded machine in ``bench.stalled_stream``).
Now the waiter finishes on that snapshot and reads the missing events from the poll endpoint at once.
"""

from __future__ import annotations

from typing import Any

import pytest
from core_helpers import call

from openwop_core import AsyncOpenwopClient, OpenwopClient, RunEvent
from openwop_devhost import DevHost

EVENTS_ROUTE = "GET /v1/runs/{runId}/events"
#: After one refused connection the stream's next reconnect is 5-10 s away, past the next snapshot check.
SLOW_RECONNECT = {"initial_backoff": 10.0, "max_backoff": 30.0}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client_class", [OpenwopClient, AsyncOpenwopClient], ids=["sync", "async"])
async def test_refused_stream_is_not_given_another_check_once_the_snapshot_shows_the_end(
    client_class: Any, host: DevHost
) -> None:
    slow_client = client_class(host.base_url, api_key=host.api_key, retry=SLOW_RECONNECT)
    try:
        await refused_stream_wait(slow_client, host)
    finally:
        await call(slow_client.aclose() if isinstance(slow_client, AsyncOpenwopClient) else slow_client.close())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client_class", [OpenwopClient, AsyncOpenwopClient], ids=["sync", "async"])
async def test_a_refused_streams_retry_after_is_honoured_by_the_catch_up_read(client_class: Any, host: DevHost) -> None:
    """Given up on, the stream's missed events are read at once, but never before the host's ``Retry-After``
    on the events endpoint: with 30 s asked, longer than a snapshot check, the read is skipped (the snapshot
    tells the end) rather than sent early."""
    client = client_class(host.base_url, api_key=host.api_key)
    try:
        run = await call(client.runs_create("conformance-noop"))
        host.wait_for_status(run.run_id)
        rule = {"route": EVENTS_ROUTE, "status": 503, "count": 1000, "retry_after": 30}
        host.set_faults(fail_requests=[rule])
        host.clear_requests()
        result = await call(client.wait_for_run(run.run_id, timeout=50, on_event=lambda _event: None))
    finally:
        await call(client.aclose() if isinstance(client, AsyncOpenwopClient) else client.close())

    assert result.status == "completed"
    events_requests = [r["path"] for r in host.requests if r["path"].startswith(f"/v1/runs/{run.run_id}/events")]
    assert events_requests == [f"/v1/runs/{run.run_id}/events"], events_requests  # the refused stream only


async def refused_stream_wait(slow_client: Any, host: DevHost) -> None:
    """The run is over before the wait starts; the stream is refused; the waiter shows progress events."""
    run = await call(slow_client.runs_create("conformance-noop"))
    host.wait_for_status(run.run_id)
    host.set_faults(fail_requests=[{"route": EVENTS_ROUTE, "status": 503, "count": 1000}])
    host.clear_requests()
    seen: list[RunEvent] = []

    result = await call(slow_client.wait_for_run(run.run_id, timeout=50, on_event=seen.append))

    assert result.status == "completed"
    # the events the refused stream could not deliver were read from the poll endpoint, in order
    assert [e.type for e in seen][-1] == "run.completed"
    assert [e.sequence for e in seen] == sorted({e.sequence for e in seen})
    snapshot_reads = [r for r in host.requests if r["method"] == "GET" and r["path"] == f"/v1/runs/{run.run_id}"]
    # the first read, the one right after the refused connection (the end), the final one: no second check
    assert len(snapshot_reads) == 3, snapshot_reads
