"""SSE framing, stream modes, resume, batching and content negotiation."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import quote

import httpx
from devhost_helpers import assert_error, create, read_stream, wait_status

from openwop_devhost import DevHost

TERMINAL = {"completed", "failed", "cancelled"}


def test_frames_are_id_event_data(client: httpx.Client) -> None:
    run_id = create(client, "conformance-multi-node")
    stream = read_stream(client, run_id)
    assert stream.status == 200 and stream.clean_end
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["traceparent"]
    for frame in stream.frames:
        doc = frame.json()
        assert frame.id == str(doc["sequence"])
        assert frame.event == doc["type"]
        assert doc["runId"] == run_id
    # updates mode: node.started is not included, the stream closes after run.completed
    assert stream.types() == ["run.started", "node.completed", "node.completed", "node.completed", "run.completed"]


def test_debug_mode_includes_everything(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "devhost-burst", inputs={"count": 5, "payloadBytes": 100})
    stream = read_stream(client, run_id, params={"streamMode": "debug"})
    assert [int(f.id or -1) for f in stream.frames] == list(range(len(host.events(run_id))))
    assert stream.types().count("log.appended") == 5
    assert "node.started" in stream.types()
    updates = read_stream(client, run_id)
    assert "log.appended" not in updates.types()
    assert len(json.dumps(host.events(run_id)[2]["payload"])) in range(80, 121)


def test_values_mode_snapshots(client: httpx.Client) -> None:
    run_id = create(client, "conformance-multi-node")
    stream = read_stream(client, run_id, params={"streamMode": "values"})
    assert {f.event for f in stream.frames} == {"state.snapshot"}
    snapshots = [f.json() for f in stream.frames]
    # one snapshot per values-tier event: run.started + 3 x (node.started, node.completed) + run.completed
    assert len(snapshots) == 8
    assert all("type" not in s and s["runId"] == run_id for s in snapshots)
    assert snapshots[0]["status"] == "running" and snapshots[-1]["status"] == "completed"
    assert snapshots[1]["nodeStates"]["a"]["status"] == "running"
    assert [int(f.id or 0) for f in stream.frames] == [0, 1, 2, 3, 4, 5, 6, 7]


def test_values_resume_starts_with_fresh_snapshot(client: httpx.Client) -> None:
    run_id = create(client, "conformance-approval")
    wait_status(client, run_id, {"waiting-approval"})
    stream = read_stream(client, run_id, params={"streamMode": "values"}, headers={"Last-Event-ID": "1"}, max_frames=1)
    first = stream.frames[0].json()
    assert stream.frames[0].event == "state.snapshot"
    assert first["status"] == "waiting-approval" and first["currentNodeId"] == "gate"
    client.post(f"/v1/runs/{run_id}/cancel")


def test_messages_and_mixed_modes(client: httpx.Client) -> None:
    run_id = create(client, "devhost-burst", inputs={"count": 2})
    messages = read_stream(client, run_id, params={"streamMode": "messages"})
    assert messages.frames == [] and messages.clean_end
    mixed = read_stream(client, run_id, params={"streamMode": "updates,debug"})
    names = {(f.json()["type"], f.event) for f in mixed.frames}
    assert ("run.started", "updates") in names and ("log.appended", "debug") in names


def test_unsupported_stream_modes(client: httpx.Client) -> None:
    run_id = create(client, "conformance-noop")
    for mode in ("everything", "values,updates", "updates,,debug"):
        response = client.get(
            f"/v1/runs/{run_id}/events", params={"streamMode": mode}, headers={"Accept": "text/event-stream"}
        )
        body = assert_error(response, 400, "unsupported_stream_mode")
        assert body["details"]["supported"] == ["values", "updates", "messages", "debug"]
    bad_buffer = client.get(
        f"/v1/runs/{run_id}/events", params={"bufferMs": "soon"}, headers={"Accept": "text/event-stream"}
    )
    assert_error(bad_buffer, 400, "validation_error")
    bad_cursor = client.get(f"/v1/runs/{run_id}/events", headers={"Accept": "text/event-stream", "Last-Event-ID": "x"})
    assert_error(bad_cursor, 400, "validation_error")
    assert_error(client.get("/v1/runs/nope/events", headers={"Accept": "text/event-stream"}), 404, "run_not_found")


def test_resume_never_repeats_last_event(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-multi-node")
    wait_status(client, run_id, TERMINAL)
    stream = read_stream(client, run_id, headers={"Last-Event-ID": "2"}, params={"streamMode": "debug"})
    assert [f.id for f in stream.frames] == ["3", "4", "5", "6", "7"]
    at_end = read_stream(client, run_id, headers={"Last-Event-ID": "7"})
    assert at_end.frames == [] and at_end.clean_end
    beyond = read_stream(client, run_id, headers={"Last-Event-ID": "99"})
    assert beyond.frames == []


def test_live_stream_closes_after_terminal_event(client: httpx.Client) -> None:
    run_id = create(client, "conformance-approval")
    result: dict[str, object] = {}

    def reader() -> None:
        result["stream"] = read_stream(client, run_id)

    thread = threading.Thread(target=reader)
    thread.start()
    wait_status(client, run_id, {"waiting-approval"})
    time.sleep(0.1)
    client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept"}})
    thread.join(5)
    assert not thread.is_alive()
    stream = result["stream"]
    types = stream.types()  # type: ignore[attr-defined]
    assert types[-1] == "run.completed"
    assert "interrupt.requested" in types and "approval.requested" in types and "approval.received" in types
    assert "node.resumed" not in types  # debug-only per the spec table


def test_keepalive_comments(client: httpx.Client) -> None:
    run_id = create(client, "conformance-delay", inputs={"delayMs": 1500})
    stream = read_stream(client, run_id)
    assert stream.comments.count("keepalive") >= 2  # shared host keepalive interval is 0.3 s
    assert stream.types()[-1] == "run.completed"


def test_buffered_batches(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "devhost-burst", inputs={"count": 30})
    stream = read_stream(client, run_id, params={"streamMode": "debug", "bufferMs": "50"})
    assert all(f.event == "batch" for f in stream.frames)
    flattened = [doc for f in stream.frames for doc in f.json()]
    assert [d["sequence"] for d in flattened] == list(range(len(host.events(run_id))))
    for frame in stream.frames:
        assert frame.id == str(frame.json()[-1]["sequence"])
    assert flattened[-1]["type"] == "run.completed"
    clamped = read_stream(client, run_id, params={"bufferMs": "99999"})
    assert clamped.status == 200


def test_accept_negotiation_returns_poll_json(client: httpx.Client) -> None:
    run_id = create(client, "conformance-noop")
    wait_status(client, run_id, TERMINAL)
    response = client.get(f"/v1/runs/{run_id}/events", headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["isComplete"] is True and len(body["events"]) == 4 and body["runStatus"] == "completed"
    with_query = read_stream(client, run_id, params={"streamMode": "updates"}, headers={"Accept": "*/*"})
    assert with_query.headers["content-type"].startswith("text/event-stream")


def test_percent_encoded_run_id_segment(client: httpx.Client) -> None:
    run_id = create(client, "conformance-noop")
    encoded = quote(run_id, safe="").replace("_", "%5F")
    response = client.get(f"/v1/runs/{encoded}")
    assert response.status_code == 200 and response.json()["runId"] == run_id
    assert_error(client.get("/v1/runs/a%2Fb"), 404, "run_not_found")
    assert_error(client.get("/v1/runs/a%2Fb/events/poll"), 404, "run_not_found")


def test_burst_streams_every_event_in_order(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "devhost-burst", inputs={"count": 20000, "payloadBytes": 250})
    started = time.monotonic()
    stream = read_stream(client, run_id, params={"streamMode": "debug"})
    assert [int(f.id or -1) for f in stream.frames] == list(range(20004))
    assert time.monotonic() - started < 10
    updates = read_stream(client, run_id)
    assert updates.types() == ["run.started", "node.completed", "run.completed"]
    page = client.get(f"/v1/runs/{run_id}/events/poll").json()
    assert len(page["events"]) == 10000 and page["isComplete"] is False and page["lastEventSeq"] == 9999
