"""Helpers shared by the core tests (sync and async clients awaited alike)."""

from __future__ import annotations

import inspect
from typing import Any

API_KEY = "sk-test-CORE-Distinctive-Key-7f3a9"


async def call(value: Any) -> Any:
    """Await the async client's results; pass the sync client's through."""
    return await value if inspect.isawaitable(value) else value


async def collect(events: Any) -> list[Any]:
    """Drain a sync or async event iterator into a list."""
    if hasattr(events, "__aiter__"):
        return [e async for e in events]
    return list(events)
