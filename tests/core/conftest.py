"""Core tests talk to the local OpenWOP host over real sockets; each test gets a fresh host."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from openwop_core import AsyncOpenwopClient, OpenwopClient
from openwop_core.testing import DevHost

API_KEY = "sk-test-CORE-Distinctive-Key-7f3a9"


@pytest.fixture
def host() -> Iterator[DevHost]:
    """A local OpenWOP host on a free loopback port."""
    with DevHost(api_key=API_KEY, keepalive_interval=0.5) as running:
        yield running


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, host: DevHost) -> AsyncIterator[Any]:
    """The sync and the async client against the same host (tests await through :func:`call`)."""
    options = {"api_key": host.api_key, "retry": {"initial_backoff": 0.05, "max_backoff": 0.5}}
    if request.param == "sync":
        with OpenwopClient(host.base_url, **options) as sync_client:
            yield sync_client
    else:
        async with AsyncOpenwopClient(host.base_url, **options) as async_client:
            yield async_client


async def call(value: Any) -> Any:
    """Await the async client's results; pass the sync client's through."""
    return await value if inspect.isawaitable(value) else value


async def collect(events: Any) -> list[Any]:
    """Drain a sync or async event iterator into a list."""
    if hasattr(events, "__aiter__"):
        return [e async for e in events]
    return list(events)
