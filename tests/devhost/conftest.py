"""Fixtures for the devhost tests: one shared host for read-mostly tests, fresh hosts for faults."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from devhost_helpers import API_KEY, READ_ONLY_KEY

from openwop_devhost import DevHost


@pytest.fixture(scope="session")
def shared_host() -> Iterator[DevHost]:
    """One host for tests that only create their own runs (no host-wide fault changes)."""
    with DevHost(api_key=API_KEY, keepalive_interval=0.3, api_keys={READ_ONLY_KEY: ["runs:read"]}) as host:
        yield host


@pytest.fixture
def host(shared_host: DevHost) -> DevHost:
    """The shared host."""
    return shared_host


@pytest.fixture
def client(host: DevHost) -> Iterator[httpx.Client]:
    """An authenticated httpx client for ``host``."""
    with httpx.Client(base_url=host.base_url, headers={"Authorization": f"Bearer {host.api_key}"}, timeout=15) as c:
        yield c
