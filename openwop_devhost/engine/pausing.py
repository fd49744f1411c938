"""Pause and resume (``:pause`` / ``:resume``): a run holds at a node boundary until resumed.

``immediate`` pauses at once (a running node finishes its work but its completion events wait);
``drain-current-node`` takes effect at the next node boundary. Both answer ``202`` right away.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from .eventlog import EventLog
from .events import now_iso
from .runs import Run


def request_pause(log: EventLog, run: Run, reason: str | None, drain_policy: str) -> dict[str, Any]:
    """Request a pause (202 semantics); ``immediate`` takes effect now, ``drain`` at the next boundary."""
    if run.paused or run.pause_pending is not None:
        existing = run.paused_at or (run.pause_pending or {}).get("pausedAt")
        return {"runId": run.run_id, "status": "paused", "pausedAt": existing, "alreadyPaused": True}
    if run.status != "running":
        raise ApiError(
            409,
            "conflict",
            f"Run {run.run_id} cannot be paused while {run.status}; only running runs can be paused.",
            {"runStatus": run.status, "runId": run.run_id},
        )
    request = {"reason": reason, "drainPolicy": drain_policy, "pausedAt": now_iso()}
    if drain_policy == "immediate":
        _enter_pause(log, run, request)
    else:
        run.pause_pending = request
    return {"runId": run.run_id, "status": "paused", "pausedAt": request["pausedAt"]}


def resume(log: EventLog, run: Run, reason: str | None) -> dict[str, Any]:
    """Resume a paused run (or withdraw a pause that has not taken effect yet)."""
    if run.pause_pending is not None and not run.paused:
        run.pause_pending = None
        return {"runId": run.run_id, "status": run.status, "resumedAt": now_iso()}
    if not run.paused or run.status != "paused":
        raise ApiError(
            409,
            "conflict",
            f"Run {run.run_id} is not paused (status {run.status}); nothing to resume.",
            {"runStatus": run.status, "runId": run.run_id},
        )
    run.paused = False
    run.paused_at = None
    run.set_status("running")
    log.append(run, "run.resumed", {"reason": reason} if reason else {})
    run._resume.set()
    return {"runId": run.run_id, "status": run.status, "resumedAt": now_iso()}


async def at_node_boundary(log: EventLog, run: Run) -> None:
    """Node boundary: a pending ``drain-current-node`` pause takes effect here; wait while paused."""
    if run.pause_pending is not None and not run.paused:
        pending = run.pause_pending
        run.pause_pending = None
        _enter_pause(log, run, pending)
    await hold_while_paused(run)


async def hold_while_paused(run: Run) -> None:
    """Return once ``run`` is not paused (at once if it is not)."""
    while run.paused:
        run._resume.clear()
        if run.paused:
            await run._resume.wait()


def _enter_pause(log: EventLog, run: Run, request: dict[str, Any]) -> None:
    run.paused = True
    run.paused_at = request["pausedAt"]
    run.set_status("paused")
    payload = {"drainPolicy": request["drainPolicy"], "pausedAt": request["pausedAt"]}
    if request.get("reason") is not None:
        payload["reason"] = request["reason"]
    log.append(run, "run.paused", payload)
