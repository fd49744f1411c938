"""Event vocabulary: which event types exist, which stream mode carries which, and timestamps.

The stream-mode membership follows the v1 spec table (stream-modes.md / AsyncAPI channels): the
``updates`` tier is a curated list, ``node.started`` only reaches ``values`` and ``debug``, and
every other type (``log.appended``, ``node.resumed``, ``cap.breached``, vendor types, ...) is
``debug``-only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

TERMINAL_EVENT_TYPES = frozenset({"run.completed", "run.failed", "run.cancelled"})
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
WAITING_STATUSES = frozenset({"waiting-approval", "waiting-input", "waiting-external"})

#: Event types the ``updates`` stream mode carries (AsyncAPI ``runEventsUpdates`` channel).
UPDATES_EVENT_TYPES = frozenset(
    {
        "run.started",
        "run.completed",
        "run.failed",
        "run.cancelled",
        "run.paused",
        "run.resumed",
        "run.annotated",
        "workspace.updated",
        "node.completed",
        "node.failed",
        "node.skipped",
        "node.suspended",
        "node.dispatched",
        "approval.requested",
        "approval.received",
        "clarification.requested",
        "clarification.resolved",
        "interrupt.requested",
        "interrupt.resolved",
        "artifact.created",
        "eval.started",
        "eval.scored",
        "eval.completed",
        "deployment.promoted",
        "deployment.rolled-back",
        "deployment.canary.adjusted",
        "deployment.state.changed",
        "proposal.created",
        "proposal.activated",
        "goal.evaluated",
        "goal.closed",
        "import.applied",
    }
)

#: Event types after which ``values`` mode sends a ``state.snapshot`` frame.
VALUES_EVENT_TYPES = UPDATES_EVENT_TYPES | {"node.started"}

#: Event types the ``messages`` mode carries (this host has no AI nodes, so none are produced).
MESSAGES_EVENT_TYPES = frozenset({"ai.message.chunk", "output.chunk"})

STREAM_MODES = ("values", "updates", "messages", "debug")


def admits(mode: str, event_type: str) -> bool:
    """Whether stream ``mode`` carries events of ``event_type`` (``values`` means "triggers a snapshot")."""
    if mode == "debug":
        return True
    if mode == "updates":
        return event_type in UPDATES_EVENT_TYPES
    if mode == "values":
        return event_type in VALUES_EVENT_TYPES
    if mode == "messages":
        return event_type in MESSAGES_EVENT_TYPES
    return False


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with millisecond precision and a ``Z`` suffix, as every timestamp on the wire."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    """:func:`iso` of the current time."""
    return iso(utcnow())


def parse_iso(text: str) -> datetime:
    """Parse a timestamp produced by :func:`iso` (or any ISO-8601 string with an offset or ``Z``)."""
    value = text[:-1] + "+00:00" if text.endswith("Z") else text
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def to_legacy(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a canonical RunEventDoc the way older hosts sent it: ``seq``/``data``, no ``eventId``."""
    legacy: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "sequence":
            legacy["seq"] = value
        elif key == "payload":
            legacy["data"] = value
        elif key != "eventId":
            legacy[key] = value
    return legacy
