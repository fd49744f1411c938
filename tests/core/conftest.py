"""Core tests talk to the local OpenWOP host over real sockets; each test gets a fresh host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from core_helpers import API_KEY

from openwop_core import AsyncOpenwopClient, OpenwopClient
from openwop_devhost import DevHost


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
