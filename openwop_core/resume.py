"""Builders for interrupt resume values, so callers need not remember each kind's wire shape."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from .errors import InvalidArgumentError

__all__ = ["approval", "clarification", "external_event"]


def approval(
    action: Literal["accept", "reject"] | str = "accept",
    *,
    feedback: str | None = None,
    decided_by: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An approval answer: ``{"action", "feedback"?, "decidedBy"?, "decidedAt"}`` (decidedAt = now, UTC)."""
    if not isinstance(action, str) or not action:
        raise InvalidArgumentError(f"action must be a non-empty string such as 'accept' or 'reject', got {action!r}.")
    value: dict[str, Any] = {"action": action, "decidedAt": datetime.now(timezone.utc).isoformat()}
    if feedback is not None:
        value["feedback"] = feedback
    if decided_by is not None:
        value["decidedBy"] = decided_by
    value.update(extra)
    return value


def clarification(answers: Mapping[str, Any], *, form: Literal["list", "object"] = "list") -> dict[str, Any]:
    """A clarification answer from ``{question_id: answer}``: ``{"answers": [{"id", "answer"}]}`` (the
    interrupt spec's form) or, with ``form="object"``, ``{"answers": {id: answer}}`` (the fixtures' form)."""
    if not isinstance(answers, Mapping) or not answers:
        raise InvalidArgumentError("answers must be a non-empty dict of question id -> answer.")
    if form == "object":
        return {"answers": dict(answers)}
    return {"answers": [{"id": str(k), "answer": v} for k, v in answers.items()]}


def external_event(payload: Any) -> dict[str, Any]:
    """An external-event answer: ``{"eventPayload": payload}``."""
    return {"eventPayload": payload}
