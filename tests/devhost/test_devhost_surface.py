"""Discovery, OpenAPI, authentication, routing and error envelopes of the devhost."""

from __future__ import annotations

import re

import httpx
from devhost_helpers import API_KEY, READ_ONLY_KEY, assert_error, create

from openwop_devhost import DevHost


def test_discovery_is_public_and_honest(host: DevHost) -> None:
    response = httpx.get(f"{host.base_url}/.well-known/openwop")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["capabilities-etag"]
    doc = response.json()
    assert doc["protocolVersion"] == "1.0"
    assert "clarification.request" in doc["supportedEnvelopes"]
    assert all(isinstance(v, int) and v >= 0 for v in doc["schemaVersions"].values())
    assert {"clarificationRounds", "schemaRounds", "envelopesPerTurn"} <= set(doc["limits"])
    assert doc["limits"]["maxNodeExecutions"] == 100
    assert doc["replay"] == {
        "supported": True,
        "modes": ["replay", "branch"],
        "sideEffectSuppression": "recorded-outcome",
    }
    assert doc["runs"]["pauseResume"]["supported"] is True
    assert doc["runs"]["bulkCancel"] == {"supported": True, "maxRunIds": 100}
    assert doc["idempotency"]["supported"] is True
    assert doc["webhooks"]["signatureAlgorithms"] == ["v1"]
    assert doc["extensions"]["interrupts"]["signedCallbackTokens"] is True
    for fixture in (
        "conformance-noop",
        "conformance-delay",
        "conformance-cancellable",
        "conformance-failure",
        "conformance-multi-node",
        "conformance-identity",
        "conformance-approval",
        "conformance-clarification",
        "conformance-idempotent",
        "conformance-approval-timeout",
        "conformance-approval-reject-routed",
        "conformance-approval-reject-loopback",
        "conformance-cap-breach",
        "conformance-interrupt-external-event",
    ):
        assert fixture in doc["fixtures"]
    # legacy mirror of every capability family
    for family in ("limits", "replay", "runs", "idempotency", "webhooks", "extensions", "fixtures"):
        assert doc["capabilities"][family] == doc[family]
    # every advertised configurable key is accepted
    assert "recursionLimit" in doc["configurable"]


