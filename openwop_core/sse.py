"""A sans-IO Server-Sent-Events decoder that works on whole frames instead of single lines.

Fed the raw body chunks of an event stream (``response.iter_bytes()``: after httpx undid chunking and
compression), it returns the :class:`ServerSentEvent` sequence that httpx-sse's ``EventSource`` returns for
the same bytes (the same fields), at a fraction of the cost per event: a canonical frame (``id:``,
``event:`` and one ``data:`` line, as hosts write them) is one regular-expression match on the decoded
text, where httpx-sse runs a line splitter and a field decoder in Python for every line. When every frame
a chunk completes is canonical and has an id (what hosts send), :meth:`SSEDecoder.feed_batch` does not even
do that: it splits the chunk's lines once and hands on :class:`CanonicalFrames`, the ids and data in
columns, checked and cut by a few C-level string operations per chunk and no Python code per frame.

Every other frame (comments, ``retry:``, several ``data:`` lines, unknown fields, fields without a colon, a
byte-order mark, extra blank lines) takes :meth:`SSEDecoder._slow_frame`, which interprets its lines as
httpx-sse's decoder does, quirks included: httpx-sse keeps a leading BOM (so the first field is unknown) and
dispatches an empty event at a blank line whenever the last event id is set. CR and CRLF line endings become
LF first, even when a chunk ends between CR and LF. httpx-sse is not a dependency of the client: the event
and error types are defined here, and the tests (``tests/core/test_sse_decoder.py``, where httpx-sse is a
test dependency) check both paths field by field against httpx-sse's public ``EventSource`` on generated
streams split at random byte positions, so a difference from httpx-sse shows up there.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, Iterator
from contextlib import suppress
from operator import itemgetter

import httpx

from .errors import ResponseFormatError

#: A canonical frame, blank line included: an ``id`` (one with a NUL is ignored: the slow path handles it)
#: and an ``event``, both optional, then one ``data`` line; one space after each colon is dropped.
_CANONICAL = re.compile(r"(?:id: ?([^\n\0]*)\n)?(?:event: ?([^\n]*)\n)?data: ?([^\n]*)\n\n")
#: The values of ``id: `` and ``data: `` lines (the prefix, one space included, cut off).
_ID_VALUES, _DATA_VALUES = itemgetter(slice(4, None)), itemgetter(slice(6, None))


class SSEError(ResponseFormatError):
    """A response that should be an event stream is not one (its Content-Type is not ``text/event-stream``)."""


class ServerSentEvent:
    """One dispatched event: its type (``"message"`` when the frame names none), data, last event id and
    ``retry`` (milliseconds, None when the frame sets none). Slotted: one is made per event on the hot path."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, event: str | None = None, data: str = "", id: str = "", retry: int | None = None) -> None:
        self.event = event or "message"
        self.data = data
        self.id = id
        self.retry = retry

    def __repr__(self) -> str:
        return f"ServerSentEvent(event={self.event!r}, data={self.data!r}, id={self.id!r}, retry={self.retry!r})"


class CanonicalFrames:
    """The frames a chunk completed when every one is canonical, in columns: each frame's ``id`` (every
    frame has one), its ``event: `` line (none when the frames have no ``event`` line) and its ``data``. Iterating
    gives the same :class:`ServerSentEvent` sequence :meth:`SSEDecoder.feed` returns; the event stream state
    reads the columns instead (no object per frame)."""

    __slots__ = ("datas", "event_lines", "ids")

    def __init__(self, ids: list[str], event_lines: list[str], datas: list[str]) -> None:
        self.ids = ids
        self.event_lines = event_lines
        self.datas = datas

    def event(self, index: int) -> ServerSentEvent:
        """Frame ``index`` as a :class:`ServerSentEvent`."""
        name = self.event_lines[index][7:] if self.event_lines else None
        return ServerSentEvent(name, self.datas[index], self.ids[index])

    def __len__(self) -> int:
        return len(self.datas)

    def __iter__(self) -> Iterator[ServerSentEvent]:
        return map(self.event, range(len(self.datas)))


#: What the decoder hands on for one chunk: the frames as events, or as columns when all are canonical.
FrameBatch = list[ServerSentEvent] | CanonicalFrames


