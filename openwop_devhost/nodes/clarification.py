"""``core.clarificationGate``: a node that waits (``waiting-input``) for answers to its questions.

Answers come as ``{"answers": {"q1": "blue"}}`` or ``{"answers": [{"id": "q1", "answer": "blue"}]}``;
every question must be answered and none may be unknown.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from .base import NodeContext, NodeFailure, SuspendSpec, timeout_of

DEFAULT_QUESTIONS = [{"id": "q1", "question": "What is your favorite color?"}]


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
        message = f"Answer for unknown question {unknown[0]!r}; the questions are {question_ids}."
        raise _answers_error(message, "unknownQuestion", unknown[0], question_ids)
    missing = [qid for qid in question_ids if qid not in answers]
    if missing:
        message = f"Question {missing[0]!r} was not answered; answer every question {question_ids}."
        raise _answers_error(message, "missingQuestion", missing[0], question_ids)
    return answers


def _answers_error(message: str, problem: str, question_id: str, question_ids: list[str]) -> ApiError:
    """``400 validation_error`` for answers that do not fit the questions (``problem`` names the question)."""
    return ApiError(
        400, "validation_error", message, {"field": "answers", problem: question_id, "questions": question_ids}
    )


async def run_clarification_gate(ctx: NodeContext) -> dict[str, Any]:
    """``core.clarificationGate``: waits (``waiting-input``) for answers to ``config.questions``."""
    questions = _questions(ctx)
    ids = [str(q["id"]) for q in questions]
    timeout_ms = timeout_of(ctx, from_inputs=False)
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
    answers = await ctx.suspend_or_fail(
        spec, "clarification_timeout", f"Clarification {ctx.node.id!r} was not answered"
    )
    return {"answers": answers}
