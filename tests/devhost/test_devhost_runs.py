"""Run lifecycle over HTTP: create, snapshot, fixtures' behaviour, cancel, bulk cancel, pause/resume."""

from __future__ import annotations

import time

import httpx
import pytest
from devhost_helpers import assert_error, create, read_stream, wait_status

from openwop_devhost import DevHost

TERMINAL = {"completed", "failed", "cancelled"}


def test_noop_event_sequence_and_snapshot(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-noop", tags=["t1"], metadata={"k": "v"})
    snapshot = wait_status(client, run_id, TERMINAL)
    assert snapshot["status"] == "completed"
    assert snapshot["completedAt"] == snapshot["endedAt"]
    assert snapshot["tags"] == ["t1"] and snapshot["metadata"] == {"k": "v"}
    events = host.events(run_id)
    assert [e["type"] for e in events] == ["run.started", "node.started", "node.completed", "run.completed"]
    assert [e["sequence"] for e in events] == [0, 1, 2, 3]
    for event in events:
        assert event["runId"] == run_id and event["schemaVersion"] == 1 and event["eventId"]
        assert event["timestamp"].endswith("Z") and len(event["timestamp"]) == 24
    assert events[1]["nodeId"] == "noop" and "nodeId" not in events[0]
    assert events[-1]["payload"]["outputs"] == {} and isinstance(events[-1]["payload"]["durationMs"], int)
    assert len({e["eventId"] for e in events}) == 4


def test_identity_outputs_in_variables_and_run_completed(client: httpx.Client, host: DevHost) -> None:
    payload = {"a": [1, 2, {"b": None}], "s": "ü"}
    run_id = create(client, "conformance-identity", inputs={"payload": payload})
    snapshot = wait_status(client, run_id, TERMINAL)
    assert snapshot["variables"]["payload"] == payload
    assert snapshot["inputs"] == {"payload": payload}
    assert host.events(run_id)[-1]["payload"]["outputs"] == {"payload": payload}
    missing = client.post("/v1/runs", json={"workflowId": "conformance-identity"})
    assert assert_error(missing, 400, "validation_error")["details"]["input"] == "payload"


@pytest.mark.parametrize(
    ("workflow", "inputs", "problem"),
    [
        ("conformance-delay", {}, "required"),
        ("conformance-delay", {"delayMs": 30001}, "out of range"),
        ("conformance-delay", {"delayMs": "10"}, "must be of type integer"),
        ("conformance-cancellable", {"delayMs": 0}, "out of range"),
    ],
)
def test_delay_inputs_are_validated(
    client: httpx.Client, workflow: str, inputs: dict[str, object], problem: str
) -> None:
    response = client.post("/v1/runs", json={"workflowId": workflow, "inputs": inputs})
    body = assert_error(response, 400, "validation_error")
    assert "delayMs" in body["message"] and problem in body["message"]
    assert body["details"]["input"] == "delayMs"


def test_delay_runs_then_completes(client: httpx.Client) -> None:
    run_id = create(client, "conformance-delay", inputs={"delayMs": 600})
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "running"
    snapshot = wait_status(client, run_id, TERMINAL)
    assert snapshot["status"] == "completed"
    assert snapshot["variables"]["delayMs"] == 600


def test_failure_fixture(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-failure")
    snapshot = wait_status(client, run_id, TERMINAL)
    assert snapshot["status"] == "failed"
    assert snapshot["error"] == {"code": "conformance_test_failure", "message": "Intentional conformance failure"}
    types = [e["type"] for e in host.events(run_id)]
    assert types == ["run.started", "node.started", "node.failed", "run.failed"]
    failed = host.events(run_id)[-1]["payload"]
    assert failed["failedNodeId"] == "fail" and failed["error"]["code"] == "conformance_test_failure"


def test_capability_missing_fixture(client: httpx.Client) -> None:
    run_id = create(client, "conformance-capability-missing")
    snapshot = wait_status(client, run_id, TERMINAL)
    assert snapshot["error"]["code"] == "capability_not_provided"
    assert "conformance.never-provided" in snapshot["error"]["message"]


def test_multi_node_order(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-multi-node")
    wait_status(client, run_id, TERMINAL)
    completed = [e["nodeId"] for e in host.events(run_id) if e["type"] == "node.completed"]
    assert completed == ["a", "b", "c"]


def test_cap_breach_with_and_without_limit(client: httpx.Client, host: DevHost) -> None:
    limited = create(client, "conformance-cap-breach", configurable={"recursionLimit": 5})
    snapshot = wait_status(client, limited, TERMINAL)
    assert snapshot["status"] == "failed" and snapshot["error"]["code"] == "recursion_limit_exceeded"
    breach = [e for e in host.events(limited) if e["type"] == "cap.breached"]
    assert breach[0]["payload"] == {"kind": "node-executions", "limit": 5, "observed": 6, "nodeId": "n6"}
    assert snapshot["configurable"] == {"recursionLimit": 5}
    free = create(client, "conformance-cap-breach")
    assert wait_status(client, free, TERMINAL)["status"] == "completed"
    clamped = create(client, "conformance-cap-breach", configurable={"recursionLimit": 5000})
    assert wait_status(client, clamped, TERMINAL)["status"] == "completed"


@pytest.mark.parametrize(
    ("configurable", "key"),
    [
        ({"recursionLimit": 0}, "recursionLimit"),
        ({"recursionLimit": "5"}, "recursionLimit"),
        ({"temperature": 3}, "temperature"),
        ({"bogus": 1}, "bogus"),
        ({"run": {"bogus": 1}}, "run.bogus"),
    ],
)
def test_configurable_validation(client: httpx.Client, configurable: dict[str, object], key: str) -> None:
    response = client.post("/v1/runs", json={"workflowId": "conformance-noop", "configurable": configurable})
    assert assert_error(response, 400, "validation_error")["details"]["key"] == key


def test_run_options_validation(client: httpx.Client) -> None:
    assert_error(client.post("/v1/runs", json={"workflowId": "conformance-noop", "tags": "x"}), 400, "validation_error")
    assert_error(
        client.post("/v1/runs", json={"workflowId": "conformance-noop", "metadata": []}), 400, "validation_error"
    )
    assert_error(
        client.post("/v1/runs", json={"workflowId": "conformance-noop", "inputs": []}), 400, "validation_error"
    )
    assert_error(
        client.post("/v1/runs", json={"workflowId": "conformance-noop", "callbackUrl": "ftp://x"}),
        400,
        "validation_error",
    )
    forbidden = client.post("/v1/runs", json={"workflowId": "conformance-noop", "configurable": {"mockProvider": {}}})
    assert_error(forbidden, 403, "mock_provider_forbidden")


def test_run_timeout(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-delay", inputs={"delayMs": 5000}, configurable={"runTimeoutMs": 150})
    snapshot = wait_status(client, run_id, TERMINAL, timeout=5)
    assert snapshot["status"] == "failed" and snapshot["error"]["code"] == "run_timeout"
    types = [e["type"] for e in host.events(run_id)]
    assert types[-3:] == ["node.cancelled", "cap.breached", "run.failed"]


def test_conditional_get(client: httpx.Client) -> None:
    run_id = create(client, "conformance-noop")
    wait_status(client, run_id, TERMINAL)
    first = client.get(f"/v1/runs/{run_id}")
    etag = first.headers["etag"]
    again = client.get(f"/v1/runs/{run_id}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get(f"/v1/runs/{run_id}", headers={"If-None-Match": '"other"'}).status_code == 200


def test_cancel_running_then_terminal(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-cancellable", inputs={"delayMs": 60000})
    started = time.monotonic()
    response = client.post(f"/v1/runs/{run_id}/cancel", json={"reason": "test"})
    assert response.status_code == 200
    assert response.json() == {"runId": run_id, "status": "cancelling"}
    snapshot = wait_status(client, run_id, {"cancelled"}, timeout=5)
    assert time.monotonic() - started < 5
    assert "completedAt" in snapshot
    events = host.events(run_id)
    assert events[-1]["type"] == "run.cancelled" and events[-1]["payload"]["reason"] == "test"
    assert events[-2]["type"] == "node.cancelled"
    again = client.post(f"/v1/runs/{run_id}/cancel")
    assert again.json() == {"runId": run_id, "status": "cancelled", "alreadyTerminal": True}
    assert_error(client.post("/v1/runs/nope/cancel"), 404, "run_not_found")


def test_colon_cancel_alias(client: httpx.Client) -> None:
    run_id = create(client, "conformance-cancellable", inputs={"delayMs": 60000})
    response = client.post(f"/v1/runs/{run_id}:cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelling"
    wait_status(client, run_id, {"cancelled"})


def test_cancel_waiting_run(client: httpx.Client) -> None:
    run_id = create(client, "conformance-approval")
    wait_status(client, run_id, {"waiting-approval"})
    client.post(f"/v1/runs/{run_id}/cancel")
    assert wait_status(client, run_id, TERMINAL)["status"] == "cancelled"


def test_bulk_cancel(client: httpx.Client) -> None:
    running = create(client, "conformance-cancellable", inputs={"delayMs": 60000})
    done = create(client, "conformance-noop")
    wait_status(client, done, TERMINAL)
    response = client.post("/v1/runs:bulk-cancel", json={"runIds": [running, "ghost", done], "reason": "cleanup"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["runId"] for r in results] == [running, "ghost", done]
    assert results[0] == {"runId": running, "ok": True, "status": "cancelling"}
    assert results[1]["ok"] is False and results[1]["error"]["error"] == "not_found"
    assert results[2]["ok"] is False and results[2]["error"]["error"] == "run_terminal"
    wait_status(client, running, {"cancelled"})
    again = client.post("/v1/runs:bulk-cancel", json={"runIds": [running]}).json()["results"]
    assert again == [{"runId": running, "ok": True, "status": "cancelled"}]
    for body in ({"runIds": []}, {"runIds": ["x"] * 101}, {"runIds": [1]}, {"runIds": ["x"], "extra": 1}):
        invalid = client.post("/v1/runs:bulk-cancel", json=body)
        assert_error(invalid, 400, "validation_error")
    assert (
        assert_error(client.post("/v1/runs:bulk-cancel", json={"runIds": []}), 400, "validation_error")["details"][
            "maxRunIds"
        ]
        == 100
    )


def test_pause_drain_and_resume(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-delay", inputs={"delayMs": 500})
    response = client.post(f"/v1/runs/{run_id}:pause", json={"reason": "maint"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "paused" and body["pausedAt"]
    # drain-current-node: the delay node completes, then the run pauses before finishing
    snapshot = wait_status(client, run_id, {"paused"})
    assert snapshot["pausedAt"] == body["pausedAt"]
    types = [e["type"] for e in host.events(run_id)]
    assert types[-2:] == ["node.completed", "run.paused"]
    paused_event = host.events(run_id)[-1]["payload"]
    assert paused_event["drainPolicy"] == "drain-current-node" and paused_event["reason"] == "maint"
    again = client.post(f"/v1/runs/{run_id}:pause")
    assert again.status_code == 202 and again.json()["pausedAt"] == body["pausedAt"]
    resumed = client.post(f"/v1/runs/{run_id}:resume", json={"reason": "done"})
    assert resumed.status_code == 202 and resumed.json()["status"] == "running"
    assert wait_status(client, run_id, TERMINAL)["status"] == "completed"
    assert "run.resumed" in [e["type"] for e in host.events(run_id)]
    conflict = client.post(f"/v1/runs/{run_id}:pause")
    assert assert_error(conflict, 409, "conflict")["details"]["runStatus"] == "completed"
    assert (
        assert_error(client.post(f"/v1/runs/{run_id}:resume"), 409, "conflict")["details"]["runStatus"] == "completed"
    )


def test_pause_immediate_holds_events(client: httpx.Client, host: DevHost) -> None:
    slow = create(client, "conformance-delay", inputs={"delayMs": 400})
    response = client.post(f"/v1/runs/{slow}:pause", json={"drainPolicy": "immediate"})
    assert response.status_code == 202
    assert client.get(f"/v1/runs/{slow}").json()["status"] == "paused"
    time.sleep(0.6)
    assert [e["type"] for e in host.events(slow)][-1] == "run.paused"  # node.completed held back
    client.post(f"/v1/runs/{slow}:resume")
    assert wait_status(client, slow, TERMINAL)["status"] == "completed"
    assert_error(client.post(f"/v1/runs/{slow}:pause", json={"drainPolicy": "later"}), 400, "validation_error")
    assert_error(client.post(f"/v1/runs/{slow}:pause", json={"foo": 1}), 400, "validation_error")


def test_pause_conflicts_and_cancel_while_paused(client: httpx.Client) -> None:
    waiting = create(client, "conformance-approval")
    wait_status(client, waiting, {"waiting-approval"})
    body = assert_error(client.post(f"/v1/runs/{waiting}:pause"), 409, "conflict")
    assert body["details"]["runStatus"] == "waiting-approval"
    assert_error(client.post(f"/v1/runs/{waiting}:resume"), 409, "conflict")
    slow = create(client, "conformance-cancellable", inputs={"delayMs": 60000})
    client.post(f"/v1/runs/{slow}:pause", json={"drainPolicy": "immediate"})
    client.post(f"/v1/runs/{slow}/cancel")
    assert wait_status(client, slow, TERMINAL)["status"] == "cancelled"
    client.post(f"/v1/runs/{waiting}/cancel")
    assert_error(client.post("/v1/runs/nope:pause"), 404, "run_not_found")


def test_zero_delay_stream_ends_with_completion(client: httpx.Client) -> None:
    run_id = create(client, "conformance-delay", inputs={"delayMs": 0})
    stream = read_stream(client, run_id)
    assert stream.types()[-1] == "run.completed"


def test_artifacts(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "devhost-artifact", inputs={"data": {"rows": [1, 2]}})
    wait_status(client, run_id, TERMINAL)
    created = next(e for e in host.events(run_id) if e["type"] == "artifact.created")
    artifact_id = created["payload"]["artifactId"]
    assert created["payload"]["artifactType"] == "json" and created["nodeId"] == "make-artifact"
    response = client.get(f"/v1/runs/{run_id}/artifacts/{artifact_id}")
    assert response.status_code == 200
    assert response.json()["data"] == {"rows": [1, 2]} and response.json()["runId"] == run_id
    assert_error(client.get(f"/v1/runs/{run_id}/artifacts/nope"), 404, "artifact_not_found")
    assert_error(client.get(f"/v1/runs/ghost/artifacts/{artifact_id}"), 404, "run_not_found")
    assert "artifact.created" in read_stream(client, run_id).types()
