"""Devhost-only admin routes under ``/_devhost`` (API key required; not part of OpenWOP).

They let tests and demos reach what a real deployment would deliver out of band: the signed
interrupt tokens of open interrupts, and the fault switches.
"""

from __future__ import annotations

from starlette.responses import Response

from ..errors import ApiError, json_response
from ..faults import FaultConfigError, Faults
from .state import RequestContext


async def admin_interrupts(ctx: RequestContext) -> Response:
    """``GET /_devhost/runs/{runId}/interrupts``: open interrupts with their signed tokens."""
    run = ctx.run()
    interrupts = [interrupt.describe(ctx.base_url) for interrupt in run.open_interrupts.values()]
    return json_response({"runId": run.run_id, "status": run.status, "interrupts": interrupts})


def _faults_view(ctx: RequestContext) -> dict[str, object]:
    state = ctx.state.fault_state
    return {"faults": state.faults.to_dict(), "runFaults": {k: dict(v) for k, v in state.run_overrides.items()}}


async def admin_get_faults(ctx: RequestContext) -> Response:
    """``GET /_devhost/faults``: the host-wide faults (with remaining fail counts) and per-run overrides."""
    return json_response(_faults_view(ctx))


async def admin_set_faults(ctx: RequestContext) -> Response:
    """``POST /_devhost/faults``: replace the host-wide faults (keys not given reset to defaults)."""
    body = ctx.json_object(required=False)
    try:
        faults = Faults.from_dict(body)
    except FaultConfigError as exc:
        raise ApiError(400, "validation_error", f"Invalid fault configuration: {exc}") from None
    ctx.state.fault_state.set(faults)
    return json_response(_faults_view(ctx))


async def admin_set_run_faults(ctx: RequestContext) -> Response:
    """``POST /_devhost/runs/{runId}/faults``: per-run overrides over the host faults (``{}`` clears)."""
    run = ctx.run()
    body = ctx.json_object(required=False)
    try:
        ctx.state.fault_state.set_run(run.run_id, body or None)
    except FaultConfigError as exc:
        raise ApiError(400, "validation_error", f"Invalid fault configuration: {exc}") from None
    return json_response(_faults_view(ctx))
