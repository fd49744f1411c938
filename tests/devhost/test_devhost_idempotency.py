"""Layer-1 idempotency (replay, mismatch, in-flight, what is not cached) and X-Dedup."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
from devhost_helpers import assert_error, create, wait_status

from openwop_devhost import DevHost, Faults


def test_same_key_same_body_replays(client: httpx.Client, host: DevHost) -> None:
    key = str(uuid.uuid4())
    body = json.dumps({"workflowId": "conformance-idempotent", "inputs": {"nonce": "n-1"}}).encode()
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    before = host.runs_created("conformance-idempotent")
    first = client.post("/v1/runs", content=body, headers=headers)
    second = client.post("/v1/runs", content=body, headers=headers)
    assert first.status_code == 201 and second.status_code == 201
    assert second.json()["runId"] == first.json()["runId"]
    assert second.headers["openwop-idempotent-replay"] == "true"
    assert "openwop-idempotent-replay" not in first.headers
    assert host.runs_created("conformance-idempotent") == before + 1
    other = client.post("/v1/runs", content=body.replace(b"n-1", b"n-2"), headers=headers)
    assert_error(other, 409, "idempotency_key_mismatch")
    assert "runId" not in other.text
    # keys are scoped per endpoint: the same key on another route is a new operation
    cancel = client.post(f"/v1/runs/{first.json()['runId']}/cancel", headers={"Idempotency-Key": key})
    assert cancel.status_code == 200 and "openwop-idempotent-replay" not in cancel.headers


def test_validation_errors_are_not_cached(client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    bad = client.post("/v1/runs", json={"workflowId": "conformance-idempotent"}, headers={"Idempotency-Key": key})
    assert_error(bad, 400, "validation_error")
    again = client.post("/v1/runs", json={"workflowId": "conformance-idempotent"}, headers={"Idempotency-Key": key})
    assert "openwop-idempotent-replay" not in again.headers
    good = client.post(
        "/v1/runs",
        json={"workflowId": "conformance-idempotent", "inputs": {"nonce": "x"}},
        headers={"Idempotency-Key": key},
    )
    assert good.status_code == 201
    long_key = client.post("/v1/runs", json={"workflowId": "conformance-noop"}, headers={"Idempotency-Key": "k" * 256})
    assert_error(long_key, 400, "validation_error")


def test_not_found_is_cached_as_final(client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    first = client.post("/v1/runs", json={"workflowId": "missing-wf"}, headers={"Idempotency-Key": key})
    second = client.post("/v1/runs", json={"workflowId": "missing-wf"}, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 404
    assert second.headers["openwop-idempotent-replay"] == "true"


def test_in_flight_conflict() -> None:
    with DevHost(faults=Faults(latency_ms=600)) as slow:
        headers = {"Authorization": f"Bearer {slow.api_key}", "Idempotency-Key": "in-flight-1"}
        body = {"workflowId": "conformance-idempotent", "inputs": {"nonce": "a"}}
        results: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: results.append(httpx.post(f"{slow.base_url}/v1/runs", json=body, headers=headers))
        )
        thread.start()
        time.sleep(0.3)
        conflict = httpx.post(f"{slow.base_url}/v1/runs", json=body, headers=headers)
        thread.join()
        details = assert_error(conflict, 409, "idempotency_in_flight")["details"]
        assert details["retryAfter"] == 1 and conflict.headers["retry-after"] == "1"
        assert results[0].status_code == 201
        replay = httpx.post(f"{slow.base_url}/v1/runs", json=body, headers=headers)
        assert replay.json()["runId"] == results[0].json()["runId"]
        assert slow.runs_created() == 1


def test_x_dedup_enforce(client: httpx.Client) -> None:
    scope = f"airflow:dag.task:{uuid.uuid4()}"
    body = {"workflowId": "conformance-cancellable", "inputs": {"delayMs": 60000}, "scopeId": scope}
    first = client.post("/v1/runs", json=body, headers={"X-Dedup": "enforce"})
    assert first.status_code == 201
    second = client.post("/v1/runs", json=body, headers={"X-Dedup": "enforce"})
    details = assert_error(second, 409, "run_already_active")["details"]
    assert details["activeRunId"] == first.json()["runId"] and details["retryAfter"] == 5
    assert second.headers["retry-after"] == "5"
    without_header = client.post("/v1/runs", json=body)
    assert without_header.status_code == 201
    client.post("/v1/runs:bulk-cancel", json={"runIds": [first.json()["runId"], without_header.json()["runId"]]})
    wait_status(client, first.json()["runId"], {"cancelled"})
    wait_status(client, without_header.json()["runId"], {"cancelled"})
    third = client.post("/v1/runs", json=body, headers={"X-Dedup": "enforce"})
    assert third.status_code == 201
    client.post(f"/v1/runs/{third.json()['runId']}/cancel")
    assert_error(
        client.post("/v1/runs", json={"workflowId": "conformance-noop"}, headers={"X-Dedup": "enforce"}),
        400,
        "validation_error",
    )
    assert_error(client.post("/v1/runs", json=body, headers={"X-Dedup": "maybe"}), 400, "validation_error")


def test_dedup_conflict_is_not_cached(client: httpx.Client) -> None:
    scope = f"scope-{uuid.uuid4()}"
    active = create(client, "conformance-cancellable", inputs={"delayMs": 60000}, scopeId=scope)
    body = {"workflowId": "conformance-noop", "scopeId": scope}
    headers = {"X-Dedup": "enforce", "Idempotency-Key": str(uuid.uuid4())}
    assert_error(client.post("/v1/runs", json=body, headers=headers), 409, "run_already_active")
    client.post(f"/v1/runs/{active}/cancel")
    wait_status(client, active, {"cancelled"})
    retried = client.post("/v1/runs", json=body, headers=headers)
    assert retried.status_code == 201
