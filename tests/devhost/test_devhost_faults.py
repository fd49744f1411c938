"""Every fault switch, the admin fault routes, and stop()/start() outages."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from devhost_helpers import assert_error, create, follow, read_stream, wait_status

from openwop_devhost import DevHost, FailRule, FaultConfigError, Faults

TERMINAL = {"completed", "failed", "cancelled"}


def _client(host: DevHost) -> httpx.Client:
    return httpx.Client(base_url=host.base_url, headers={"Authorization": f"Bearer {host.api_key}"}, timeout=10)


def test_drop_sse_after_events_forces_resume(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "devhost-burst", inputs={"count": 7})
    wait_status(client, run_id, TERMINAL)
    host.set_run_faults(run_id, drop_sse_after_events=3)
    single = read_stream(client, run_id, params={"streamMode": "debug"})
    assert len(single.frames) == 3 and single.clean_end is False
    events, connections = follow(client, run_id, params={"streamMode": "debug"})
    assert [e["sequence"] for e in events] == list(range(len(host.events(run_id))))
    assert connections == -(-len(events) // 3)
    resumed = [r for r in host.requests if r["path"] == f"/v1/runs/{run_id}/events" and "last-event-id" in r["headers"]]
    assert resumed and resumed[0]["headers"]["last-event-id"] == "2"


def test_drop_probability_is_seeded() -> None:
    counts = []
    for _ in range(2):
        with DevHost(faults=Faults(drop_sse_probability=0.4, seed=11)) as flaky, _client(flaky) as c:
            run_id = create(c, "devhost-burst", inputs={"count": 20})
            wait_status(c, run_id, TERMINAL)
            events, connections = follow(c, run_id, params={"streamMode": "debug"})
            assert [e["sequence"] for e in events] == list(range(24))
            counts.append(connections)
    assert counts[0] == counts[1] and counts[0] > 1


def test_fail_requests_json_retry_after_and_budget() -> None:
    faults = Faults(fail_requests=[FailRule(route="POST /v1/runs", status=503, count=2, retry_after=3)])
    with DevHost(faults=faults) as host, _client(host) as c:
        for _ in range(2):
            failed = c.post("/v1/runs", json={"workflowId": "conformance-noop"})
            body = assert_error(failed, 503, "service_unavailable")
            assert failed.headers["retry-after"] == "3" and body["details"]["retryAfter"] == 3
            assert failed.headers["traceparent"]
        assert host.faults.fail_requests[0].count == 0
        ok = c.post("/v1/runs", json={"workflowId": "conformance-noop"})
        assert ok.status_code == 201
        assert host.runs_created() == 1
        assert [r.get("injected", False) for r in host.requests if r["method"] == "POST"] == [True, True, False]


def test_fail_requests_route_patterns_and_bodies() -> None:
    faults = Faults(
        fail_requests=[
            {"route": "GET /v1/runs/{runId}", "status": 502, "count": 1, "body": "html"},
            {"route": "/v1/workflows/*", "status": 429, "count": 1},
        ]
    )
    with DevHost(faults=faults) as host, _client(host) as c:
        run_id = create(c, "conformance-noop")
        wait_status_response = c.get(f"/v1/runs/{run_id}/events/poll", params={"timeout": 1})
        assert wait_status_response.status_code == 200
        html = c.get(f"/v1/runs/{run_id}")
        assert html.status_code == 502 and html.headers["content-type"].startswith("text/html")
        assert "<html>" in html.text
        limited = c.get("/v1/workflows/conformance-noop")
        assert_error(limited, 429, "rate_limited")
        assert limited.headers["retry-after"] == "1"
        assert c.get("/v1/workflows/conformance-noop").status_code == 200
        assert c.get(f"/v1/runs/{run_id}").status_code == 200
        assert c.get("/_devhost/faults").status_code == 200  # admin routes are never failed


def test_fail_requests_star_rule() -> None:
    with (
        DevHost(faults=Faults(fail_requests=[FailRule(route="*", status=500, count=1, body="text")])) as host,
        _client(host) as c,
    ):
        failed = c.get("/.well-known/openwop")
        assert failed.status_code == 500 and failed.headers["content-type"].startswith("text/plain")
        assert c.get("/.well-known/openwop").status_code == 200


def test_latency(host: DevHost) -> None:
    with DevHost(faults=Faults(latency_ms=200)) as slow:
        started = time.monotonic()
        assert httpx.get(f"{slow.base_url}/.well-known/openwop").status_code == 200
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        assert httpx.get(f"{slow.base_url}/v1/runs/x").status_code == 401  # errors are delayed too
        assert time.monotonic() - started >= 0.2


def test_malformed_frames_and_no_keepalive() -> None:
    faults = Faults(malformed_sse_frame=True, keepalive=False)
    with DevHost(faults=faults, keepalive_interval=0.1) as host, _client(host) as c:
        run_id = create(c, "conformance-delay", inputs={"delayMs": 500})
        stream = read_stream(c, run_id)
        assert stream.comments == []
        bad = [f for f in stream.frames if not f.data.startswith("{") or not f.data.endswith("}")]
        assert len(bad) == 1 and bad[0].id is None
        unknown = [f for f in stream.frames if f.event == "devhost.unknown-event"]
        assert len(unknown) == 1 and unknown[0].id is None
        assert stream.types()[0] == "run.started" and stream.types()[-1] == "run.completed"


def test_legacy_event_fields_on_sse_and_poll(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-noop")
    wait_status(client, run_id, TERMINAL)
    host.set_run_faults(run_id, {"legacy_event_fields": True})
    stream = read_stream(client, run_id)
    for frame in stream.frames:
        doc = frame.json()
        assert "seq" in doc and "data" in doc
        assert not {"sequence", "payload", "eventId"} & set(doc)
        assert frame.id == str(doc["seq"])
    polled = client.get(f"/v1/runs/{run_id}/events/poll").json()["events"]
    assert all("seq" in e and "sequence" not in e for e in polled)
    assert "sequence" in host.events(run_id)[0]  # in-process inspection stays canonical


def test_sse_unavailable_and_duplicate_after_reconnect(client: httpx.Client, host: DevHost) -> None:
    run_id = create(client, "conformance-multi-node")
    wait_status(client, run_id, TERMINAL)
    host.set_run_faults(run_id, sse_unavailable=True)
    assert_error(client.get(f"/v1/runs/{run_id}/events", headers={"Accept": "text/event-stream"}), 404, "not_found")
    assert client.get(f"/v1/runs/{run_id}/events/poll").status_code == 200
    host.set_run_faults(run_id, duplicate_after_reconnect=True)
    resumed = read_stream(client, run_id, headers={"Last-Event-ID": "4"})
    assert [f.id for f in resumed.frames] == ["4", "6", "7"]
    fresh = read_stream(client, run_id)
    assert fresh.frames[0].id == "0"


def test_omit_events_url() -> None:
    with DevHost(run_faults={"conformance-noop": {"omit_events_url": True}}) as host, _client(host) as c:
        plain = c.post("/v1/runs", json={"workflowId": "conformance-noop"}).json()
        assert set(plain) == {"runId", "status", "workflowId", "startedAt"}
        other = c.post("/v1/runs", json={"workflowId": "conformance-multi-node"}).json()
        assert "eventsUrl" in other


def test_admin_fault_routes(client: httpx.Client) -> None:
    with DevHost() as host, _client(host) as c:
        set_response = c.post(
            "/_devhost/faults",
            json={"latency_ms": 1, "fail_requests": [{"route": "GET /v1/runs/{runId}", "status": 503}]},
        )
        assert set_response.status_code == 200
        assert set_response.json()["faults"]["latency_ms"] == 1
        assert host.faults.latency_ms == 1 and host.faults.fail_requests[0].status == 503
        run_id = create(c, "conformance-noop")
        assert c.get(f"/v1/runs/{run_id}").status_code == 503
        assert c.get("/_devhost/faults").json()["faults"]["fail_requests"][0]["count"] == 0
        per_run = c.post(f"/_devhost/runs/{run_id}/faults", json={"legacy_event_fields": True})
        assert per_run.json()["runFaults"] == {run_id: {"legacy_event_fields": True}}
        assert "seq" in c.get(f"/v1/runs/{run_id}/events/poll").json()["events"][0]
        c.post(f"/_devhost/runs/{run_id}/faults", json={})
        assert "sequence" in c.get(f"/v1/runs/{run_id}/events/poll").json()["events"][0]
        invalid = c.post("/_devhost/faults", json={"drop_sse_probabilty": 0.5})
        assert "drop_sse_probabilty" in assert_error(invalid, 400, "validation_error")["message"]
        assert_error(c.post("/_devhost/faults", json={"latency_ms": -1}), 400, "validation_error")
        assert_error(c.post("/_devhost/faults", json={"fail_requests": [{"status": 418}]}), 400, "validation_error")
        assert httpx.post(f"{host.base_url}/_devhost/faults", json={}).status_code == 401
        reset = c.post("/_devhost/faults", json={})
        assert reset.json()["faults"] == Faults().to_dict()
        host.set_faults(keepalive=False)
        assert host.faults.keepalive is False and host.faults.latency_ms == 0
        host.set_faults(Faults(latency_ms=2))
        assert host.faults.keepalive is True and host.faults.latency_ms == 2


def test_fault_config_errors_name_the_problem() -> None:
    with pytest.raises(FaultConfigError, match="drop_sse_probability"):
        Faults(drop_sse_probability=2.0)
    with pytest.raises(FaultConfigError, match="status"):
        FailRule(status=404)
    with pytest.raises(FaultConfigError, match="unknown fault switch 'nope'"):
        Faults.from_dict({"nope": 1})
    with pytest.raises(FaultConfigError, match="body"):
        Faults(fail_requests=[{"body": "xml"}])


def test_stop_and_start_keep_port_and_state() -> None:
    with DevHost() as host, _client(host) as c:
        port = host.port
        run_id = create(c, "conformance-approval")
        wait_status(c, run_id, {"waiting-approval"})
        host.stop()
        assert not host.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{host.base_url}/.well-known/openwop", timeout=2)
        host.start()
        assert host.port == port and host.running
        with _client(host) as again:
            assert again.get(f"/v1/runs/{run_id}").json()["status"] == "waiting-approval"
            again.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept"}})
            assert wait_status(again, run_id, TERMINAL)["status"] == "completed"


def test_stop_cuts_open_streams() -> None:
    with DevHost() as host, _client(host) as c:
        run_id = create(c, "conformance-approval")
        result: dict[str, object] = {}
        thread = threading.Thread(target=lambda: result.update(stream=read_stream(c, run_id)))
        thread.start()
        wait_status(c, run_id, {"waiting-approval"})
        time.sleep(0.1)
        host.stop()
        thread.join(3)
        assert not thread.is_alive()
        assert result["stream"].clean_end is False  # type: ignore[attr-defined]
        host.start()
