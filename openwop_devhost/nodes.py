"""Node types the local host can execute (``core.*`` per the conformance contract, plus ``devhost.*``).

A node handler is ``async def handler(ctx) -> outputs``; it fails by raising :class:`NodeFailure`
and waits for a human or an external system through ``ctx.suspend(SuspendSpec(...))``. Outputs are
merged into the run's ``variables`` and ``run.completed.payload.outputs``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ApiError, dumps
from .events import now_iso

if TYPE_CHECKING:
    from .engine import NodeContext

DEFAULT_QUESTIONS = [{"id": "q1", "question": "What is your favorite color?"}]
APPROVAL_ACTIONS = ("accept", "reject", "refine", "edit", "ask")


class NodeFailure(Exception):
    """A node ended in failure with an OpenWOP error ``{code, message, details?}``."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details

    def error(self) -> dict[str, Any]:
        """The error object used in ``node.failed``/``run.failed`` and the snapshot."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InterruptTimeout(Exception):
    """An interrupt's ``timeoutMs`` elapsed before anyone resolved it."""

    def __init__(self, interrupt_id: str, timeout_ms: int) -> None:
        super().__init__(f"interrupt {interrupt_id} timed out after {timeout_ms} ms")
        self.interrupt_id = interrupt_id
        self.timeout_ms = timeout_ms


def _always_final(_value: Any) -> bool:
    return True


@dataclass
class SuspendSpec:
    """What a node asks for when it suspends, and how a resume value is checked and recorded.

    ``validate`` turns the caller's ``resumeValue`` into the normalised value (raising ``ApiError``
    400/422 for bad input, which leaves the run suspended); ``resolution_events`` lists the
    node-specific events to append on resolution (e.g. ``approval.received``); ``is_final``
    says whether the value ends the wait (``ask`` on an approval does not).
    """

    kind: str
    status: str
    data: dict[str, Any]
    validate: Callable[[Any], Any]
    resolution_events: Callable[[Any, str], list[tuple[str, dict[str, Any]]]]
    resume_schema: dict[str, Any] | None = None
    timeout_ms: int | None = None
    legacy_event: tuple[str, dict[str, Any]] | None = None
    is_final: Callable[[Any], bool] = field(default=_always_final)


NodeHandler = Callable[["NodeContext"], Awaitable[dict[str, Any]]]


def _timeout_of(ctx: NodeContext, from_inputs: bool) -> int | None:
    """``timeoutMs`` from the node config (and, if ``from_inputs``, else from the run inputs)."""
    value = ctx.param("timeoutMs") if from_inputs else ctx.node.config.get("timeoutMs")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise NodeFailure(
            "invalid_node_config",
            f"Node {ctx.node.id!r} ({ctx.node.type_id}): timeoutMs must be a positive integer, got {value!r}",
        )
    return value


# ── simple nodes ─────────────────────────────────────────────────────────────


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


# ── approval gate ────────────────────────────────────────────────────────────


def _approval_actions(ctx: NodeContext) -> list[str]:
    actions = ctx.node.config.get("actions", ["accept", "reject"])
    if not isinstance(actions, list) or not actions or not all(a in APPROVAL_ACTIONS for a in actions):
        raise NodeFailure(
            "invalid_node_config",
            f"Node {ctx.node.id!r} (core.approvalGate): actions must be a non-empty subset of {list(APPROVAL_ACTIONS)}",
        )
    return [str(a) for a in actions]


def _normalise_approval(value: Any, actions: list[str]) -> dict[str, Any]:
    allowed = list(actions) + (["edit-accept"] if "edit" in actions else [])
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
    timeout_ms = _timeout_of(ctx, from_inputs=False)
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
    allowed = list(actions) + (["edit-accept"] if "edit" in actions else [])

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


# ── clarification gate ───────────────────────────────────────────────────────


def _questions(ctx: NodeContext) -> list[dict[str, Any]]:
    questions = ctx.node.config.get("questions", DEFAULT_QUESTIONS)
    if (
        not isinstance(questions, list)
        or not questions
        or not all(isinstance(q, dict) and isinstance(q.get("id"), str) and "question" in q for q in questions)
    ):
        raise NodeFailure(
            "invalid_node_config",
            f"Node {ctx.node.id!r} (core.clarificationGate): questions must be a non-empty list of {{id, question}}",
        )
    return [dict(q) for q in questions]


