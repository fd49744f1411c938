"""One connection lookup for the many OpenWOP waits that start together in a triggerer.

In a triggerer, ``aget_connection`` is a request to the triggerer's supervisor, which answers one at a time with
a call to the API server. A thousand waits starting together (a triggerer starting, or taking over a dead
one's waits) would queue a thousand identical lookups, and the last wait would start seconds after the first.
Waits on one event loop share one lookup of a connection instead: concurrent callers await the same one, and
its answer serves those starting within ``CONNECTION_TTL`` seconds of it. A failed lookup is not kept (the next
wait asks again), and a connection edited in the UI reaches the waits that start after the TTL; waits already
running keep the client they started with, as before.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

#: Seconds for which one lookup of a connection serves the waits starting on the same event loop.
CONNECTION_TTL = 30.0


@dataclass
class _Lookup:
    """A lookup under way (``pending``), then its answer. The answer is kept without the future, which holds
    its loop: the loop, a weak key of ``_LOOKUPS``, could otherwise never be collected (``dag.test()`` runs a
    loop per trigger)."""

    pending: asyncio.Future[Any] | None
    connection: Any = field(default=None, repr=False)  # holds the API key
    answered_at: float | None = None


_LOOKUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Lookup]] = weakref.WeakKeyDictionary()


async def shared_connection_lookup(conn_id: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
    """The connection ``conn_id`` as ``fetch`` returns it, fetched once for the callers on this loop that ask
    together or within ``CONNECTION_TTL`` seconds of an answer. A caller cancelled while waiting does not
    cancel the lookup the others await."""
    per_loop = _LOOKUPS.setdefault(asyncio.get_running_loop(), {})
    lookup = per_loop.get(conn_id)
    answered_at = lookup.answered_at if lookup is not None else None
    if answered_at is not None and time.monotonic() - answered_at > CONNECTION_TTL:
        lookup = None
    if lookup is None:
        pending = asyncio.ensure_future(fetch())
        new = lookup = _Lookup(pending)
        per_loop[conn_id] = new
        pending.add_done_callback(lambda done: _settle(per_loop, conn_id, new, done))
    if lookup.pending is None:
        return lookup.connection
    return await asyncio.shield(lookup.pending)


def _settle(per_loop: dict[str, _Lookup], conn_id: str, lookup: _Lookup, done: asyncio.Future[Any]) -> None:
    """Keep an answer from now on; forget a failed or cancelled lookup so that the next caller asks again."""
    if done.cancelled() or done.exception() is not None:
        if per_loop.get(conn_id) is lookup:
            del per_loop[conn_id]
    else:
        lookup.connection, lookup.answered_at, lookup.pending = done.result(), time.monotonic(), None
