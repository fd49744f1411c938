"""The devhost's own node kinds: ``devhost.burst`` (event throughput) and ``devhost.artifact``."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from ..errors import dumps
from .base import NodeContext, NodeFailure


async def run_burst(ctx: NodeContext) -> dict[str, Any]:
    """``devhost.burst``: appends ``count`` debug-only ``log.appended`` events as fast as possible.

    For throughput benchmarks (e.g. 100,000 events): no sleep per event, one yield to the event
    loop every 1,000 events so streams and other runs keep flowing.
    """
    count = ctx.param("count", 1000)
    size = ctx.param("payloadBytes", 250)
    for name, value in (("count", count), ("payloadBytes", size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise NodeFailure("invalid_node_config", f"devhost.burst needs an integer {name} >= 0, got {value!r}")
    overhead = len(
        dumps({"level": "info", "message": "burst event 0000000", "nodeId": ctx.node.id, "fields": {"i": 0, "pad": ""}})
    )
    pad = "x" * max(0, size - overhead)
    node_id = ctx.node.id
    emit = ctx.emit
    for index in range(count):
        emit(
            "log.appended",
            {
                "level": "info",
                "message": f"burst event {index:07d}",
                "nodeId": node_id,
                "fields": {"i": index, "pad": pad},
            },
        )
        if index % 1000 == 999:
            await asyncio.sleep(0)
    return {"emitted": count}


async def run_artifact(ctx: NodeContext) -> dict[str, Any]:
    """``devhost.artifact``: stores a JSON artifact (config/input ``data``) and emits ``artifact.created``."""
    config = ctx.node.config
    artifact_id = str(config.get("artifactId", f"art_{uuid.uuid4().hex[:16]}"))
    artifact_type = str(config.get("artifactType", "json"))
    ctx.store_artifact(artifact_id, artifact_type, ctx.param("data", {}), announce=True)
    return {"artifactId": artifact_id}