def _normalise_answers(value: Any, question_ids: list[str]) -> dict[str, Any]:
    hint = 'use {"answers": {"q1": "blue"}} or {"answers": [{"id": "q1", "answer": "blue"}]}'
    if not isinstance(value, dict) or "answers" not in value:
        raise ApiError(400, "validation_error", f"A clarification resumeValue needs 'answers'; {hint}.")
    raw = value["answers"]
    answers: dict[str, Any] = {}
    if isinstance(raw, dict):
        answers = dict(raw)
    elif isinstance(raw, list):
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or "answer" not in item:
                raise ApiError(
                    400, "validation_error", f"Each answer in the list form needs 'id' and 'answer'; {hint}."
                )
            answers[item["id"]] = item["answer"]
    else:
        raise ApiError(400, "validation_error", f"'answers' must be an object or a list; {hint}.")
    unknown = sorted(set(answers) - set(question_ids))
    if unknown:
        raise ApiError(
            400,
            "validation_error",
            f"Answer for unknown question {unknown[0]!r}; the questions are {question_ids}.",
            {"field": "answers", "unknownQuestion": unknown[0], "questions": question_ids},
        )
    missing = [qid for qid in question_ids if qid not in answers]
    if missing:
        raise ApiError(
            400,
            "validation_error",
            f"Question {missing[0]!r} was not answered; answer every question {question_ids}.",
            {"field": "answers", "missingQuestion": missing[0], "questions": question_ids},
        )
    return answers


async def run_clarification_gate(ctx: NodeContext) -> dict[str, Any]:
    """``core.clarificationGate``: waits (``waiting-input``) for answers to ``config.questions``."""
    questions = _questions(ctx)
    ids = [str(q["id"]) for q in questions]
    timeout_ms = _timeout_of(ctx, from_inputs=False)
    spec = SuspendSpec(
        kind="clarification",
        status="waiting-input",
        data={"questions": questions},
        validate=lambda value: _normalise_answers(value, ids),
        resolution_events=lambda answers, by: [
            ("clarification.resolved", {"nodeId": ctx.node.id, "answers": answers, "answeredBy": by})
        ],
        resume_schema={"type": "object", "required": ["answers"]},
        timeout_ms=timeout_ms,
        legacy_event=("clarification.requested", {"nodeId": ctx.node.id, "questions": questions}),
    )
    try:
        answers = await ctx.suspend(spec)
    except InterruptTimeout as timeout:
        raise NodeFailure(
            "clarification_timeout",
            f"Clarification {ctx.node.id!r} was not answered within {timeout.timeout_ms} ms",
            {"timeoutMs": timeout.timeout_ms},
        ) from None
    return {"answers": answers}


# ── external event / custom interrupt ────────────────────────────────────────


async def run_interrupt(ctx: NodeContext) -> dict[str, Any]:
    """``core.interrupt``: waits (``waiting-external``) for an external event or a custom value."""
    config = ctx.node.config
    kind = str(config.get("kind", "external-event"))
    timeout_ms = _timeout_of(ctx, from_inputs=True)
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
    try:
        value = await ctx.suspend(spec)
    except InterruptTimeout as timeout:
        raise NodeFailure(
            "interrupt_timeout",
            f"Interrupt {ctx.node.id!r} ({kind}) was not resolved within {timeout.timeout_ms} ms",
            {"timeoutMs": timeout.timeout_ms, "kind": kind},
        ) from None
    if kind == "external-event":
        return {"eventPayload": value["eventPayload"]}
    return {"resumeValue": value}


# ── devhost extras ───────────────────────────────────────────────────────────


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


NODE_TYPES: dict[str, NodeHandler] = {
    "core.noop": run_noop,
    "core.identity": run_identity,
    "core.delay": run_delay,
    "core.fail": run_fail,
    "core.approvalGate": run_approval_gate,
    "core.clarificationGate": run_clarification_gate,
    "core.interrupt": run_interrupt,
    "conformance.requiresMissing": run_requires_missing,
    "devhost.burst": run_burst,
    "devhost.artifact": run_artifact,
}
