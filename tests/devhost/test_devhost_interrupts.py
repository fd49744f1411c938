"""Human-in-the-loop: approval, clarification, external events; by node, by token and admin route."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import quote

import httpx
from devhost_helpers import assert_error, create, wait_status

from openwop_devhost import DevHost

TERMINAL = {"completed", "failed", "cancelled"}


def _types(host: DevHost, run_id: str) -> list[str]:
    return [e["type"] for e in host.events(run_id)]


def test_approval_accept_by_node(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-approval")
    snapshot = wait_status(client, run_id, {"waiting-approval"})
    assert snapshot["currentNodeId"] == "gate"
    events = host.events(run_id)
    suspended = next(e for e in events if e["type"] == "node.suspended")["payload"]
    requested = next(e for e in events if e["type"] == "interrupt.requested")["payload"]
    assert suspended["kind"] == "approval" and suspended["interruptId"] == requested["interruptId"]
    assert requested["key"] == f"{run_id}:gate:0" and requested["runId"] == run_id
    assert requested["data"]["actions"] == ["accept", "reject"]
    assert {"title", "description", "artifactId", "artifactType", "artifactData"} <= set(requested["data"])
    assert requested["resumeSchema"]["properties"]["action"]["enum"] == ["accept", "reject"]
    artifact = client.get(f"/v1/runs/{run_id}/artifacts/{requested['data']['artifactId']}")
    assert artifact.status_code == 200 and artifact.json()["artifactType"] == "document"
    response = client.post(
        f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept", "feedback": "ok"}}
    )
    assert response.status_code == 200
    assert response.json()["runId"] == run_id and response.json()["nodeId"] == "gate"
    assert response.json()["status"] == "running"
    final = wait_status(client, run_id, TERMINAL)
    assert final["status"] == "completed"
    assert final["variables"]["approval"]["action"] == "accept"
    types = _types(host, run_id)
    assert types.index("interrupt.resolved") < types.index("approval.received") < types.index("node.resumed")
    received = next(e for e in host.events(run_id) if e["type"] == "approval.received")["payload"]
    assert (
        received["action"] == "accept" and received["feedback"] == "ok" and received["decidedBy"].startswith("apikey:")
    )
    again = client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept"}})
    assert_error(again, 404, "interrupt_not_found")


def test_approval_reject_and_invalid_actions(client: httpx.Client) -> None:
    run_id = create(client, "conformance-approval")
    wait_status(client, run_id, {"waiting-approval"})
    for value in ({"action": "maybe"}, "accept", {"decision": "perhaps"}, {"action": "refine"}):
        bad = client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": value})
        assert_error(bad, 400, "validation_error")
    assert_error(client.post(f"/v1/runs/{run_id}/interrupts/gate", json={}), 400, "validation_error")
    assert_error(
        client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {}, "x": 1}), 400, "validation_error"
    )
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "waiting-approval"
    assert_error(
        client.post(f"/v1/runs/{run_id}/interrupts/other", json={"resumeValue": {}}), 404, "interrupt_not_found"
    )
    rejected = client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"decision": "rejected"}})
    assert rejected.status_code == 200
    final = wait_status(client, run_id, TERMINAL)
    assert final["status"] == "failed" and final["error"]["code"] == "approval_rejected"


def test_reject_routed_and_loopback(client: httpx.Client, host: DevHost) -> None:
    routed = create(client, "conformance-approval-reject-routed")
    wait_status(client, routed, {"waiting-approval"})
    client.post(f"/v1/runs/{routed}/interrupts/gate", json={"resumeValue": {"action": "reject"}})
    snapshot = wait_status(client, routed, TERMINAL)
    assert snapshot["status"] == "completed"
    assert snapshot["nodeStates"]["on-reject"]["status"] == "completed"
    assert snapshot["nodeStates"]["on-accept"]["status"] == "skipped"
    assert "node.skipped" in _types(host, routed)

    loop = create(client, "conformance-approval-reject-loopback", configurable={"recursionLimit": 20})
    wait_status(client, loop, {"waiting-approval"})
    first_key = host.open_interrupts(loop)[0]["key"]
    client.post(f"/v1/runs/{loop}/interrupts/gate", json={"resumeValue": {"action": "reject"}})
    deadline = time.monotonic() + 5
    while _types(host, loop).count("interrupt.requested") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = [e for e in host.events(loop) if e["type"] == "interrupt.requested"][1]["payload"]
    assert second["key"] != first_key and second["key"] == f"{loop}:gate:1"
    client.post(f"/v1/runs/{loop}/interrupts/gate", json={"resumeValue": {"action": "accept"}})
    assert wait_status(client, loop, TERMINAL)["status"] == "completed"


def test_approval_timeout_fails_closed(host: DevHost, client: httpx.Client) -> None:
    run_id = create(client, "conformance-approval-timeout-approve")
    snapshot = wait_status(client, run_id, TERMINAL, timeout=6)
    assert snapshot["status"] == "failed" and snapshot["error"]["code"] == "approval_rejected"
    events = host.events(run_id)
    resolved = next(e for e in events if e["type"] == "interrupt.resolved")["payload"]
    assert resolved["outcome"] == "rejected" and resolved["reason"] == "timeout"
    assert next(e for e in events if e["type"] == "approval.received")["payload"]["action"] == "timeout"
    assert_error(
        client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept"}}),
        404,
        "interrupt_not_found",
    )


def test_clarification_both_answer_forms(client: httpx.Client, host: DevHost) -> None:
    for answers in ({"q1": "blue"}, [{"id": "q1", "answer": "blue"}]):
        run_id = create(client, "conformance-clarification")
        wait_status(client, run_id, {"waiting-input"})
        requested = next(e for e in host.events(run_id) if e["type"] == "clarification.requested")["payload"]
        assert requested["questions"] == [{"id": "q1", "question": "What is your favorite color?"}]
        response = client.post(f"/v1/runs/{run_id}/interrupts/clarify", json={"resumeValue": {"answers": answers}})
        assert response.status_code == 200, response.text
        snapshot = wait_status(client, run_id, TERMINAL)
        assert snapshot["status"] == "completed" and snapshot["variables"]["answers"] == {"q1": "blue"}
        resolved = next(e for e in host.events(run_id) if e["type"] == "clarification.resolved")["payload"]
        assert resolved["answers"] == {"q1": "blue"}


def test_clarification_bad_answers(client: httpx.Client) -> None:
    run_id = create(client, "conformance-clarification")
    wait_status(client, run_id, {"waiting-input"})
    for value in ({}, {"answers": {}}, {"answers": {"q2": "x"}}, {"answers": "blue"}, {"answers": [{"id": "q1"}]}):
        bad = client.post(f"/v1/runs/{run_id}/interrupts/clarify", json={"resumeValue": value})
        assert_error(bad, 400, "validation_error")
    client.post(f"/v1/runs/{run_id}/cancel")


def test_external_event_and_cancelled_interrupt(client: httpx.Client) -> None:
    run_id = create(client, "conformance-interrupt-external-event")
    assert wait_status(client, run_id, {"waiting-external"})["currentNodeId"] == "wait-event"
    assert_error(
        client.post(f"/v1/runs/{run_id}/interrupts/wait-event", json={"resumeValue": {}}), 400, "validation_error"
    )
    mismatch = client.post(
        f"/v1/runs/{run_id}/interrupts/wait-event",
        json={"resumeValue": {"eventPayload": {}, "correlation": {"correlationId": "other"}}},
    )
    assert_error(mismatch, 422, "correlation_mismatch")
    ok = client.post(f"/v1/runs/{run_id}/interrupts/wait-event", json={"resumeValue": {"eventPayload": {"paid": True}}})
    assert ok.status_code == 200
    assert wait_status(client, run_id, TERMINAL)["variables"]["eventPayload"] == {"paid": True}

    cancelled = create(client, "conformance-interrupt-external-event")
    wait_status(client, cancelled, {"waiting-external"})
    client.post(f"/v1/runs/{cancelled}/cancel")
    wait_status(client, cancelled, {"cancelled"})
    late = client.post(f"/v1/runs/{cancelled}/interrupts/wait-event", json={"resumeValue": {"eventPayload": 1}})
    assert_error(late, 422, "interrupt_cancelled")


def test_external_event_timeout(client: httpx.Client) -> None:
    run_id = create(client, "conformance-interrupt-external-event", inputs={"timeoutMs": 100})
    snapshot = wait_status(client, run_id, TERMINAL)
    assert snapshot["status"] == "failed" and snapshot["error"]["code"] == "interrupt_timeout"


def test_token_inspect_and_resolve(host: DevHost, client: httpx.Client) -> None:
    run_id = create(client, "conformance-approval")
    wait_status(client, run_id, {"waiting-approval"})
    admin = client.get(f"/_devhost/runs/{run_id}/interrupts")
    assert admin.status_code == 200
    listed = admin.json()["interrupts"]
    assert len(listed) == 1 and listed == host.open_interrupts(run_id)
    token = listed[0]["token"]
    assert listed[0]["resolveUrl"] == f"{host.base_url}/v1/interrupts/{token}"
    assert httpx.get(f"{host.base_url}/_devhost/runs/{run_id}/interrupts").status_code == 401
    inspect = httpx.get(f"{host.base_url}/v1/interrupts/{quote(token, safe='')}")  # no API key
    assert inspect.status_code == 200
    body = inspect.json()
    assert set(body) == {"kind", "key", "data", "resumeSchema"}
    assert body["kind"] == "approval" and body["key"] == f"{run_id}:gate:0"
    bad_value = httpx.post(f"{host.base_url}/v1/interrupts/{token}", json={"resumeValue": {"action": "nope"}})
    assert_error(bad_value, 400, "validation_error")
    resolved = httpx.post(f"{host.base_url}/v1/interrupts/{token}", json={"resumeValue": {"action": "accept"}})
    assert resolved.status_code == 200 and resolved.json()["runId"] == run_id
    assert wait_status(client, run_id, TERMINAL)["status"] == "completed"
    assert_error(httpx.get(f"{host.base_url}/v1/interrupts/{token}"), 404, "interrupt_not_found")
    assert_error(
        httpx.post(f"{host.base_url}/v1/interrupts/{token}", json={"resumeValue": {"action": "accept"}}),
        404,
        "interrupt_not_found",
    )
    assert token not in str(host.requests)


def test_token_tampering_and_expiry(client: httpx.Client) -> None:
    with DevHost(token_ttl_seconds=0.3) as short:
        c = httpx.Client(base_url=short.base_url, headers={"Authorization": f"Bearer {short.api_key}"})
        run_id = create(c, "conformance-approval")
        wait_status(c, run_id, {"waiting-approval"})
        token = short.open_interrupts(run_id)[0]["token"]
        payload, signature = token.split(".")
        forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
        assert_error(httpx.get(f"{short.base_url}/v1/interrupts/{forged}"), 401, "interrupt_token_invalid")
        assert_error(httpx.get(f"{short.base_url}/v1/interrupts/not-a-token"), 401, "interrupt_token_invalid")
        # a token signed by another host is rejected too
        other = client.post("/v1/runs", json={"workflowId": "conformance-approval"}).json()["runId"]
        wait_status(client, other, {"waiting-approval"})
        foreign = client.get(f"/_devhost/runs/{other}/interrupts").json()["interrupts"][0]["token"]
        assert_error(httpx.get(f"{short.base_url}/v1/interrupts/{foreign}"), 401, "interrupt_token_invalid")
        client.post(f"/v1/runs/{other}/cancel")
        time.sleep(0.4)
        expired = httpx.post(f"{short.base_url}/v1/interrupts/{token}", json={"resumeValue": {"action": "accept"}})
        assert_error(expired, 410, "interrupt_expired")
        assert_error(httpx.get(f"{short.base_url}/v1/interrupts/{token}"), 410, "interrupt_expired")
        # the run itself still waits and can be resolved with the API key
        ok = c.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept"}})
        assert ok.status_code == 200
        c.close()


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def _receiver() -> tuple[HTTPServer, type[_Receiver]]:
    handler = type("Receiver", (_Receiver,), {"received": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def test_callback_url_receives_token(client: httpx.Client, host: DevHost) -> None:
    server, handler = _receiver()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hitl"
        run_id = create(client, "conformance-approval", callbackUrl=url)
        deadline = time.monotonic() + 5
        while not handler.received:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _headers, raw = handler.received[0]
        body = json.loads(raw)
        assert body["runId"] == run_id and body["nodeId"] == "gate" and body["kind"] == "approval"
        assert body["interruptId"] and body["expiresAt"]
        resolved = httpx.post(
            f"{host.base_url}/v1/interrupts/{body['token']}", json={"resumeValue": {"action": "accept"}}
        )
        assert resolved.status_code == 200
        assert wait_status(client, run_id, TERMINAL)["status"] == "completed"
    finally:
        server.shutdown()


def test_waiting_status_only_fault(host: DevHost, client: httpx.Client) -> None:
    run_id = create(client, "conformance-noop")
    host.set_run_faults("conformance-approval-timeout", waiting_status_only=True)
    try:
        run_id = create(client, "conformance-approval-timeout")
        wait_status(client, run_id, {"waiting-approval"})
        types = _types(host, run_id)
        assert "node.suspended" in types
        assert "interrupt.requested" not in types and "approval.requested" not in types
        client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept"}})
        assert wait_status(client, run_id, TERMINAL)["status"] == "completed"
    finally:
        host.set_run_faults("conformance-approval-timeout")
