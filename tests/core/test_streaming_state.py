"""The stream state machine, fed frames directly (no sockets): exactly once, in order, to the end."""

from __future__ import annotations

import json

import pytest

from openwop_core import AuthenticationError, EventPage, RetryPolicy, ServerError
from openwop_core.errors import ResponseFormatError, TransportError
from openwop_core.sse import ServerSentEvent
from openwop_core.streaming import EventStreamState, StreamIdleError


def frame(
    seq: int | None, type_: str = "node.completed", *, legacy: bool = False, sse_id: str | None = None, **payload
):
    doc: dict = {"type": type_, "runId": "r"}
    if seq is not None:
        doc["seq" if legacy else "sequence"] = seq
    doc["data" if legacy else "payload"] = payload
    return ServerSentEvent(event=type_, data=json.dumps(doc), id=sse_id if sse_id is not None else str(seq))


def test_events_once_in_order_and_cursor_follows() -> None:
    state = EventStreamState("r")
    seen = []
    for sse in [frame(0, "run.started"), frame(1), frame(1), frame(0), frame(2)]:
        seen += [e.sequence for e in state.feed(sse)]
    assert seen == [0, 1, 2]
    assert state.cursor == 2 and state.last_event_id == "2"
    assert state.sse_call(30).headers["Last-Event-ID"] == "2"


def test_resume_cursor_from_last_event_id_drops_older_events() -> None:
    state = EventStreamState("r", last_event_id=5)
    assert [e.sequence for s in (frame(5), frame(6)) for e in state.feed(s)] == [6]


def test_legacy_fields_and_terminal_end_the_stream() -> None:
    state = EventStreamState("r")
    events = state.feed(frame(0, "run.completed", legacy=True, outputs={"a": 1}))
    assert events[0].payload == {"outputs": {"a": 1}}
    assert state.done
    assert state.feed(frame(1)) == []  # nothing after the terminal event


def test_batch_frames_without_id_use_the_highest_sequence() -> None:
    state = EventStreamState("r")
    batch = [{"type": "a", "sequence": 0}, {"type": "b", "sequence": 1}, {"type": "c", "sequence": 2}]
    events = state.feed(ServerSentEvent(event="batch", data=json.dumps(batch), id=""))
    assert [e.type for e in events] == ["a", "b", "c"]
    assert state.last_event_id == "2"


def test_non_json_frames_and_unknown_types_are_tolerated() -> None:
    state = EventStreamState("r")
    assert state.feed(ServerSentEvent(event="message", data="{not json", id="0")) == []
    events = state.feed(frame(1, "memory.written"))
    assert [e.type for e in events] == ["memory.written"]


def test_type_from_event_field_and_sequence_from_id_when_missing() -> None:
    state = EventStreamState("r")
    sse = ServerSentEvent(event="node.completed", data=json.dumps({"payload": {"nodeId": "a"}}), id="4")
    [event] = state.feed(sse)
    assert (event.type, event.sequence, event.node_id) == ("node.completed", 4, "a")


def test_undecodable_terminal_frame_still_ends_the_stream() -> None:
    state = EventStreamState("r")
    state.feed(ServerSentEvent(event="", data=json.dumps({"type": "run.failed"}), id=""))
    assert state.done


def test_values_mode_snapshot_with_terminal_status_ends_the_stream() -> None:
    state = EventStreamState("r", stream_mode="values")
    snap = {"runId": "r", "workflowId": "w", "status": "running"}
    [event] = state.feed(ServerSentEvent(event="state.snapshot", data=json.dumps(snap), id="3"))
    assert event.type == "state.snapshot" and event.payload["status"] == "running" and not state.done
    state.feed(ServerSentEvent(event="state.snapshot", data=json.dumps({**snap, "status": "completed"}), id="4"))
    assert state.done


def test_retry_field_sets_reconnect_delay() -> None:
    state = EventStreamState("r")
    state.feed(ServerSentEvent(event="", data="", id="", retry=250))
    decision = state.on_stream_end()
    assert decision is not None and decision.delay == 0.25 and not decision.use_poll


def test_streams_that_keep_closing_empty_switch_to_polling() -> None:
    state = EventStreamState("r")
    state.sse_call(30)
    first = state.on_stream_end()
    assert first is not None and not first.use_poll
    state.sse_call(30)
    second = state.on_stream_end()
    assert second is not None and second.use_poll and state.use_poll


def test_silence_reconnects_at_once_and_costs_no_failure() -> None:
    state = EventStreamState("r", policy=RetryPolicy(stream_max_reconnects=1))
    for _ in range(5):
        decision = state.on_error(StreamIdleError("quiet"))
        assert decision.idle and decision.delay == 0
    assert state.failures == 0


def test_sse_unavailable_falls_back_to_poll_but_auth_errors_raise() -> None:
    state = EventStreamState("r")
    not_found = ServerError(status_code=404, code="not_found", message="no sse")
    assert state.on_error(not_found).use_poll
    fresh = EventStreamState("r")
    assert fresh.on_error(ResponseFormatError("json instead of sse")).use_poll
    with pytest.raises(AuthenticationError):
        EventStreamState("r").on_error(AuthenticationError(status_code=401, code="unauthenticated", message="no"))


def test_transient_failures_are_bounded() -> None:
    state = EventStreamState("r", policy=RetryPolicy(stream_max_reconnects=2, initial_backoff=0))
    state.on_error(TransportError("reset"))
    state.on_error(ServerError(status_code=503, code="service_unavailable", message="x", retry_after=1))
    with pytest.raises(TransportError):
        state.on_error(TransportError("reset again"))


def test_progress_resets_the_failure_budget() -> None:
    state = EventStreamState("r", policy=RetryPolicy(stream_max_reconnects=1, initial_backoff=0))
    for seq in range(3):
        state.sse_call(30)
        state.feed(frame(seq))
        state.on_error(TransportError("dropped after a frame"))
    assert state.failures == 1


def test_poll_pages_dedupe_and_finish() -> None:
    state = EventStreamState("r", use_poll=True)
    page = EventPage.model_validate({"events": [{"type": "a", "sequence": 0}, {"type": "b", "sequence": 1}]})
    assert [e.sequence for e in state.feed_page(page)] == [0, 1]
    assert state.poll_call().query["lastSequence"] == "1"
    again = EventPage.model_validate(
        {"events": [{"type": "b", "sequence": 1}], "isComplete": True, "runStatus": "completed"}
    )
    assert state.feed_page(again) == [] and state.done
