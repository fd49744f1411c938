"""Webhook registration and signed delivery to a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from devhost_helpers import assert_error, create, wait_status

from openwop_devhost import DevHost


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Any:
    handler = type("Receiver", (_Receiver,), {"received": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, handler
    server.shutdown()


def test_signed_delivery(client: httpx.Client, host: DevHost, receiver: Any) -> None:
    server, handler = receiver
    url = f"http://127.0.0.1:{server.server_port}/hook"
    response = client.post(
        "/v1/webhooks", json={"url": url, "events": ["run.completed", "run.started"], "tags": ["wh"]}
    )
    assert response.status_code == 201
    registration = response.json()
    secret = registration["secret"]
    assert registration["secretFingerprint"] == hashlib.sha256(secret.encode()).hexdigest()[:8]
    create(client, "conformance-noop")  # no "wh" tag: filtered out
    run_id = create(client, "conformance-noop", tags=["wh", "other"])
    wait_status(client, run_id, {"completed"})
    deadline = time.monotonic() + 5
    while len(handler.received) < 2:
        assert time.monotonic() < deadline, handler.received
        time.sleep(0.01)
    time.sleep(0.05)
    assert len(handler.received) == 2
    for headers, raw in handler.received:
        body = json.loads(raw)
        assert body["runId"] == run_id and body["workspaceId"] == "default"
        assert headers["x-openwop-webhook-id"] == registration["webhookId"]
        assert headers["x-openwop-event-type"] == body["event"]["type"]
        assert headers["x-openwop-signature-algorithm"] == "v1"
        assert abs(int(headers["x-openwop-timestamp"]) - time.time()) < 60
        expected = hmac.new(secret.encode(), headers["x-openwop-timestamp"].encode() + b"." + raw, hashlib.sha256)
        assert headers["x-openwop-signature"] == "sha256=" + expected.hexdigest()
        assert headers["user-agent"].startswith("openwop-webhook-dispatcher/")
    assert [json.loads(raw)["event"]["type"] for _, raw in handler.received] == ["run.started", "run.completed"]
    deliveries = [d for d in host.webhook_deliveries if d["webhookId"] == registration["webhookId"]]
    assert [d["status"] for d in deliveries] == [200, 200]
    deleted = client.delete(f"/v1/webhooks/{registration['webhookId']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(client.delete(f"/v1/webhooks/{registration['webhookId']}"), 404, "subscription_not_found")


def test_registration_validation(client: httpx.Client) -> None:
    assert_error(client.post("/v1/webhooks", json={"url": "http://127.0.0.1:1/x"}), 400, "validation_error")
    assert_error(
        client.post("/v1/webhooks", json={"url": "http://example.com/x", "events": ["run.completed"]}),
        400,
        "webhook_url_rejected",
    )
    assert_error(
        client.post("/v1/webhooks", json={"url": "ftp://x/y", "events": ["run.completed"]}), 400, "webhook_url_rejected"
    )
    assert_error(
        client.post("/v1/webhooks", json={"url": "https://x/y", "events": [], "secret": "s"}), 400, "validation_error"
    )
    assert_error(
        client.post("/v1/webhooks", json={"url": "https://x/y", "events": ["a"], "bogus": 1}), 400, "validation_error"
    )
    legacy = client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/x", "eventTypes": ["run.failed"], "secret": "s" * 20}
    )
    assert legacy.status_code == 201 and legacy.json()["secret"] == "s" * 20


def test_https_only_without_insecure_flag() -> None:
    with DevHost(allow_insecure_webhooks=False) as strict:
        headers = {"Authorization": f"Bearer {strict.api_key}"}
        local = httpx.post(
            f"{strict.base_url}/v1/webhooks",
            json={"url": "http://127.0.0.1:9/x", "events": ["run.completed"]},
            headers=headers,
        )
        assert_error(local, 400, "webhook_url_rejected")
        loopback_https = httpx.post(
            f"{strict.base_url}/v1/webhooks",
            json={"url": "https://127.0.0.1/x", "events": ["run.completed"]},
            headers=headers,
        )
        assert_error(loopback_https, 400, "webhook_url_rejected")
        public = httpx.post(
            f"{strict.base_url}/v1/webhooks",
            json={"url": "https://hooks.example.com/x", "events": ["*"]},
            headers=headers,
        )
        assert public.status_code == 201


def test_unreachable_receiver_is_recorded_not_fatal(client: httpx.Client, host: DevHost) -> None:
    with HTTPServer(("127.0.0.1", 0), _Receiver) as probe:
        dead_port = probe.server_port
    webhook = client.post(
        "/v1/webhooks",
        json={"url": f"http://127.0.0.1:{dead_port}/gone", "events": ["run.completed"], "tags": ["dead"]},
    ).json()
    run_id = create(client, "conformance-noop", tags=["dead"])
    assert wait_status(client, run_id, {"completed"})["status"] == "completed"
    deadline = time.monotonic() + 5
    while not [d for d in host.webhook_deliveries if d["webhookId"] == webhook["webhookId"]]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    delivery = next(d for d in host.webhook_deliveries if d["webhookId"] == webhook["webhookId"])
    assert delivery["status"] is None and "connection failed" in delivery["error"]
    client.delete(f"/v1/webhooks/{webhook['webhookId']}")
