"""The stream state machine, fed frames directly (no sockets): exactly once, in order, to the end."""

from __future__ import annotations

import json
import random

import pytest

from openwop_core import AuthenticationError, EventPage, RetryPolicy, ServerError
from openwop_core.errors import ResponseFormatError, TransportError
from openwop_core.sse import CanonicalFrames, ServerSentEvent, SSEDecoder
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


# -- chunks of canonical frames: the decoder's columns, fed at once, act as the frames fed one by one --------

DATA_KINDS = [
    lambda rng, seq: {"type": rng.choice(["node.completed", "log.appended"]), "sequence": seq, "runId": "r"},
    lambda rng, seq: {"type": "log.appended", "sequence": seq, "payload": {"nodeId": "n", "i": seq}},
    lambda rng, seq: {"type": "node.started", "sequence": seq, "nodeId": None, "payload": {"nodeId": "p"}},
    lambda rng, seq: {"type": "node.started", "seq": seq, "data": {"legacy": True}},  # legacy names
    lambda rng, seq: {"type": "node.started", "sequence": str(seq)},  # lax: a numeric string
    lambda rng, seq: {"payload": {"nodeId": "a"}},  # type from the event line, sequence from the id
    lambda rng, seq: {"type": "node.started", "sequence": "x"},  # invalid: skipped
    lambda rng, seq: {"type": rng.choice(["run.failed", "run.completed"]), "sequence": "x"},  # invalid terminal
    lambda rng, seq: [{"type": "a", "sequence": seq}, {"type": "b", "sequence": seq + 1}],  # a batch
    lambda rng, seq: {"runId": "r", "workflowId": "w", "status": rng.choice(["running", "completed"])},  # values
    lambda rng, seq: {"type": "state.snapshot", "sequence": seq, "payload": {"status": "cancelled"}},
    lambda rng, seq: {"type": rng.choice(["run.completed", "run.cancelled"]), "sequence": seq},  # terminal
    lambda rng, seq: "not json",
    lambda rng, seq: rng.choice([" ", "\t"]) + json.dumps({"type": "node.started", "sequence": seq, "x": None}),
    lambda rng, seq: "",
    lambda rng, seq: 5,
]


def canonical_chunk(rng: random.Random) -> tuple[bytes, list[ServerSentEvent]]:
    """Canonical frames (``id: ``, ``event: `` in all or none, ``data: ``) whose data mixes valid, invalid,
    duplicate, legacy, batch, snapshot and terminal events, and the frames they decode to."""
    with_event = rng.random() < 0.7
    frames = []
    for _ in range(rng.randint(1, 30)):
        seq = rng.randint(0, 25)  # often at or below the cursor: duplicates
        kind = rng.choices(range(len(DATA_KINDS)), weights=[30, 10, 4, 4, 3, 3, 3, 1, 2, 2, 1, 1, 2, 3, 2, 1])[0]
        doc = DATA_KINDS[kind](rng, seq)
        data = doc if isinstance(doc, str) else json.dumps(doc)
        frame_id = rng.choice([str(seq), str(seq), "", f"evt-{seq}"])
        frames.append(ServerSentEvent("node.completed" if with_event else None, data, frame_id))
    body = "".join(
        f"id: {f.id}\n" + (f"event: {f.event}\n" if with_event else "") + f"data: {f.data}\n\n" for f in frames
    )
    return body.encode(), frames


def state_of(state: EventStreamState) -> tuple:
    return (
        state.cursor,
        state.last_event_id,
        state.done,
        state.frames,
        state.delivered,
        state.failures,
        state.unanswered,
        state.empty_streams,
    )


def dumps(events: list) -> list:
    return [(e.model_dump(), e.model_fields_set) for e in events]


def test_a_chunk_of_canonical_frames_acts_as_its_frames_fed_one_by_one() -> None:
    batches = 0
    for seed in range(1500):
        rng = random.Random(seed)
        body, frames = canonical_chunk(rng)
        resume = rng.choice([None, None, 3, 12])
        by_frame, by_chunk = (EventStreamState("r", last_event_id=resume) for _ in range(2))
        for state in (by_frame, by_chunk):
            state.failures = state.unanswered = 2  # progress resets them
        expected = []
        for sse in frames:
            expected += by_frame.feed(sse)
            if by_frame.done:
                break
        decoder = SSEDecoder()
        chunk = decoder.feed_batch(body)
        assert isinstance(chunk, CanonicalFrames), f"seed {seed}: {body!r}"
        batches += 1
        got = by_chunk.feed_frames(chunk)
        assert dumps(got) == dumps(expected), f"seed {seed}: {body!r}"
        assert state_of(by_chunk) == state_of(by_frame), f"seed {seed}: {body!r}"
        # the same stream cut anywhere (each piece canonical or not) still gives the same events
        pieces = sorted(rng.sample(range(1, len(body)), min(5, len(body) - 1)))
        cut = EventStreamState("r", last_event_id=resume)
        cut.failures = cut.unanswered = 2
        decoder, got = SSEDecoder(), []
        for a, b in zip([0, *pieces], [*pieces, len(body)], strict=True):
            if not cut.done:
                got += cut.feed_frames(decoder.feed_batch(body[a:b]))
        assert dumps(got) == dumps(expected), f"seed {seed} cut at {pieces}: {body!r}"
        assert state_of(cut) == state_of(by_frame), f"seed {seed} cut at {pieces}: {body!r}"
    assert batches == 1500


def test_a_chunk_mixing_valid_invalid_and_duplicate_events() -> None:
    docs = [
        {"type": "run.started", "sequence": 1, "runId": "r"},
        {"type": "node.completed", "sequence": 1, "runId": "r"},  # duplicate
        {"type": "node.completed", "sequence": "x"},  # invalid: skipped
        {"type": "node.completed", "sequence": 2, "nodeId": None, "payload": {"nodeId": "n"}},
        {"payload": {}},  # no type nor sequence: from the event line and the id
        {"type": "run.completed", "sequence": 4},
        {"type": "node.completed", "sequence": 5},  # after the terminal event: not read
    ]
    ids = ["1", "1", "2", "2", "3", "4", "5"]
    body = "".join(f"id: {i}\nevent: node.completed\ndata: {json.dumps(d)}\n\n" for i, d in zip(ids, docs, strict=True))
    body += "id: 9\nevent: node.completed\ndata: not json\n\n"
    chunk = SSEDecoder().feed_batch(body.encode())
    assert isinstance(chunk, CanonicalFrames) and len(chunk) == 8
    state = EventStreamState("r")
    events = state.feed_frames(chunk)
    assert [(e.type, e.sequence, e.node_id) for e in events] == [
        ("run.started", 1, None),
        ("node.completed", 2, "n"),
        ("node.completed", 3, None),
        ("run.completed", 4, None),
    ]
    assert (state.cursor, state.last_event_id, state.done, state.frames, state.delivered) == (4, "4", True, 6, 4)
