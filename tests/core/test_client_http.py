"""Every endpoint and behaviour of the client over real HTTP against the local host, sync and async."""

from __future__ import annotations

import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from core_helpers import API_KEY, call, collect

from openwop_core import (
    AuthenticationError,
    IdempotencyKeyMismatchError,
    InterruptNotFoundError,
    InvalidArgumentError,
    InvalidRequestError,
    NotFoundError,
    OpenwopClient,
    RunAlreadyActiveError,
    RunFailedError,
    TransportError,
    WaitTimeoutError,
    resume,
    verify_webhook_signature,
)
from openwop_devhost import DevHost, Faults


def host_sequences(host: DevHost, run_id: str) -> list[int]:
    return [e["sequence"] for e in host.events(run_id)]


async def test_discovery_and_openapi(client: Any) -> None:
    discovery = await call(client.discovery_capabilities())
    assert discovery.major_version == 1
    assert discovery.supports_fork("branch") and discovery.supports_pause_resume()
    assert "conformance-noop" in discovery.fixtures
    openapi = await call(client.discovery_openapi())
    assert "paths" in openapi


async def test_workflow_get(client: Any) -> None:
    workflow = await call(client.workflows_get("conformance-multi-node"))
    assert workflow.id == "conformance-multi-node" and len(workflow.nodes) == 3


async def test_create_wait_completed_with_outputs(client: Any, host: DevHost) -> None:
    run = await call(client.runs_create("conformance-identity", {"payload": {"a": [1, 2]}}, tags=["t1"]))
    seen: list[Any] = []
    result = await call(client.wait_for_run(run.run_id, timeout=30, on_event=seen.append))
    assert result.outcome == "completed"
    assert result.outputs["payload"] == {"a": [1, 2]}
    assert [e.sequence for e in seen] == sorted({e.sequence for e in seen})
    assert seen[-1].type == "run.completed" and result.last_sequence == seen[-1].sequence
    assert result.snapshot.tags == ["t1"]


async def test_events_exactly_once_in_order(client: Any, host: DevHost) -> None:
    run = await call(client.runs_create("conformance-multi-node"))
    events = await collect(client.runs_events(run.run_id, stream_mode="debug"))
    assert [e.sequence for e in events] == host_sequences(host, run.run_id)
    assert events[-1].type == "run.completed"
    completed = [e.node_id for e in events if e.type == "node.completed"]
    assert completed == ["A", "B", "C"] or len(completed) == 3


async def test_failed_run_reports_the_remote_error(client: Any) -> None:
    run = await call(client.runs_create("conformance-failure"))
    result = await call(client.wait_for_run(run.run_id, timeout=30))
    assert result.outcome == "failed"
    with pytest.raises(RunFailedError, match="conformance_test_failure") as info:
        result.raise_for_status()
    assert info.value.error_message and "Intentional" in info.value.error_message


async def test_stream_drop_mid_run_is_resumed_without_loss_or_duplicate(
    client: Any, host: DevHost, caplog: pytest.LogCaptureFixture
) -> None:
    host.set_faults(Faults(drop_sse_after_events=2, duplicate_after_reconnect=True))
    run = await call(client.runs_create("conformance-multi-node"))
    with caplog.at_level(logging.WARNING, logger="openwop_core.events"):
        events = await collect(client.runs_events(run.run_id, stream_mode="debug"))
    assert [e.sequence for e in events] == host_sequences(host, run.run_id)
    resumed = [r for r in host.requests if r["path"].endswith("/events") and r["headers"].get("last-event-id")]
    assert resumed, "the client must reconnect with Last-Event-ID"
    # each reconnect says what failed, where: not just "TransportError"
    interrupted = [r.getMessage() for r in caplog.records if "event stream interrupted" in r.getMessage()]
    assert interrupted
    assert all(f"TransportError: GET /v1/runs/{run.run_id}/events to {host.base_url}" in m for m in interrupted)


async def test_legacy_event_fields_are_normalised(client: Any, host: DevHost) -> None:
    host.set_faults(Faults(legacy_event_fields=True))
    run = await call(client.runs_create("conformance-identity", {"payload": {"x": 1}}))
    events = await collect(client.runs_events(run.run_id))
    assert events[-1].type == "run.completed" and events[-1].payload_dict.get("outputs", {}).get("payload") == {"x": 1}
    assert all(isinstance(e.sequence, int) for e in events)


