"""The frame-level SSE decoder against httpx-sse (a test-only dependency, the reference): for the same bytes,
split anywhere, events with the same fields."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator

import httpx
import httpx_sse
import pytest
import respx
from httpx_sse import EventSource

from openwop_core import AsyncOpenwopClient, OpenwopClient, ResponseFormatError
from openwop_core.sse import (
    CanonicalFrames,
    ServerSentEvent,
    SSEDecoder,
    SSEError,
    aiter_sse_batches,
    iter_sse_batches,
)

Fields = tuple[str, str, str, int | None]


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in exactly these chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def response(chunks: list[bytes], content_type: str = "text/event-stream") -> httpx.Response:
    return httpx.Response(200, headers={"content-type": content_type}, stream=Chunks(chunks))


def fields(events: list[ServerSentEvent] | list[httpx_sse.ServerSentEvent]) -> list[Fields]:
    """The fields of each event: ours and httpx-sse's are different classes, compared by value."""
    return [(e.event, e.data, e.id, e.retry) for e in events]


def reference(chunks: list[bytes], content_type: str = "text/event-stream") -> list[Fields]:
    """The reference: httpx-sse's public ``EventSource`` over the same chunks."""
    return fields(list(EventSource(response(chunks, content_type)).iter_sse()))


def ours(chunks: list[bytes], encoding: str = "utf-8") -> list[Fields]:
    decoder = SSEDecoder(encoding)
    events = [sse for chunk in chunks for sse in decoder.feed(chunk)]
    return fields(events + decoder.close())


# -- generated streams ------------------------------------------------------------------------------------

LINE_ENDINGS = ["\n", "\n", "\n", "\r\n", "\r"]
VALUES = ["", "x", " lead", "  two", "a:b", "é€😀", "日本語", "{}", "tab\there"]
ODD_LINES = [
    ": keepalive",
    ":",
    "retry: 1500",
    "retry:250",
    "retry: soon",
    "retry: -3",
    "retry",
    "data",
    "id",
    "event",
    "id: with\0nul",
    "foo: bar",
    "dat: typo",
    "data : spaced name",
    "",
]


def canonical_frame(rng: random.Random, sequence: int) -> list[str]:
    """``id``/``event``/``data`` lines as a host writes them (sometimes without id or event)."""
    doc = {"type": "log.appended", "sequence": sequence, "payload": {"m": rng.choice(VALUES)}}
    lines = []
    if rng.random() < 0.8:
        lines.append(f"id: {sequence}")
    if rng.random() < 0.8:
        lines.append("event: log.appended")
    lines.append("data: " + json.dumps(doc, ensure_ascii=rng.random() < 0.5))
    return lines


def odd_frame(rng: random.Random) -> list[str]:
    """Any mix of fields, comments, several data lines, ids, unknown fields and fields without a colon."""
    lines = []
    for _ in range(rng.randint(0, 5)):
        if rng.random() < 0.35:
            lines.append(rng.choice(ODD_LINES))
        else:
            name = rng.choice(["data", "data", "id", "event"])
            lines.append(name + rng.choice([":", ": ", ":  "]) + rng.choice(VALUES))
    return lines


def stream(rng: random.Random) -> bytes:
    """One stream: mostly canonical frames, some odd ones, a BOM now and then, a last frame that may be
    unterminated, and now and then a byte that is not UTF-8."""
    text = "\ufeff" if rng.random() < 0.1 else ""
    for sequence in range(rng.randint(0, 12)):
        lines = canonical_frame(rng, sequence) if rng.random() < 0.6 else odd_frame(rng)
        eol = rng.choice(LINE_ENDINGS) if rng.random() < 0.3 else "\n"
        text += "".join(line + (rng.choice(LINE_ENDINGS) if rng.random() < 0.1 else eol) for line in lines) + eol
    if rng.random() < 0.3:
        text += "\n".join(odd_frame(rng) or ["data: cut"])  # no blank line: dropped at the end
    body = text.encode()
    if body and rng.random() < 0.1:
        at = rng.randrange(len(body))
        body = body[:at] + rng.choice([b"\xff", b"\xe2\x82", b"\xf0"]) + body[at:]
    return body


def split(rng: random.Random, body: bytes) -> list[bytes]:
    """``body`` cut at random byte positions (inside lines, between CR and LF, inside characters)."""
    if len(body) < 2:
        return [body] if body else []
    cuts = sorted(rng.sample(range(1, len(body)), rng.randint(0, min(12, len(body) - 1))))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@pytest.fixture
