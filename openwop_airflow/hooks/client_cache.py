"""Share one ``AsyncOpenwopClient`` per connection among the triggers running in one triggerer process.

A triggerer may hold a thousand OpenWOP waits; a client each would mean a thousand connection pools and
TLS contexts. Clients are keyed by the running event loop (an ``httpx.AsyncClient`` belongs to the loop
it was first used on; ``dag.test()`` starts a new loop for every trigger) and by the connection id plus a
salted fingerprint of its settings (so a rotated key or a changed retry policy gets a fresh client; the
key text is never a cache key). A client is closed when its last user leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

from openwop_airflow.hooks.connection import OpenwopConnectionSettings
from openwop_core import AsyncOpenwopClient, RetryPolicy

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    client: AsyncOpenwopClient
    users: int = 0


_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _Entry]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def shared_async_client(
    settings: OpenwopConnectionSettings, *, retry: RetryPolicy | None = None
) -> AsyncIterator[AsyncOpenwopClient]:
    """Lend the loop's shared client for ``settings`` (created on first use, closed after the last user)."""
    loop = asyncio.get_running_loop()
    per_loop = _CLIENTS.setdefault(loop, {})
    key = (settings.conn_id, settings.fingerprint(retry))
    entry = per_loop.get(key)
    if entry is None:
        entry = _Entry(settings.client(AsyncOpenwopClient, retry=retry))
        per_loop[key] = entry
    entry.users += 1
    try:
        yield entry.client
    finally:
        entry.users -= 1
        if entry.users == 0 and per_loop.get(key) is entry:
            del per_loop[key]
            try:
                await entry.client.aclose()
            except BaseException:  # closing is best effort, also while the task is being cancelled
                log.debug("closing the shared OpenWOP client failed", exc_info=True)


def shared_client_count() -> int:
    """How many shared clients are open in the running loop (for tests and diagnostics)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return 0
    return len(_CLIENTS.get(loop, {}))