async def test_no_sse_falls_back_to_polling(client: Any, host: DevHost) -> None:
    host.set_faults(Faults(sse_unavailable=True))
    run = await call(client.runs_create("conformance-delay", {"delayMs": 300}))
    result = await call(client.wait_for_run(run.run_id, timeout=30))
    assert result.outcome == "completed"
    events = await collect(client.runs_events(run.run_id))
    assert [e.sequence for e in events] == [
        s for s in host_sequences(host, run.run_id) if s in {e.sequence for e in events}
    ]
    assert events[-1].type == "run.completed"


async def test_malformed_frames_are_skipped(client: Any, host: DevHost) -> None:
    host.set_faults(Faults(malformed_sse_frame=True))
    run = await call(client.runs_create("conformance-noop"))
    events = await collect(client.runs_events(run.run_id))
    assert events[-1].type == "run.completed"


async def test_503_and_429_with_retry_after_then_exactly_one_run(client: Any, host: DevHost) -> None:
    host.set_faults(
        Faults(
            fail_requests=[
                {"route": "POST /v1/runs", "status": 503, "count": 1, "retry_after": 1},
                {"route": "POST /v1/runs", "status": 429, "count": 1, "retry_after": 1},
            ]
        )
    )
    run = await call(client.runs_create("conformance-noop"))
    assert run.run_id
    assert host.runs_created("conformance-noop") == 1
    keys = {r["headers"].get("idempotency-key") for r in host.requests if r["path"] == "/v1/runs"}
    assert len(keys) == 1 and None not in keys


async def test_lost_create_answer_is_retried_into_the_same_run(host: DevHost) -> None:
    # The host is slower than the client's timeout: the first answer is lost, the retry replays it.
    host.set_faults(Faults(latency_ms=700))
    with OpenwopClient(host.base_url, api_key=API_KEY, timeout=0.4, retry={"initial_backoff": 0.5}) as slow:
        run = slow.runs_create("conformance-noop", idempotency_key="lost-answer-1")
    host.set_faults(Faults())
    assert host.runs_created("conformance-noop") == 1
    assert run.run_id in host.run_ids()


async def test_idempotent_replay_and_mismatch(client: Any, host: DevHost) -> None:
    first = await call(client.runs_create("conformance-idempotent", {"nonce": "n1"}, idempotency_key="key-1"))
    again = await call(client.runs_create("conformance-idempotent", {"nonce": "n1"}, idempotency_key="key-1"))
    assert again.run_id == first.run_id and again.replayed and not first.replayed
    with pytest.raises(IdempotencyKeyMismatchError, match="idempotency_key_mismatch"):
        await call(client.runs_create("conformance-idempotent", {"nonce": "n2"}, idempotency_key="key-1"))
    assert host.runs_created("conformance-idempotent") == 1


async def test_dedup_reports_the_active_run(client: Any) -> None:
    first = await call(client.runs_create("conformance-delay", {"delayMs": 3000}, dedup=True, scope_id="dag.task"))
    with pytest.raises(RunAlreadyActiveError) as info:
        await call(client.runs_create("conformance-delay", {"delayMs": 3000}, dedup=True, scope_id="dag.task"))
    assert info.value.active_run_id == first.run_id
    await call(client.runs_cancel(first.run_id))


async def test_bad_key_is_401_with_the_server_message(host: DevHost) -> None:
    with OpenwopClient(host.base_url, api_key="sk-wrong-key-XYZ") as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.runs_get("anything")
    assert info.value.status_code == 401 and "sk-wrong-key-XYZ" not in str(info.value)
    assert "Check the API key" in str(info.value)


async def test_unknown_workflow_and_run_are_404(client: Any) -> None:
    with pytest.raises(NotFoundError) as info:
        await call(client.runs_create("no-such-workflow"))
    assert info.value.code == "workflow_not_found" and "Check the workflow id" in str(info.value)
    with pytest.raises(NotFoundError):
        await call(client.runs_get("run-that-does-not-exist"))


async def test_invalid_inputs_are_named(client: Any) -> None:
    with pytest.raises(InvalidRequestError, match="delayMs"):
        await call(client.runs_create("conformance-delay", {}))
    with pytest.raises(InvalidArgumentError, match="not JSON-serialisable"):
        await call(client.runs_create("conformance-noop", {"when": object()}))