def test_openapi_json_is_public(host: DevHost) -> None:
    response = httpx.get(f"{host.base_url}/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/runs/{runId}:fork" in doc["paths"]
    assert "/v1/interrupts/{token}" in doc["paths"]
    assert "../schemas/" not in response.text


def test_auth_missing_and_wrong_key(host: DevHost) -> None:
    missing = httpx.get(f"{host.base_url}/v1/runs/x")
    assert_error(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.get(f"{host.base_url}/v1/runs/x", headers={"Authorization": "Bearer not-the-key-XYZ"})
    body = assert_error(wrong, 401, "unauthenticated")
    assert "not-the-key-XYZ" not in wrong.text
    assert "not accepted" in body["message"]
    malformed = httpx.get(f"{host.base_url}/v1/runs/x", headers={"Authorization": "Basic abc"})
    assert_error(malformed, 401, "unauthenticated")


def test_scoped_key_gets_403(host: DevHost, client: httpx.Client) -> None:
    run_id = create(client, "conformance-noop")
    limited = {"Authorization": f"Bearer {READ_ONLY_KEY}"}
    assert httpx.get(f"{host.base_url}/v1/runs/{run_id}", headers=limited).status_code == 200
    denied = httpx.post(f"{host.base_url}/v1/runs", json={"workflowId": "conformance-noop"}, headers=limited)
    body = assert_error(denied, 403, "forbidden")
    assert body["details"]["scopeRequired"] == "runs:create"
    denied = httpx.post(f"{host.base_url}/v1/runs/{run_id}/cancel", headers=limited)
    assert assert_error(denied, 403, "forbidden")["details"]["scopeRequired"] == "runs:cancel"


def test_traceparent_continued_or_created(client: httpx.Client) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = client.get("/.well-known/openwop", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert re.fullmatch(rf"00-{trace_id}-[0-9a-f]{{16}}-01", response.headers["traceparent"])
    assert response.headers["traceparent"] != f"00-{trace_id}-00f067aa0ba902b7-01"
    fresh = client.get("/.well-known/openwop", headers={"traceparent": "garbage"})
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", fresh.headers["traceparent"])
    assert trace_id not in fresh.headers["traceparent"]
    error = client.get("/v1/runs/does-not-exist")
    assert error.headers["traceparent"]


def test_routing_errors(client: httpx.Client) -> None:
    body = assert_error(client.get("/runs"), 400, "version_required")
    assert "/v1/runs" in body["message"]
    assert_error(client.post("/runs", json={}), 400, "version_required")
    prefixed = assert_error(client.post("/openwop/v1/runs", json={}), 400, "version_required")
    assert "use /v1/runs " in prefixed["message"]  # a client's path prefix this host does not have
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    not_allowed = client.delete("/v1/runs")
    assert_error(not_allowed, 405, "method_not_allowed")
    assert not_allowed.headers["allow"] == "POST"
    assert_error(client.get("/v1/runs/unknown-run"), 404, "run_not_found")


def test_bad_bodies(client: httpx.Client) -> None:
    invalid = client.post("/v1/runs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert "not valid JSON" in assert_error(invalid, 400, "validation_error")["message"]
    assert_error(client.post("/v1/runs", json=[1, 2]), 400, "validation_error")
    assert_error(client.post("/v1/runs"), 400, "validation_error")
    unknown = client.post("/v1/runs", json={"workflowId": "conformance-noop", "colour": "red"})
    body = assert_error(unknown, 400, "validation_error")
    assert body["details"]["key"] == "colour" and "'colour'" in body["message"]
    big = client.post("/v1/runs", content=b"{" + b" " * 1_100_000 + b"}")
    assert_error(big, 413, "payload_too_large")


def test_workflow_definition(client: httpx.Client) -> None:
    response = client.get("/v1/workflows/conformance-approval-timeout")
    assert response.status_code == 200
    doc = response.json()
    assert doc["id"] == "conformance-approval-timeout"
    assert doc["nodes"][0]["typeId"] == "core.approvalGate"
    assert doc["nodes"][0]["config"]["timeoutMs"] == 1500
    assert_error(client.get("/v1/workflows/nope"), 404, "workflow_not_found")
    encoded = client.get("/v1/workflows/conformance%2Dnoop")
    assert encoded.status_code == 200


def test_request_log_redacts_credentials(host: DevHost, client: httpx.Client) -> None:
    client.get("/v1/workflows/conformance-noop", headers={"X-Probe": "log-me", "Idempotency-Key": "k-1"})
    entry = [r for r in host.requests if r["headers"].get("x-probe") == "log-me"][-1]
    assert entry["method"] == "GET" and entry["path"] == "/v1/workflows/conformance-noop" and entry["status"] == 200
    assert entry["headers"]["authorization"] == "<redacted>"
    assert entry["headers"]["idempotency-key"] == "k-1"
    assert all(API_KEY not in str(r) for r in host.requests)


def test_create_response_and_unknown_workflow(client: httpx.Client, host: DevHost) -> None:
    response = client.post("/v1/runs", json={"workflowId": "conformance-noop"})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "running"
    assert body["eventsUrl"] == f"{host.base_url}/v1/runs/{body['runId']}/events"
    assert body["statusUrl"] == f"{host.base_url}/v1/runs/{body['runId']}"
    missing = client.post("/v1/runs", json={"workflowId": "no-such-workflow"})
    assert assert_error(missing, 404, "workflow_not_found")["details"]["workflowId"] == "no-such-workflow"
    assert_error(client.post("/v1/runs", json={"inputs": {}}), 400, "validation_error")
    assert_error(
        client.post("/v1/runs", json={"mode": "eval", "evalSuiteRef": "x", "agentId": "a"}),
        501,
        "capability_not_provided",
    )
