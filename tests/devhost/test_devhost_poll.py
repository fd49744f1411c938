"""The long-poll endpoint: cursors, legacy ``since``, past-end cursors and waiting."""

from __future__ import annotations

import threading
import time

import httpx
from devhost_helpers import assert_error, create, wait_status

TERMINAL = {"completed", "failed", "cancelled"}


def test_poll_union_shape_and_cursor(client: httpx.Client) -> None:
    run_id = create(client, "conformance-multi-node")
    wait_status(client, run_id, TERMINAL)
    body = client.get(f"/v1/runs/{run_id}/events/poll").json()
    assert set(body) == {"runId", "events", "isComplete", "lastEventSeq", "runStatus", "isTerminal"}
    assert [e["sequence"] for e in body["events"]] == list(range(8))
    assert body["isComplete"] is True and body["isTerminal"] is True and body["lastEventSeq"] == 7
    assert "node.started" in [e["type"] for e in body["events"]]  # the full log
    tail = client.get(f"/v1/runs/{run_id}/events/poll", params={"lastSequence": 5}).json()
    assert [e["sequence"] for e in tail["events"]] == [6, 7]
    legacy = client.get(f"/v1/runs/{run_id}/events/poll", params={"since": 5}).json()
    assert legacy["events"] == tail["events"]
    start = client.get(f"/v1/runs/{run_id}/events/poll", params={"lastSequence": -1}).json()
    assert len(start["events"]) == 8


def test_poll_past_end_is_empty_200(client: httpx.Client) -> None:
    run_id = create(client, "conformance-noop")
    wait_status(client, run_id, TERMINAL)
    body = client.get(f"/v1/runs/{run_id}/events/poll", params={"lastSequence": 1000, "timeout": 1}).json()
    assert body["events"] == [] and body["isComplete"] is True and body["lastEventSeq"] == 3


def test_long_poll_waits_for_new_events(client: httpx.Client) -> None:
    run_id = create(client, "conformance-approval")
    wait_status(client, run_id, {"waiting-approval"})
    last = client.get(f"/v1/runs/{run_id}/events/poll").json()["lastEventSeq"]
    started = time.monotonic()
    empty = client.get(f"/v1/runs/{run_id}/events/poll", params={"lastSequence": last, "timeout": 1}).json()
    assert empty["events"] == [] and empty["isComplete"] is False and empty["runStatus"] == "waiting-approval"
    assert 0.9 <= time.monotonic() - started < 3

    def resolve_soon() -> None:
        time.sleep(0.3)
        client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept"}})

    thread = threading.Thread(target=resolve_soon)
    thread.start()
    started = time.monotonic()
    woke = client.get(f"/v1/runs/{run_id}/events/poll", params={"lastSequence": last, "timeout": 30}).json()
    thread.join()
    assert time.monotonic() - started < 5
    assert woke["events"][0]["sequence"] == last + 1
    assert woke["events"][0]["type"] == "interrupt.resolved"


def test_poll_parameter_validation(client: httpx.Client) -> None:
    run_id = create(client, "conformance-noop")
    for params in ({"lastSequence": "abc"}, {"since": "1.5"}, {"timeout": 0}, {"timeout": 61}, {"timeout": "x"}):
        assert_error(client.get(f"/v1/runs/{run_id}/events/poll", params=params), 400, "validation_error")
    assert_error(client.get("/v1/runs/missing/events/poll"), 404, "run_not_found")