async def test_cancel_running_then_terminal(client: Any) -> None:
    run = await call(client.runs_create("conformance-cancellable", {"delayMs": 20000}))
    cancelled = await call(client.runs_cancel(run.run_id, reason="test"))
    assert cancelled.status in ("cancelling", "cancelled")
    result = await call(client.wait_for_run(run.run_id, timeout=10))
    assert result.outcome == "cancelled"
    again = await call(client.runs_cancel(run.run_id))
    assert again.status == "cancelled" and again.already_terminal


async def test_bulk_cancel(client: Any) -> None:
    a = await call(client.runs_create("conformance-cancellable", {"delayMs": 20000}))
    result = await call(client.runs_bulk_cancel([a.run_id, "missing-run"]))
    assert [r.run_id for r in result.results] == [a.run_id, "missing-run"]
    assert result.results[0].ok and [f.run_id for f in result.failed] == ["missing-run"]


async def test_pause_and_resume(client: Any) -> None:
    run = await call(client.runs_create("conformance-delay", {"delayMs": 1500}))
    paused = await call(client.runs_pause(run.run_id, drain_policy="immediate"))
    assert paused.run_id == run.run_id
    resumed = await call(client.runs_resume(run.run_id))
    assert resumed.run_id == run.run_id
    result = await call(client.wait_for_run(run.run_id, timeout=30))
    assert result.outcome == "completed"


async def test_fork_replay_and_branch(client: Any, host: DevHost) -> None:
    run = await call(client.runs_create("conformance-multi-node"))
    await call(client.wait_for_run(run.run_id, timeout=30))
    replay = await call(client.runs_fork(run.run_id, mode="replay"))
    assert replay.run_id != run.run_id
    assert (await call(client.wait_for_run(replay.run_id, timeout=30))).outcome == "completed"
    branch = await call(client.runs_fork(run.run_id, mode="branch", from_seq=2, tags=["fork"]))
    result = await call(client.wait_for_run(branch.run_id, timeout=30))
    assert result.outcome == "completed" and result.snapshot.source_run_id == run.run_id
    with pytest.raises(InvalidRequestError):
        await call(client.runs_fork(run.run_id, mode="branch", from_seq=10_000))
    with pytest.raises(InvalidArgumentError, match="from_seq"):
        await call(client.runs_fork(run.run_id, mode="branch"))


async def test_approval_accept_and_reject(client: Any) -> None:
    run = await call(client.runs_create("conformance-approval"))
    waiting = await call(client.wait_for_run(run.run_id, timeout=30, stop_on_interrupt=True))
    assert waiting.outcome == "interrupted" and waiting.interrupt is not None
    assert (waiting.interrupt.node_id, waiting.interrupt.kind) == ("gate", "approval")
    assert "accept" in waiting.interrupt.actions
    resolved = await call(
        client.interrupts_resolve_by_run(run.run_id, "gate", resume.approval("accept", decided_by="t"))
    )
    assert resolved.run_id == run.run_id
    done = await call(client.wait_for_run(run.run_id, timeout=30, last_sequence=waiting.last_sequence))
    assert done.outcome == "completed"
    with pytest.raises(InterruptNotFoundError):
        await call(client.interrupts_resolve_by_run(run.run_id, "gate", resume.approval("accept")))

    rejected = await call(client.runs_create("conformance-approval"))
    await call(client.wait_for_run(rejected.run_id, timeout=30, stop_on_interrupt=True))
    await call(client.interrupts_resolve_by_run(rejected.run_id, "gate", resume.approval("reject")))
    final = await call(client.wait_for_run(rejected.run_id, timeout=30))
    assert final.outcome == "failed" and final.snapshot.error is not None
    assert final.snapshot.error.code == "approval_rejected"


async def test_invalid_approval_action_is_refused(client: Any) -> None:
    run = await call(client.runs_create("conformance-approval"))
    await call(client.wait_for_run(run.run_id, timeout=30, stop_on_interrupt=True))
    with pytest.raises(InvalidRequestError):
        await call(client.interrupts_resolve_by_run(run.run_id, "gate", {"action": "maybe"}))
    await call(client.runs_cancel(run.run_id))


async def test_clarification_answer(client: Any) -> None:
    run = await call(client.runs_create("conformance-clarification"))
    waiting = await call(client.wait_for_run(run.run_id, timeout=30, stop_on_interrupt=True))
    interrupt = waiting.interrupt
    assert interrupt is not None and interrupt.kind == "clarification" and interrupt.questions
    answers = {q["id"]: "blue" for q in interrupt.questions}
    await call(client.interrupts_resolve_by_run(run.run_id, interrupt.node_id, resume.clarification(answers)))
    done = await call(client.wait_for_run(run.run_id, timeout=30))
    assert done.outcome == "completed"