def slow_events(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts events that came out of the slow path, so the property below is known to exercise both."""
    counted = [0]
    original = SSEDecoder._slow_frame

    def counting(self: SSEDecoder, frame: str, events: list[ServerSentEvent]) -> None:
        before = len(events)
        original(self, frame, events)
        counted[0] += len(events) - before

    monkeypatch.setattr(SSEDecoder, "_slow_frame", counting)
    return counted


@pytest.fixture
def column_events(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts events that came out of the column path (a chunk of canonical frames, no object per frame)."""
    counted = [0]
    original = SSEDecoder.feed_batch

    def counting(self: SSEDecoder, chunk: bytes) -> list[ServerSentEvent] | CanonicalFrames:
        batch = original(self, chunk)
        if isinstance(batch, CanonicalFrames):
            counted[0] += len(batch)
        return batch

    monkeypatch.setattr(SSEDecoder, "feed_batch", counting)
    return counted


def test_generated_streams_split_anywhere_decode_as_httpx_sse_does(
    slow_events: list[int], column_events: list[int]
) -> None:
    total = 0
    for seed in range(3000):
        rng = random.Random(seed)
        body = stream(rng)
        chunks = split(rng, body)
        expected = reference(chunks)
        assert ours(chunks) == expected, f"seed {seed}: {body!r} in chunks {chunks!r}"
        total += len(expected)
    assert total > 15000
    assert 0.1 * total < slow_events[0] < 0.7 * total  # all three paths ran, many times
    assert column_events[0] > 0.05 * total


def test_chunks_of_canonical_frames_come_as_columns_any_other_as_events() -> None:
    with_events = b'id: 1\nevent: a\ndata: {"x": 1}\n\nid: 2\nevent: \ndata: \n\nid: \nevent: b\ndata:  two\n\n'
    batch = SSEDecoder().feed_batch(with_events + b"id: 3\nevent: c\nda")
    assert isinstance(batch, CanonicalFrames)
    assert (batch.ids, batch.datas) == (["1", "2", ""], ['{"x": 1}', "", " two"])
    assert fields(list(batch)) == reference([with_events])
    without_events = b"id: 7\ndata: a\n\nid: 8\ndata: b\n\n"
    batch = SSEDecoder().feed_batch(without_events)
    assert isinstance(batch, CanonicalFrames) and batch.event_lines == []
    assert (
        fields(list(batch)) == reference([without_events]) == [("message", "a", "7", None), ("message", "b", "8", None)]
    )
    odd = [
        b"id: 1\ndata: a\n\ndata: no id\n\n",  # a frame without an id
        b"id: 1\nevent: a\ndata: a\n\nid: 2\ndata: b\n\n",  # event lines in some frames only
        b"id: 1\ndata:a\n\n",  # no space after the colon
        b"id: 1\ndata: a\n\n\nid: 2\ndata: b\n\n",  # an extra blank line
        b"id: 1\0\ndata: a\n\n",  # a NUL in the id
        b": keepalive\n\nid: 1\ndata: a\n\n",  # a comment
        b"id: 1\nretry: 5\ndata: a\n\n",  # a retry field
        b"id: 1\ndata: a\ndata: b\n\n",  # two data lines
        "\ufeffid: 1\ndata: a\n\n".encode(),  # a byte-order mark
    ]
    for body in odd:
        batch = SSEDecoder().feed_batch(body)
        assert isinstance(batch, list), body
        assert fields(batch) == reference([body]), body


def test_the_benchmark_stream_takes_only_the_fast_path(slow_events: list[int]) -> None:
    body = b"".join(
        f'id: {i}\nevent: log.appended\ndata: {{"type":"log.appended","sequence":{i}}}\n\n'.encode() for i in range(50)
    )
    chunks = split(random.Random(7), body)
    assert ours(chunks) == reference(chunks)
    assert slow_events[0] == 0


# -- explicit cases ---------------------------------------------------------------------------------------


def test_canonical_frames_and_the_last_event_id_persisting() -> None:
    body = b'id: 7\nevent: run.started\ndata: {"a": 1}\n\ndata: no id here\n\nid\ndata: id reset\n\n'
    assert ours([body]) == [
        ("run.started", '{"a": 1}', "7", None),
        ("message", "no id here", "7", None),
        ("message", "id reset", "", None),
    ]


def test_an_id_with_nul_is_ignored_in_both_paths() -> None:
    body = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nid: 4\x00\nevent: e\ndata: c\n\n"
    expected = [("message", "a", "1", None), ("message", "b", "1", None), ("e", "c", "1", None)]
    assert ours([body]) == reference([body]) == expected


def test_one_space_after_the_colon_is_dropped_not_more() -> None:
    body = b"id:  5\nevent:x\ndata:  two\n\n"
    assert ours([body]) == reference([body]) == [("x", " two", " 5", None)]


def test_comments_retry_multiline_data_and_unknown_fields() -> None:
    body = b": keepalive\n\nretry: 2500\nfoo: bar\ndata: a\ndata\ndata: c\n\n"
    assert ours([body]) == reference([body]) == [("message", "a\n\nc", "", 2500)]


def test_crlf_and_cr_endings_split_between_cr_and_lf() -> None:
    chunks = [b"id: 1\r", b"\ndata: a\r\n\r", b"\ndata: b\r\r", b"data: c\r", b"\r"]
    assert (
        ours(chunks)
        == reference(chunks)
        == [
            ("message", "a", "1", None),
            ("message", "b", "1", None),
            ("message", "c", "1", None),
        ]
    )


def test_a_frame_ending_in_cr_is_dispatched_without_waiting_for_the_next_chunk() -> None:
    decoder = SSEDecoder()
    assert fields(decoder.feed(b"data: now\r\r")) == [("message", "now", "", None)]
    assert decoder.feed(b"\ndata: next\n\n")[0].data == "next"  # the LF belonged to the CR before it


def test_a_character_split_across_chunks() -> None:
    data = "é€😀".encode()
    chunks = [b"data: " + data[:1], data[1:4], data[4:8], data[8:] + b"\n\n"]
    assert ours(chunks) == reference(chunks) == [("message", "é€😀", "", None)]


def test_a_bom_is_kept_as_httpx_sse_keeps_it() -> None:
    body = "\ufeffdata: first\n\ndata: second\n\n".encode()
    assert ours([body]) == reference([body]) == [("message", "second", "", None)]


def test_an_unterminated_last_frame_is_dropped() -> None:
    chunks = [b"data: whole\n\n", b"id: 9\ndata: half\n"]
    assert ours(chunks) == reference(chunks) == [("message", "whole", "", None)]


def test_extra_blank_lines_dispatch_empty_events_once_an_id_is_set() -> None:
    body = b"\n\ndata: a\n\n\n\nid: 3\ndata: b\n\n\n\n\n"
    assert (
        ours([body])
        == reference([body])
        == [
            ("message", "a", "", None),
            ("message", "b", "3", None),
            ("message", "", "3", None),
            ("message", "", "3", None),
            ("message", "", "3", None),
        ]
    )


def test_the_charset_of_the_content_type_is_honoured() -> None:
    body = "data: café\n\n".encode("latin-1")
    content_type = "text/event-stream; charset=iso-8859-1"
    assert fields(next(b for b in iter_sse_batches(response([body], content_type)) if b)) == [
        ("message", "café", "", None)
    ]
    assert reference([body], content_type) == [("message", "café", "", None)]


def test_a_body_that_is_not_an_event_stream_is_refused_as_httpx_sse_refuses_it() -> None:
    with pytest.raises(SSEError, match="application/json") as refused:
        next(iter_sse_batches(response([b"{}"], "application/json")))
    assert isinstance(refused.value, ResponseFormatError)
    with pytest.raises(httpx_sse.SSEError, match="application/json"):
        reference([b"{}"], "application/json")


async def test_the_async_batches_are_the_sync_ones() -> None:
    chunks = split(random.Random(3), stream(random.Random(3)))
    batches = [fields(batch) async for batch in aiter_sse_batches(response(chunks))]
    assert batches == [fields(batch) for batch in iter_sse_batches(response(chunks))]
    assert [f for batch in batches for f in batch] == reference(chunks)


# -- through the clients ----------------------------------------------------------------------------------

BASE = "https://openwop.test"


def event_frames(*types: str) -> bytes:
    docs = [{"type": t, "sequence": i, "runId": "r1", "payload": {}} for i, t in enumerate(types)]
    return b"".join(
        f"id: {d['sequence']}\r\nevent: {d['type']}\r\ndata: {json.dumps(d)}\r\n\r\n".encode() for d in docs
    )


@respx.mock
async def test_clients_follow_a_crlf_stream_cut_into_small_chunks() -> None:
    body = b": hello\r\n\r\nretry: 10\r\n\r\n" + event_frames("run.started", "node.completed", "run.completed")
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    respx.get(f"{BASE}/v1/runs/r1/events").mock(side_effect=lambda request: response(chunks))
    with OpenwopClient(BASE, api_key="k") as client:
        assert [e.type for e in client.runs_events("r1")] == ["run.started", "node.completed", "run.completed"]
    async with AsyncOpenwopClient(BASE, api_key="k") as aclient:
        assert [e.sequence async for e in aclient.runs_events("r1")] == [0, 1, 2]


@respx.mock
async def test_clients_report_a_body_that_is_not_an_event_stream() -> None:
    respx.get(f"{BASE}/v1/runs/r1/events").mock(return_value=httpx.Response(200, json={"events": []}))
    with OpenwopClient(BASE, api_key="k") as client, pytest.raises(ResponseFormatError, match="event stream"):
        list(client.runs_events("r1", reconnect=False, poll_fallback=False))
    async with AsyncOpenwopClient(BASE, api_key="k") as aclient:
        with pytest.raises(ResponseFormatError, match="event stream"):
            [e async for e in aclient.runs_events("r1", reconnect=False, poll_fallback=False)]
