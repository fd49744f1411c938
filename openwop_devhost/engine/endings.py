"""How a run ends: completed, failed (a node, the recursion cap, the run timeout, a host crash) or cancelled.

Each ending sets the terminal status and appends exactly one terminal event (``run.completed``,
``run.failed`` or ``run.cancelled``). :func:`after_task` decides the ending when a run's task
stops without having ended the run itself: it was cancelled (by request, shutdown or its
``runTimeoutMs``) or it crashed.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

from .eventlog import EventLog
from .events import now_iso
from .interrupts import Interrupts
from .runs import Run

logger = logging.getLogger("openwop_devhost")


def finish_completed(log: EventLog, run: Run) -> None:
    """End ``run`` as completed with its accumulated outputs."""
    _finish(run, "completed")
    log.append(run, "run.completed", {"outputs": copy.deepcopy(run.outputs), "durationMs": _duration_ms(run)})


def finish_failed(log: EventLog, run: Run, error: dict[str, Any], failed_node_id: str | None) -> None:
    """End ``run`` as failed with ``error`` (and the node that failed, if one did)."""
    run.error = dict(error)
    _finish(run, "failed")
    payload: dict[str, Any] = {"error": dict(error), "durationMs": _duration_ms(run)}
    if failed_node_id is not None:
        payload["failedNodeId"] = failed_node_id
    log.append(run, "run.failed", payload)


def finish_cancelled(log: EventLog, run: Run, reason: str) -> None:
    """End ``run`` as cancelled for ``reason``."""
    _finish(run, "cancelled")
    log.append(run, "run.cancelled", {"reason": reason, "durationMs": _duration_ms(run)})


def after_task(log: EventLog, interrupts: Interrupts, run: Run, task: asyncio.Task[None], timeout_ms: int) -> None:
    """End ``run`` after its task stopped early: a crash fails it, a timeout fails it, else it is cancelled.

    ``timeout_ms`` is the run's effective ``runTimeoutMs`` (reported in ``cap.breached`` when it fired).
    """
    if run.terminal:
        return
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        logger.error("run %s crashed", run.run_id, exc_info=exc)
        message = f"The host failed while executing the run: {type(exc).__name__}: {exc}"
        finish_failed(log, run, {"code": "internal_error", "message": message}, run.current_node_id)
        return
    interrupts.close_all(run)
    if run.current_node_id is not None:
        node_id = run.current_node_id
        run.node_states[node_id]["status"] = "cancelled"
        reason = "run-timeout" if run.timed_out else "run-cancelled"
        log.append(run, "node.cancelled", {"nodeId": node_id, "reason": reason}, node_id)
    if run.timed_out:
        observed = _duration_ms(run)
        log.append(
            run,
            "cap.breached",
            {"kind": "run-duration", "limit": timeout_ms, "observed": max(observed, timeout_ms + 1)},
        )
        error = {"code": "run_timeout", "message": f"The run exceeded its runTimeoutMs of {timeout_ms} ms"}
        finish_failed(log, run, error, run.current_node_id)
        return
    finish_cancelled(log, run, run.cancel_reason or "host-shutdown")


def _duration_ms(run: Run) -> int:
    return int((time.monotonic() - run.started_monotonic) * 1000)


def _finish(run: Run, status: str) -> None:
    run.completed_at = now_iso()
    run.current_node_id = None
    run.paused = False
    run.pause_pending = None
    run.set_status(status)
