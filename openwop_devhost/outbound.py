"""A minimal asyncio HTTP/1.1 POST client for webhooks and interrupt callbacks (stdlib only).

The host must not depend on httpx, and outbound calls must never block the event loop, so this
opens one connection per request, sends ``Connection: close`` and reads only the status line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit


class OutboundError(Exception):
    """The request could not be delivered (bad URL, connection error, timeout, garbled reply)."""


async def post_bytes(url: str, body: bytes, headers: dict[str, str], timeout: float = 5.0) -> int:
    """POST ``body`` to ``url`` with ``headers``; return the response status code."""
    try:
        return await asyncio.wait_for(_post(url, body, headers), timeout)
    except asyncio.TimeoutError as exc:
        raise OutboundError(f"no response within {timeout:g} s") from exc
    except OSError as exc:
        raise OutboundError(f"connection failed: {exc}") from exc


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError(f"unsupported URL {url!r}: use http:// or https://")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    context = ssl.create_default_context() if secure else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        lines = [f"POST {target} HTTP/1.1", f"Host: {host_header}", f"Content-Length: {len(body)}", "Connection: close"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status_line = await reader.readline()
        pieces = status_line.split(b" ", 2)
        if len(pieces) < 2 or not pieces[0].startswith(b"HTTP/") or not pieces[1].isdigit():
            raise OutboundError(f"garbled response status line {status_line[:80]!r}")
        return int(pieces[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):  # the peer may already have gone
            await writer.wait_closed()