class SSEDecoder:
    """Incremental decoder of one event stream: :meth:`feed` each body chunk, then :meth:`close`."""

    def __init__(self, encoding: str = "utf-8") -> None:
        # httpx decodes a body's text with errors="replace"; so do we, chunk boundaries included.
        self._text = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._pending: list[str] = []  # text after the last blank line, LF endings only
        self._after_cr = False  # the last text ended with CR: a LF opening the next one belongs to it
        self._last_id = ""  # persists across events, as the spec's "last event ID buffer"

    @classmethod
    def for_response(cls, response: httpx.Response) -> SSEDecoder:
        """A decoder for ``response``'s body; raises :class:`SSEError` when it is not an event stream (the
        check httpx-sse's ``EventSource`` makes)."""
        content_type = response.headers.get("content-type", "").partition(";")[0]
        if "text/event-stream" not in content_type:
            raise SSEError(
                f"Expected response header Content-Type to contain 'text/event-stream', got {content_type!r}"
            )
        return cls(response.encoding or "utf-8")

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Events completed by ``chunk`` (a chunk may end anywhere, even inside a character)."""
        return list(self.feed_batch(chunk))

    def feed_batch(self, chunk: bytes) -> FrameBatch:
        """The frames completed by ``chunk``: as :class:`CanonicalFrames` when all are canonical frames with
        an ``id`` (as hosts write them: then no object is made per frame), else as events."""
        text = self._complete_frames(self._lf_only(self._text.decode(chunk)))
        if text:
            end = text.rfind("\n\n") + 2
            batch = _canonical_frames(text[:end] if end < len(text) else text)
            if batch is not None:
                self._last_id = batch.ids[-1]
                if end < len(text):
                    self._pending.append(text[end:])
                return batch
        return self._events(text)

    def close(self) -> list[ServerSentEvent]:
        """Events completed at the end of the stream. As in httpx-sse, a last frame without its blank line
        is dropped; only a blank line that opens the unterminated rest can still dispatch."""
        events = self._events(self._complete_frames(self._lf_only(self._text.decode(b"", final=True))))
        if self._pending and self._pending[0][0] == "\n":
            self._dispatch("", [], None, events)
        self._pending.clear()
        return events

    def _events(self, text: str) -> list[ServerSentEvent]:
        """Events of the frames that ``text`` (from :meth:`_complete_frames`) completes: canonical frames
        matched in place, any other frame (up to its blank line) interpreted line by line; the unfinished
        rest waits for more text."""
        events: list[ServerSentEvent] = []
        canonical = _CANONICAL.match
        pos = 0
        while True:
            frame = canonical(text, pos)
            if frame is not None:
                last_id, event, data = frame.groups()
                if last_id is None:
                    last_id = self._last_id
                else:
                    self._last_id = last_id
                events.append(ServerSentEvent(event, data, last_id))
                pos = frame.end()
                continue
            end = text.find("\n\n", pos)
            if end < 0:
                break
            self._slow_frame(text[pos:end], events)
            pos = end + 2
        if pos < len(text):
            self._pending.append(text[pos:])
        return events

    # -- text to frames -----------------------------------------------------------------------------

    def _lf_only(self, text: str) -> str:
        """``text`` with CRLF and CR line endings turned into LF, across chunk boundaries."""
        if self._after_cr and text:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def _complete_frames(self, text: str) -> str:
        """The pending text joined with ``text`` once a blank line may end a frame in it, else ``""``
        (and ``text`` pending): a frame that arrives in many chunks is joined once, not once a chunk."""
        pending = self._pending
        if not text:
            return ""
        if "\n\n" not in text and not (text[0] == "\n" and pending and pending[-1][-1] == "\n"):
            pending.append(text)
            return ""
        if pending:
            pending.append(text)
            text = "".join(pending)
            pending.clear()
        return text

    # -- frames to events ---------------------------------------------------------------------------

    def _slow_frame(self, frame: str, events: list[ServerSentEvent]) -> None:
        """Interpret any frame line by line (the WHATWG rules as httpx-sse applies them)."""
        lines = frame.split("\n")
        if not lines[0]:  # an extra blank line before this frame (a frame holds no other blank line)
            self._dispatch("", [], None, events)
            lines.pop(0)
        event = ""
        data: list[str] = []
        retry: int | None = None
        for line in lines:
            if line.startswith(":"):
                continue  # a comment
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry":
                with suppress(ValueError):  # a value that is not a number is ignored
                    retry = int(value)
        self._dispatch(event, data, retry, events)

    def _dispatch(self, event: str, data: list[str], retry: int | None, events: list[ServerSentEvent]) -> None:
        """The event a blank line ends, if any: httpx-sse dispatches unless the event, the data, the last
        event id and the retry are all empty (the spec would also skip one without data)."""
        if event or data or self._last_id or retry is not None:
            events.append(ServerSentEvent(event, "\n".join(data), self._last_id, retry))


def _canonical_frames(text: str) -> CanonicalFrames | None:
    """The frames of ``text`` (whole frames, ending with their blank line) as columns when every one is
    canonical with an ``id``: ``id: ``, ``event: `` (in all frames or in none) and ``data: `` lines, one space
    after each colon, no NUL in an id; else None (the caller decodes frame by frame). A handful of C-level
    string operations per chunk, no Python code per frame: the lines are split once, then each column's
    prefixes are cut and counted."""
    if "\0" in text:
        return None  # an id with a NUL is ignored: the frame-by-frame path knows how
    lines = text.split("\n")
    period = 4 if lines[1].startswith("event: ") else 3
    count, rest = divmod(len(lines) - 1, period)  # the text ends with LF LF: the last "line" is empty
    if rest or lines[period - 1 :: period].count("") != count:
        return None
    ids = lines[0:-1:period]
    datas = lines[period - 2 : -1 : period]
    events = lines[1:-1:period] if period == 4 else []
    for column, prefix in ((ids, "id: "), (datas, "data: "), (events, "event: ")):
        if list(map(itemgetter(slice(len(prefix))), column)).count(prefix) != len(column):
            return None
    return CanonicalFrames(list(map(_ID_VALUES, ids)), events, list(map(_DATA_VALUES, datas)))


def iter_sse_batches(response: httpx.Response) -> Iterator[FrameBatch]:
    """The frames of ``response``'s body, one batch per chunk received (often empty)."""
    decoder = SSEDecoder.for_response(response)
    for chunk in response.iter_bytes():
        yield decoder.feed_batch(chunk)
    yield decoder.close()


async def aiter_sse_batches(response: httpx.Response) -> AsyncGenerator[FrameBatch, None]:
    """:func:`iter_sse_batches` for an async response (one ``await`` per chunk, not per event)."""
    decoder = SSEDecoder.for_response(response)
    async for chunk in response.aiter_bytes():
        yield decoder.feed_batch(chunk)
    yield decoder.close()
