"""A minimal raw SSE server for the throughput benchmark: it builds, once, the byte blob of one run's event
stream (``count`` ``log.appended`` frames shaped exactly like the local host's ``devhost-burst`` events,
then ``run.completed``) and answers every GET with it, whatever the path, in one of two framings:

- ``chunked`` (the default): HTTP/1.1 chunked transfer encoding, 64 KiB chunks, then ``Connection: close``
  (as the Node reference hosts send);
- ``close``: close-delimited, HTTP/1.0-style: an ``HTTP/1.0`` status line, no ``Transfer-Encoding`` nor
  ``Content-Length``, the body ends when the connection closes (as the Python reference host sends).

It does no per-request work but ``sendall``, so the server is never the bottleneck; it runs in a process of
its own.

    python -m bench.rawsse --events 100000 --payload-bytes 250 [--framing close]
    # prints "listening on http://127.0.0.1:N"
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading

RUN_ID = "run_" + "0123456789abcdef" * 2  # a 32-hex run id, as the local host makes them
NODE_ID = "burst"
TIMESTAMP = "2026-01-01T00:00:00.000Z"
CHUNK = 64 * 1024


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _frame(sequence: int, event_type: str, payload: dict[str, object]) -> bytes:
    doc = {
        "eventId": f"evt_{RUN_ID[4:]}_{sequence}",
        "runId": RUN_ID,
        "type": event_type,
        "sequence": sequence,
        "timestamp": TIMESTAMP,
        "schemaVersion": 1,
        "nodeId": NODE_ID,
        "payload": payload,
    }
    return f"id: {sequence}\nevent: {event_type}\ndata: {_dumps(doc)}\n\n".encode()


def build_body(count: int, payload_bytes: int) -> bytes:
    """The SSE body: ``count`` events in all, the last one ``run.completed`` (the payload padding follows
    ``devhost.burst``: each ``log.appended`` payload is about ``payload_bytes`` bytes of JSON)."""
    overhead = len(
        _dumps({"level": "info", "message": "burst event 0000000", "nodeId": NODE_ID, "fields": {"i": 0, "pad": ""}})
    )
    pad = "x" * max(0, payload_bytes - overhead)
    parts = [
        _frame(
            i,
            "log.appended",
            {"level": "info", "message": f"burst event {i:07d}", "nodeId": NODE_ID, "fields": {"i": i, "pad": pad}},
        )
        for i in range(count - 1)
    ]
    parts.append(_frame(count - 1, "run.completed", {"outputs": {"emitted": count - 1}, "durationMs": 1}))
    return b"".join(parts)


def chunked(body: bytes, size: int = CHUNK) -> bytes:
    """``body`` in HTTP/1.1 chunked transfer encoding."""
    out = bytearray()
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n"
)
#: The close-delimited head: no length, no transfer coding: the body is everything up to the close.
HEAD_CLOSE = (
    b"HTTP/1.0 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: close\r\n\r\n"
)
FRAMINGS = ("chunked", "close")


def response_for(body: bytes, framing: str) -> bytes:
    """The whole HTTP response carrying ``body`` in ``framing`` (one of :data:`FRAMINGS`)."""
    if framing == "chunked":
        return HEAD + chunked(body)
    if framing == "close":
        return HEAD_CLOSE + body
    raise ValueError(f"unknown framing {framing!r}")


def _serve_one(conn: socket.socket, response: bytes) -> None:
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(65536)
            if not data:
                return
            request += data
        try:
            conn.sendall(response)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return  # the client went away early


def main(argv: list[str] | None = None) -> int:
    """Build the blob, listen on a free loopback port, print the URL, serve until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--payload-bytes", type=int, default=250)
    parser.add_argument("--framing", choices=FRAMINGS, default="chunked")
    args = parser.parse_args(argv)
    body = build_body(args.events, args.payload_bytes)
    response = response_for(body, args.framing)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_serve_one, args=(conn, response), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    print(f"listening on http://127.0.0.1:{port} ({len(body):,} bytes body, {args.framing} framing)", flush=True)
    sys.stdin.read()  # the parent closes our stdin (or ends us) when it is done
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