async def test_interrupt_by_token(client: Any, host: DevHost) -> None:
    run = await call(client.runs_create("conformance-approval"))
    await call(client.wait_for_run(run.run_id, timeout=30, stop_on_interrupt=True))
    [open_interrupt] = host.open_interrupts(run.run_id)
    token = open_interrupt["token"]
    info = await call(client.interrupts_inspect_by_token(token))
    assert info.kind == "approval"
    await call(client.interrupts_resolve_by_token(token, resume.approval("accept")))
    assert (await call(client.wait_for_run(run.run_id, timeout=30))).outcome == "completed"
    token_requests = [r for r in host.requests if r["path"].startswith("/v1/interrupts/")]
    assert token_requests and all("authorization" not in r["headers"] for r in token_requests)


async def test_waiting_status_only_host_still_yields_the_interrupt(client: Any, host: DevHost) -> None:
    host.set_faults(Faults(waiting_status_only=True))
    run = await call(client.runs_create("conformance-approval"))
    waiting = await call(client.wait_for_run(run.run_id, timeout=30, stop_on_interrupt=True))
    assert waiting.interrupt is not None
    assert (waiting.interrupt.node_id, waiting.interrupt.kind) == ("gate", "approval")
    await call(client.runs_cancel(run.run_id))


async def test_wait_timeout(client: Any) -> None:
    run = await call(client.runs_create("conformance-delay", {"delayMs": 5000}))
    with pytest.raises(WaitTimeoutError, match=run.run_id):
        await call(client.wait_for_run(run.run_id, timeout=0.5))
    await call(client.runs_cancel(run.run_id))


async def test_poll_events_cursor(client: Any, host: DevHost) -> None:
    run = await call(client.runs_create("conformance-multi-node"))
    await call(client.wait_for_run(run.run_id, timeout=30))
    page = await call(client.runs_poll_events(run.run_id, last_sequence=1, timeout_seconds=1))
    assert page.events and all(e.sequence > 1 for e in page.events)
    assert page.finished


async def test_traceparent_is_sent_and_quoted_in_errors(client: Any, host: DevHost) -> None:
    with pytest.raises(NotFoundError) as info:
        await call(client.runs_get("missing"))
    assert info.value.trace_id and len(info.value.trace_id) == 32
    assert all(r["headers"].get("traceparent") for r in host.requests if r["path"].startswith("/v1/"))


def test_unreachable_host_names_the_url() -> None:
    with OpenwopClient("http://127.0.0.1:9", api_key="k", retry={"max_attempts": 2, "initial_backoff": 0.01}) as dead:
        with pytest.raises(TransportError, match=r"Could not connect to http://127\.0\.0\.1:9") as info:
            dead.runs_get("r")
    assert "base URL" in str(info.value)


class _Receiver(BaseHTTPRequestHandler):
    deliveries: list[tuple[bytes, dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).deliveries.append((body, dict(self.headers.items())))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_register_deliver_verify_unregister(host: DevHost) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with OpenwopClient(host.base_url, api_key=API_KEY) as client:
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            registration = client.webhooks_register(url, ["run.completed"])
            assert registration.secret is not None
            run = client.runs_create("conformance-noop")
            client.wait_for_run(run.run_id, timeout=30)
            for _ in range(50):
                if _Receiver.deliveries:
                    break
                threading.Event().wait(0.1)
            body, headers = _Receiver.deliveries[-1]
            verify_webhook_signature(registration.secret.get_secret_value(), body, headers)
            client.webhooks_unregister(registration.webhook_id)
            with pytest.raises(NotFoundError):
                client.webhooks_unregister(registration.webhook_id)
    finally:
        server.shutdown()


class _LookupRecorder:
    """A ``sys.meta_path`` finder that records every module name looked up and finds nothing itself."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        self.names.append(name)


async def test_warm_requests_look_up_no_module(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once warm, a request imports nothing: a module looked up per request (httpcore imports ``sniffio`` in
    every async request; when it is not installed each import searches sys.path) costs ~0.8 ms of CPU."""
    run_id = (await call(client.runs_create("conformance-noop"))).run_id
    for _ in range(3):
        await call(client.runs_get(run_id))
    recorder = _LookupRecorder()
    monkeypatch.setattr(sys, "meta_path", [recorder, *sys.meta_path])
    for _ in range(20):
        assert (await call(client.runs_get(run_id))).run_id == run_id
    assert recorder.names == []
