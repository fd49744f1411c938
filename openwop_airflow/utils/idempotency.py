"""Idempotency keys that make a task's retries reattach to its run instead of starting a second one.

The key is derived from the task instance (dag id, task id, Airflow run id, map index; *not* the try
number), so every try of one task instance sends the same ``Idempotency-Key`` and the host replays the run
it already started. That run may have ended badly, though, and a retry must then start afresh: the
*generation* walk below follows ``key``, ``key:retry-1``, ``key:retry-2``... and stops at the first key
that starts a new run, or whose run is still going or completed (reattach). Only runs that ended
``failed``, ``cancelled`` (or in an unknown terminal status) move on to the next generation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openwop_core import NotFoundError, RunStatus

#: Namespace of the task-instance keys (a fixed, arbitrary UUID: changing it would orphan in-flight retries).
_NAMESPACE = uuid.UUID("1b0f7c44-3d0e-4c45-9a56-6f1b7d1e0a11")
#: A task would need more retries than this to exhaust it; it only guards against a runaway loop.
MAX_GENERATIONS = 1000


def task_instance_key(context: Any, *, prefix: str = "airflow") -> str:
    """The base key of the running task instance: stable across its tries, distinct across map indexes."""
    ti = context["ti"]
    name = f"{ti.dag_id}\x1f{ti.task_id}\x1f{ti.run_id}\x1f{getattr(ti, 'map_index', -1)}"
    return f"{prefix}-{uuid.uuid5(_NAMESPACE, name)}"


def generation_key(base_key: str, generation: int) -> str:
    """The key of one generation: the base key itself, then ``<base>:retry-<n>``."""
    return base_key if generation == 0 else f"{base_key}:retry-{generation}"


@dataclass(frozen=True)
class Attachment:
    """Which run a task instance follows: a fresh one, or one an earlier try started (``reattached``)."""

    run_id: str
    idempotency_key: str
    generation: int
    reattached: bool
    status: str | None = None


def start_or_reattach(
    start: Callable[[str], tuple[str, bool]],
    status_of: Callable[[str], str],
    base_key: str,
    log: Any,
) -> Attachment:
    """Walk the generations of ``base_key``.

    ``start(key)`` starts (or replays) a run and returns ``(run_id, replayed)``; ``status_of(run_id)``
    reads a run's status (a run the host no longer knows counts as gone).
    """
    for generation in range(MAX_GENERATIONS):
        key = generation_key(base_key, generation)
        run_id, replayed = start(key)
        if not replayed:
            return Attachment(run_id, key, generation, reattached=False)
        try:
            status = status_of(run_id)
        except NotFoundError:
            status = "gone"
        if RunStatus.is_terminal(status) and not RunStatus.is_success(status):
            log.info(
                "OpenWOP run %s, started by an earlier try of this task, ended %s; starting a new run.", run_id, status
            )
            continue
        log.info("Reattaching to OpenWOP run %s started by an earlier try of this task (status %s).", run_id, status)
        return Attachment(run_id, key, generation, reattached=True, status=status)
    raise RuntimeError(f"Gave up after {MAX_GENERATIONS} generations of idempotency key {base_key}.")
