"""``:fork`` in replay and branch mode, and its error cases."""

from __future__ import annotations

import httpx
from devhost_helpers import assert_error, create, read_stream, wait_status

from openwop_devhost import DevHost

TERMINAL = {"completed", "failed", "cancelled"}


def test_replay_from_start(client: httpx.Client, host: DevHost) -> None:
    source = create(client, "conformance-multi-node")
    wait_status(client, source, TERMINAL)
    response = client.post(f"/v1/runs/{source}:fork", json={"mode": "replay"})
    assert response.status_code == 201
    body = response.json()
    assert body["sourceRunId"] == source and body["fromSeq"] == 0 and body["mode"] == "replay"
    assert body["runId"] != source and body["eventsUrl"].endswith(f"/v1/runs/{body['runId']}/events")
    snapshot = wait_status(client, body["runId"], TERMINAL)
    assert snapshot["status"] == "completed" and snapshot["sourceRunId"] == source
    assert snapshot["forkedFrom"] == {"runId": source, "fromSeq": 0, "mode": "replay"}
    assert [e["type"] for e in host.events(body["runId"])] == [e["type"] for e in host.events(source)]


def test_branch_inherits_prefix_and_reexecutes_rest(client: httpx.Client, host: DevHost) -> None:
    source = create(client, "conformance-multi-node")
    wait_status(client, source, TERMINAL)
    source_events = host.events(source)
    # fromSeq 3 = right after node a completed (0 run.started, 1 a started, 2 a completed)
    response = client.post(
        f"/v1/runs/{source}:fork",
        json={
            "mode": "branch",
            "fromSeq": 3,
            "runOptionsOverlay": {"tags": ["fork:debug"], "configurable": {"model": "m2"}},
        },
    )
    assert response.status_code == 201
    fork = response.json()["runId"]
    snapshot = wait_status(client, fork, TERMINAL)
    assert snapshot["status"] == "completed"
    assert snapshot["tags"] == ["fork:debug"] and snapshot["configurable"] == {"model": "m2"}
    events = host.events(fork)
    assert [e["sequence"] for e in events] == list(range(len(events)))
    for inherited, original in zip(events[:3], source_events[:3], strict=True):
        assert inherited["runId"] == fork and inherited["type"] == original["type"]
        assert inherited["sequence"] == original["sequence"] and inherited["eventId"] != original["eventId"]
    started = [e["nodeId"] for e in events[3:] if e["type"] == "node.started"]
    assert started == ["b", "c"]
    stream = read_stream(client, fork, params={"streamMode": "debug"})
    assert [f.json()["sequence"] for f in stream.frames] == list(range(len(events)))


def test_branch_mid_node_reruns_that_node(client: httpx.Client, host: DevHost) -> None:
    source = create(client, "conformance-multi-node")
    wait_status(client, source, TERMINAL)
    fork = client.post(f"/v1/runs/{source}:fork", json={"mode": "branch", "fromSeq": 2}).json()["runId"]
    wait_status(client, fork, TERMINAL)
    started = [e["nodeId"] for e in host.events(fork) if e["type"] == "node.started"]
    assert started == ["a", "a", "b", "c"]  # the inherited start of a, then a re-executed


def test_replay_reuses_recorded_decision_and_branch_asks_again(client: httpx.Client, host: DevHost) -> None:
    source = create(client, "conformance-approval")
    wait_status(client, source, {"waiting-approval"})
    client.post(f"/v1/runs/{source}/interrupts/gate", json={"resumeValue": {"action": "accept"}})
    wait_status(client, source, TERMINAL)
    replay = client.post(f"/v1/runs/{source}:fork", json={"mode": "replay"}).json()["runId"]
    snapshot = wait_status(client, replay, TERMINAL)
    assert snapshot["status"] == "completed"
    resolved = next(e for e in host.events(replay) if e["type"] == "interrupt.resolved")["payload"]
    assert resolved["resolvedBy"] == "replay"
    branch = client.post(f"/v1/runs/{source}:fork", json={"mode": "branch", "fromSeq": 1}).json()["runId"]
    assert wait_status(client, branch, {"waiting-approval"})["currentNodeId"] == "gate"
    client.post(f"/v1/runs/{branch}/interrupts/gate", json={"resumeValue": {"action": "reject"}})
    assert wait_status(client, branch, TERMINAL)["status"] == "failed"


def test_fork_of_failed_prefix_fails(client: httpx.Client) -> None:
    source = create(client, "conformance-failure")
    wait_status(client, source, TERMINAL)
    fork = client.post(f"/v1/runs/{source}:fork", json={"mode": "branch", "fromSeq": 3}).json()["runId"]
    snapshot = wait_status(client, fork, TERMINAL)
    assert snapshot["status"] == "failed" and snapshot["error"]["code"] == "conformance_test_failure"


def test_fork_errors(client: httpx.Client) -> None:
    source = create(client, "conformance-noop")
    wait_status(client, source, TERMINAL)
    url = f"/v1/runs/{source}:fork"
    assert_error(client.post(url, json={}), 400, "validation_error")
    assert_error(client.post(url, json={"mode": "rewind"}), 400, "validation_error")
    assert (
        assert_error(client.post(url, json={"mode": "branch"}), 400, "validation_error")["details"]["key"] == "fromSeq"
    )
    assert_error(client.post(url, json={"mode": "replay", "fromSeq": -1}), 400, "validation_error")
    assert_error(client.post(url, json={"mode": "replay", "fromSeq": True}), 400, "validation_error")
    assert_error(
        client.post(url, json={"mode": "replay", "runOptionsOverlay": {"tags": ["x"]}}), 400, "validation_error"
    )
    assert_error(client.post(url, json={"mode": "replay", "extra": 1}), 400, "validation_error")
    assert_error(
        client.post(url, json={"mode": "branch", "fromSeq": 1, "runOptionsOverlay": {"inputs": {}}}),
        400,
        "validation_error",
    )
    beyond = client.post(url, json={"mode": "branch", "fromSeq": 4})
    details = assert_error(beyond, 422, "from_seq_out_of_range")["details"]
    assert details == {"sourceRunId": source, "fromSeq": 4, "lastSequence": 3}
    assert_error(client.post("/v1/runs/missing:fork", json={"mode": "replay"}), 404, "run_not_found")
    replay_empty_overlay = client.post(url, json={"mode": "replay", "runOptionsOverlay": {}})
    assert replay_empty_overlay.status_code == 201
