"""A wait ends at its ``timeout`` even while the host keeps the stream alive with keepalive comments
(found while checking issue #12, item 12): each keepalive restarted the stream's read timeout, so a wait whose
timeout exceeded the keepalive interval ran on until the run ended."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from core_helpers import API_KEY

from openwop_core import AsyncOpenwopClient, OpenwopClient, WaitTimeoutError
from openwop_devhost import DevHost


@pytest.fixture
def chatty_host() -> Iterator[DevHost]:
    """A host that sends a keepalive comment every 0.2 s on every open stream."""
    with DevHost(api_key=API_KEY, keepalive_interval=0.2) as running:
        yield running


@pytest.mark.timeout(40)
def test_sync_wait_ends_at_its_timeout_despite_keepalives(chatty_host: DevHost) -> None:
    with OpenwopClient(chatty_host.base_url, api_key=API_KEY) as client:
        run = client.runs_create("conformance-cancellable", {"delayMs": 60000})
        with pytest.raises(WaitTimeoutError, match="last status running"):
            client.wait_for_run(run.run_id, timeout=2)
        client.runs_cancel(run.run_id)


@pytest.mark.timeout(40)
async def test_async_wait_ends_at_its_timeout_despite_keepalives(chatty_host: DevHost) -> None:
    async with AsyncOpenwopClient(chatty_host.base_url, api_key=API_KEY) as client:
        run = await client.runs_create("conformance-cancellable", {"delayMs": 60000})
        with pytest.raises(WaitTimeoutError, match="last status running"):
            await client.wait_for_run(run.run_id, timeout=2)
        await client.runs_cancel(run.run_id)
