"""``core.interrupt``: a node that waits (``waiting-external``) for an external event or a custom value.

``kind: "external-event"`` expects ``{"eventPayload": ...}`` (and, if the node names a correlation,
the same one); ``kind: "custom"`` accepts any value. A ``timeoutMs`` (config or run input) fails the
node with ``interrupt_timeout`` when nothing arrives.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from .base import NodeContext, NodeFailure, SuspendSpec, timeout_of


async def run_interrupt(ctx: NodeContext) -> dict[str, Any]:
    """``core.interrupt``: waits (``waiting-external``) for an external event or a custom value."""
    config = ctx.node.config
    kind = str(config.get("kind", "external-event"))
    timeout_ms = timeout_of(ctx, from_inputs=True)
    if kind == "external-event":
        correlation = config.get("correlation", {})
        data: dict[str, Any] = {
            "eventType": str(config.get("eventType", "devhost.external.event")),
            "correlation": correlation,
        }

        def validate(value: Any) -> Any:
            if not isinstance(value, dict) or "eventPayload" not in value:
                raise ApiError(
                    400,
                    "validation_error",
                    'An external-event resumeValue must be an object {"eventPayload": ...}.',
                    {"field": "eventPayload"},
                )
            given = value.get("correlation")
            if given is not None and correlation and given != correlation:
                raise ApiError(
                    422,
                    "correlation_mismatch",
                    "The event's correlation does not match the one this interrupt waits for.",
                    {"expected": correlation, "received": given},
                )
            return value

        schema: dict[str, Any] | None = {"type": "object", "required": ["eventPayload"]}
    elif kind == "custom":
        data = {"customKind": str(config.get("customKind", "devhost.custom")), "payload": config.get("payload", {})}

        def validate(value: Any) -> Any:
            return value

        schema = config.get("resumeSchema") if isinstance(config.get("resumeSchema"), dict) else None
    else:
        raise NodeFailure(
            "invalid_node_config",
            f"Node {ctx.node.id!r} (core.interrupt): kind must be 'external-event' or 'custom', got {kind!r}",
        )
    spec = SuspendSpec(
        kind=kind,
        status="waiting-external",
        data=data,
        validate=validate,
        resolution_events=lambda value, by: [],
        resume_schema=schema,
        timeout_ms=timeout_ms,
    )
    value = await ctx.suspend_or_fail(
        spec, "interrupt_timeout", f"Interrupt {ctx.node.id!r} ({kind}) was not resolved", {"kind": kind}
    )
    if kind == "external-event":
        return {"eventPayload": value["eventPayload"]}
    return {"resumeValue": value}
