"""The simple node kinds: ``core.noop``, ``core.identity``, ``core.delay``, ``core.fail`` and
``conformance.requiresMissing`` (a node needing a capability no host provides)."""

from __future__ import annotations

import asyncio
from typing import Any

from .base import NodeContext, NodeFailure


async def run_noop(ctx: NodeContext) -> dict[str, Any]:
    """``core.noop``: completes immediately with no outputs."""
    return {}


async def run_identity(ctx: NodeContext) -> dict[str, Any]:
    """``core.identity``: echoes ``payload`` (config first, else the run input) into the outputs."""
    return {"payload": ctx.param("payload")}


async def run_delay(ctx: NodeContext) -> dict[str, Any]:
    """``core.delay``: sleeps ``delayMs`` (config or run input); cancellable like any await."""
    delay = ctx.param("delayMs", 0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise NodeFailure(
            "invalid_node_config",
            f"Node {ctx.node.id!r} (core.delay) needs delayMs >= 0 in its config or the run inputs, got {delay!r}",
        )
    await asyncio.sleep(delay / 1000.0)
    return {"delayMs": delay}


async def run_fail(ctx: NodeContext) -> dict[str, Any]:
    """``core.fail``: always fails with ``conformance_test_failure`` (config may override code/message)."""
    raise NodeFailure(
        str(ctx.node.config.get("code", "conformance_test_failure")),
        str(ctx.node.config.get("message", "Intentional conformance failure")),
    )


async def run_requires_missing(ctx: NodeContext) -> dict[str, Any]:
    """``conformance.requiresMissing``: fails because it needs a capability nobody provides."""
    required = ctx.node.config.get("requires") or ["conformance.never-provided"]
    name = str(required[0]) if isinstance(required, list) and required else "conformance.never-provided"
    raise NodeFailure(
        "capability_not_provided",
        f"Node {ctx.node.id!r} requires capability {name!r}, which this host does not provide",
        {"capability": name, "nodeId": ctx.node.id},
    )
