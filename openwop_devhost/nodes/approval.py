"""``core.approvalGate``: a node that waits (``waiting-approval``) for a person to accept or reject.

Resume values are ``{"action": ...}`` (``accept``, ``reject``, ``refine``, ``edit``/``edit-accept``,
``ask``) or the legacy ``{"decision": "approved"|"rejected"}``. Reject, refine and a timeout fail
the node (``approval_rejected``); ``ask`` answers without ending the wait.
"""

from __future__ import annotations

from typing import Any

from ..engine.events import now_iso
from ..errors import ApiError
from .base import InterruptTimeout, NodeContext, NodeFailure, SuspendSpec, timeout_of

APPROVAL_ACTIONS = ("accept", "reject", "refine", "edit", "ask")


def _approval_actions(ctx: NodeContext) -> list[str]:
    actions = ctx.node.config.get("actions", ["accept", "reject"])
    if not isinstance(actions, list) or not actions or not all(a in APPROVAL_ACTIONS for a in actions):
        raise NodeFailure(
            "invalid_node_config",
            f"Node {ctx.node.id!r} (core.approvalGate): actions must be a non-empty subset of {list(APPROVAL_ACTIONS)}",
        )
    return [str(a) for a in actions]


def _allowed_actions(actions: list[str]) -> list[str]:
    """The resume actions a gate with ``actions`` accepts: ``edit`` brings ``edit-accept``."""
    return list(actions) + (["edit-accept"] if "edit" in actions else [])


def _normalise_approval(value: Any, actions: list[str]) -> dict[str, Any]:
    allowed = _allowed_actions(actions)
    if not isinstance(value, dict):
        raise ApiError(
            400,
            "validation_error",
            'An approval resumeValue must be an object such as {"action": "accept"}.',
            {"allowedActions": allowed},
        )
    normalised = dict(value)
    action = normalised.get("action")
    if action is None and "decision" in normalised:  # legacy {"decision": "approved"|"rejected"}
        decision = normalised.pop("decision")
        if decision == "approved":
            action = "accept"
        elif decision == "rejected":
            action = "refine" if normalised.get("feedback") and "refine" in actions else "reject"
        else:
            raise ApiError(
                400,
                "validation_error",
                f"Legacy approval decision must be 'approved' or 'rejected', got {decision!r}.",
                {"field": "decision", "received": decision},
            )
    if action not in allowed:
        raise ApiError(
            400,
            "validation_error",
            f"Approval action {action!r} is not allowed here; use one of {allowed}.",
            {"field": "action", "received": action, "allowedActions": allowed},
        )
    normalised["action"] = action
    return normalised


async def run_approval_gate(ctx: NodeContext) -> dict[str, Any]:
    """``core.approvalGate``: waits (``waiting-approval``) for accept/reject; reject or timeout fails it."""
    config = ctx.node.config
    actions = _approval_actions(ctx)
    timeout_ms = timeout_of(ctx, from_inputs=False)
    artifact_id = str(config.get("artifactId", f"{ctx.node.id}-artifact"))
    artifact_type = str(config.get("artifactType", "document"))
    artifact_data = config.get("artifactData", {"summary": config.get("description", "")})
    title = str(config.get("title", f"Approve {ctx.node.id}"))
    ctx.store_artifact(artifact_id, artifact_type, artifact_data, announce=False)
    data = {
        "title": title,
        "description": str(config.get("description", "")),
        "actions": actions,
        "artifactId": artifact_id,
        "artifactType": artifact_type,
        "artifactData": artifact_data,
    }
    allowed = _allowed_actions(actions)

    def events(value: dict[str, Any], resolved_by: str) -> list[tuple[str, dict[str, Any]]]:
        payload: dict[str, Any] = {
            "nodeId": ctx.node.id,
            "action": value["action"],
            "decidedBy": str(value.get("decidedBy", resolved_by)),
            "decidedAt": str(value.get("decidedAt", now_iso())),
        }
        for key in ("comment", "feedback", "refineFeedback", "editedArtifactData"):
            if key in value:
                payload[key] = value[key]
        return [("approval.received", payload)]

    spec = SuspendSpec(
        kind="approval",
        status="waiting-approval",
        data=data,
        validate=lambda value: _normalise_approval(value, actions),
        resolution_events=events,
        resume_schema={
            "type": "object",
            "required": ["action"],
            "properties": {"action": {"type": "string", "enum": allowed}},
        },
        timeout_ms=timeout_ms,
        legacy_event=(
            "approval.requested",
            {
                "nodeId": ctx.node.id,
                "artifactId": artifact_id,
                "artifactType": artifact_type,
                "title": title,
                "actions": actions,
            },
        ),
        is_final=lambda value: value["action"] != "ask",
    )
    try:
        decision: dict[str, Any] = await ctx.suspend(spec)
    except InterruptTimeout as timeout:
        ctx.emit(
            "interrupt.resolved",
            {
                "nodeId": ctx.node.id,
                "interruptId": timeout.interrupt_id,
                "kind": "approval",
                "outcome": "rejected",
                "reason": "timeout",
                "resolvedAt": now_iso(),
                "resolvedBy": "timeout",
            },
        )
        ctx.emit("approval.received", {"nodeId": ctx.node.id, "action": "timeout", "decidedAt": now_iso()})
        raise NodeFailure(
            "approval_rejected",
            f"Approval gate {ctx.node.id!r} timed out after {timeout.timeout_ms} ms (timeouts never approve)",
            {"reason": "timeout", "timeoutMs": timeout.timeout_ms},
        ) from None
    action = decision["action"]
    if action in ("reject", "refine"):
        details = {"action": action}
        for key in ("feedback", "refineFeedback"):
            if key in decision:
                details[key] = decision[key]
        raise NodeFailure("approval_rejected", f"Approval gate {ctx.node.id!r} was rejected ({action})", details)
    return {"approval": decision}
