"""Idempotency keys that make a task's retries reattach to its run instead of starting a second one.

The key is derived from the task instance (dag id, task id, Airflow run id, map index; *not* the try
number), so every try of one task instance sends the same ``Idempotency-Key`` and the host replays the run
it already started. Whether to reattach to that run or move on to a new key is ``openwop_core``'s rule
(:mod:`openwop_core.reattach`); :func:`start_or_reattach` adapts it to the operators' ``start_run``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openwop_core.reattach import Attachment
from openwop_core.reattach import start_or_reattach as _start_or_reattach

__all__ = ["Attachment", "start_or_reattach", "task_instance_key"]

#: Namespace of the task-instance keys (a fixed, arbitrary UUID: changing it would orphan in-flight retries).
_NAMESPACE = uuid.UUID("1b0f7c44-3d0e-4c45-9a56-6f1b7d1e0a11")


def task_instance_key(context: Any, *, prefix: str = "airflow") -> str:
    """The base key of the running task instance: stable across its tries, distinct across map indexes."""
    ti = context["ti"]
    name = f"{ti.dag_id}\x1f{ti.task_id}\x1f{ti.run_id}\x1f{getattr(ti, 'map_index', -1)}"
    return f"{prefix}-{uuid.uuid5(_NAMESPACE, name)}"


@dataclass(frozen=True)
class _Seen:
    """A start answer or a run read, as the operators' callables report them."""

    run_id: str
    replayed: bool = False
    status: str = ""


def start_or_reattach(
    start: Callable[[str], tuple[str, bool]],
    status_of: Callable[[str], str],
    base_key: str,
    log: Any,
) -> Attachment[Any]:
    """Start under ``base_key`` (or a later key of its chain), reattaching as ``openwop_core`` decides, and
    log what happened.

    ``start(key)`` starts (or replays) a run and returns ``(run_id, replayed)``; ``status_of(run_id)``
    reads a run's status (a run the host no longer knows counts as gone).
    """

    def start_with(key: str | None) -> _Seen:
        return _Seen(*start(key or base_key))

    attachment = _start_or_reattach(start_with, lambda run_id: _Seen(run_id, status=status_of(run_id)), base_key)
    for skipped in attachment.skipped:
        log.info(
            "OpenWOP run %s, started by an earlier try of this task, ended %s; starting a new run.",
            skipped.run_id,
            skipped.status,
        )
    if attachment.reattached:
        log.info(
            "Reattaching to OpenWOP run %s started by an earlier try of this task (status %s).",
            attachment.run_id,
            attachment.status,
        )
    return attachment
