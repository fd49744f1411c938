"""Handlers for the OpenWOP v1 REST surface (runs, events, interrupts, artifacts, webhooks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import Response

from ..engine.events import TERMINAL_STATUSES
from ..engine.forking import fork_run as start_fork
from ..engine.runoptions import RunOptions, validate_configurable, validate_metadata, validate_tags
from ..engine.runs import Interrupt, Run
from ..engine.tokens import TokenExpired, TokenInvalid
from ..errors import ApiError, json_response, validation_error
from ..webhooks import REGISTRATION_FIELDS
from .sse import EventStreamResponse, StreamParams, parse_buffer_ms, parse_cursor, parse_stream_modes, poll_body
from .state import RequestContext

Handler = Callable[[RequestContext], Awaitable[Response]]

POLL_PAGE_SIZE = 10_000
MAX_BULK_RUN_IDS = 100
DEDUP_RETRY_AFTER_SECONDS = 5
_CREATE_FIELDS = {
    "workflowId",
    "inputs",
    "tenantId",
    "scopeId",
    "callbackUrl",
    "configurable",
    "tags",
    "metadata",
    "residency",
    "mode",
    "evalSuiteRef",
    "agentId",
}


def _optional_string(body: dict[str, Any], key: str, max_length: int = 1024) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise validation_error(f"'{key}' must be a non-empty string of at most {max_length} characters.", key=key)
    return value


async def create_run(ctx: RequestContext) -> Response:
    """``POST /v1/runs``: validate, apply ``X-Dedup``, create and start the run (201)."""
    body = ctx.json_object(required=True, allowed=_CREATE_FIELDS)
    if "mode" in body:
        if body["mode"] == "eval":
            raise ApiError(
                501,
                "capability_not_provided",
                "Eval runs (mode 'eval') are not supported by this host.",
                {"mode": "eval"},
            )
        raise validation_error("'mode' may only be 'eval'; omit it for a workflow run.", key="mode")
    workflow_id = body.get("workflowId")
    if not isinstance(workflow_id, str) or not 1 <= len(workflow_id) <= 128:
        raise validation_error("'workflowId' is required: a string of 1..128 characters.", key="workflowId")
    workflow = ctx.state.workflows.get(workflow_id)
    if workflow is None:
        raise ApiError(
            404,
            "workflow_not_found",
            f"No workflow {workflow_id!r} on this host; discovery lists the seeded fixtures.",
            {"workflowId": workflow_id},
        )
    inputs = body.get("inputs", {})
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise validation_error("'inputs' must be a JSON object.", key="inputs")
    inputs = workflow.validate_inputs(inputs)
    options = RunOptions(
        configurable=validate_configurable(body.get("configurable")),
        tags=validate_tags(body.get("tags")),
        metadata=validate_metadata(body.get("metadata")),
    )
    tenant_id = _optional_string(body, "tenantId", 256) or "default"
    scope_id = _optional_string(body, "scopeId", 1024)
    callback_url = _optional_string(body, "callbackUrl", 2048)
    if callback_url is not None:
        parts = urlsplit(callback_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise validation_error("'callbackUrl' must be an absolute http(s) URL.", key="callbackUrl")
    if "residency" in body and not isinstance(body["residency"], dict):
        raise validation_error("'residency' must be an object such as {'region': 'eu'}.", key="residency")
    dedup = ctx.header("x-dedup")
    if dedup is not None:
        if dedup.strip().lower() != "enforce":
            raise validation_error(f"X-Dedup only accepts 'enforce', got {dedup!r}.", header="X-Dedup")
        if scope_id is None:
            raise validation_error("X-Dedup: enforce needs a 'scopeId' in the body to deduplicate on.", key="scopeId")
        active = ctx.engine.active_run_for_scope(tenant_id, scope_id)
        if active is not None:
            raise ApiError(
                409,
                "run_already_active",
                f"Run {active.run_id} is still active for scopeId {scope_id!r}.",
                {"activeRunId": active.run_id, "activeHost": "cloud", "retryAfter": DEDUP_RETRY_AFTER_SECONDS},
                {"Retry-After": str(DEDUP_RETRY_AFTER_SECONDS)},
            )
    run = ctx.engine.new_run(
        workflow,
        inputs,
        options,
        tenant_id=tenant_id,
        base_url=ctx.base_url,
        scope_id=scope_id,
        callback_url=callback_url,
    )
    ctx.engine.start(run, announce=True)
    return _created(ctx, run, {"workflowId": run.workflow_id, "startedAt": run.started_at})


def _created(ctx: RequestContext, run: Run, fields: dict[str, Any]) -> Response:
    """The 201 answer to a new run (create or fork): ``runId``, ``status``, ``fields`` and, unless a fault
    omits them, ``eventsUrl``/``statusUrl``."""
    result: dict[str, Any] = {"runId": run.run_id, "status": run.status, **fields}
    if not ctx.state.fault_state.for_run(run.run_id, run.workflow_id).omit_events_url:
        result["eventsUrl"] = ctx.run_url(run.run_id, "/events")
        result["statusUrl"] = ctx.run_url(run.run_id)
    return json_response(result, 201)


async def get_run(ctx: RequestContext) -> Response:
    """``GET /v1/runs/{runId}``: the RunSnapshot, with ``ETag`` / ``If-None-Match`` -> 304 (browsers get the
    run's HTML page instead, see ``pages.py``, hence ``Vary: Accept``)."""
    run = ctx.run()
    etag = f'"{run.run_id[4:16]}-{run.version}"'
    headers = {"ETag": etag, "Vary": "Accept"}
    if ctx.header("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return json_response(ctx.engine.snapshot(run), 200, headers)


def _reason(body: dict[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 512):
        raise validation_error("'reason' must be a string of at most 512 characters.", key="reason")
    return reason


async def cancel_run(ctx: RequestContext) -> Response:
    """``POST /v1/runs/{runId}/cancel`` (also ``:cancel``): 200 ``cancelling`` or ``alreadyTerminal``."""
    run = ctx.run()
    body = ctx.json_object(required=False)
    return json_response(ctx.engine.cancel_run(run, _reason(body)))


async def bulk_cancel(ctx: RequestContext) -> Response:
    """``POST /v1/runs:bulk-cancel``: per-id results in request order, always 200 when valid."""
    body = ctx.json_object(required=True, allowed={"runIds", "reason"})
    run_ids = body.get("runIds")
    if (
        not isinstance(run_ids, list)
        or not 1 <= len(run_ids) <= MAX_BULK_RUN_IDS
        or not all(isinstance(r, str) and 1 <= len(r) <= 128 for r in run_ids)
    ):
        raise ApiError(
            400,
            "validation_error",
            f"'runIds' must be an array of 1..{MAX_BULK_RUN_IDS} run ids (strings of 1..128 characters).",
            {"key": "runIds", "maxRunIds": MAX_BULK_RUN_IDS},
        )
    reason = _reason(body)
    results: list[dict[str, Any]] = []
    for run_id in run_ids:
        run = ctx.engine.get(run_id)
        if run is None:
            results.append(
                {"runId": run_id, "ok": False, "error": {"error": "not_found", "message": f"No run {run_id!r}."}}
            )
        elif run.status == "cancelled":
            results.append({"runId": run_id, "ok": True, "status": "cancelled"})
        elif run.status in TERMINAL_STATUSES:
            results.append(
                {
                    "runId": run_id,
                    "ok": False,
                    "error": {"error": "run_terminal", "message": f"Run {run_id} already ended ({run.status})."},
                }
            )
        else:
            outcome = ctx.engine.cancel_run(run, reason)
            results.append({"runId": run_id, "ok": True, "status": outcome["status"]})
    return json_response({"results": results})


async def pause_run(ctx: RequestContext) -> Response:
    """``POST /v1/runs/{runId}:pause``: 202; ``409 conflict`` when the run cannot be paused."""
    run = ctx.run()
    body = ctx.json_object(required=False, allowed={"reason", "drainPolicy"})
    policy = body.get("drainPolicy", "drain-current-node")
    if policy not in ("immediate", "drain-current-node"):
        raise validation_error(
            f"drainPolicy must be 'immediate' or 'drain-current-node', got {policy!r}.", key="drainPolicy"
        )
    return json_response(ctx.engine.pause_run(run, _reason(body), policy), 202)


async def resume_run(ctx: RequestContext) -> Response:
    """``POST /v1/runs/{runId}:resume``: 202; ``409 conflict`` when the run is not paused."""
    run = ctx.run()
    body = ctx.json_object(required=False, allowed={"reason"})
    return json_response(ctx.engine.resume_run(run, _reason(body)), 202)


async def fork_run(ctx: RequestContext) -> Response:
    """``POST /v1/runs/{runId}:fork``: replay or branch from ``fromSeq`` into a new run (201)."""
    source = ctx.run()
    body = ctx.json_object(required=True, allowed={"mode", "fromSeq", "runOptionsOverlay"})
    mode = body.get("mode")
    if mode not in ("replay", "branch"):
        raise validation_error(f"'mode' must be 'replay' or 'branch', got {mode!r}.", key="mode")
    from_seq = body.get("fromSeq")
    if from_seq is not None and (isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0):
        raise validation_error(f"'fromSeq' must be an integer >= 0, got {from_seq!r}.", key="fromSeq")
    if mode == "branch" and from_seq is None:
        raise validation_error("'fromSeq' is required for mode 'branch' (the branch point).", key="fromSeq")
    overlay = body.get("runOptionsOverlay")
    if mode == "replay" and overlay not in (None, {}):
        raise validation_error("'runOptionsOverlay' is only allowed with mode 'branch'.", key="runOptionsOverlay")
    options = RunOptions(
        configurable=dict(source.options.configurable),
        tags=list(source.options.tags),
        metadata=dict(source.options.metadata),
    )
    if overlay:
        if not isinstance(overlay, dict):
            raise validation_error("'runOptionsOverlay' must be an object.", key="runOptionsOverlay")
        unknown = sorted(set(overlay) - {"configurable", "tags", "metadata"})
        if unknown:
            raise validation_error(
                f"Unknown runOptionsOverlay field {unknown[0]!r}; accepted: configurable, tags, metadata.",
                key=f"runOptionsOverlay.{unknown[0]}",
            )
        if "configurable" in overlay:
            options.configurable.update(
                validate_configurable(overlay["configurable"], "runOptionsOverlay.configurable")
            )
        if "tags" in overlay:
            options.tags = validate_tags(overlay["tags"], "runOptionsOverlay.tags")
        if "metadata" in overlay:
            options.metadata.update(validate_metadata(overlay["metadata"], "runOptionsOverlay.metadata"))
    run = start_fork(ctx.engine, source, str(mode), from_seq or 0, options, ctx.base_url)
    return _created(ctx, run, {"sourceRunId": source.run_id, "fromSeq": from_seq or 0, "mode": mode})


async def stream_events(ctx: RequestContext) -> Response:
    """``GET /v1/runs/{runId}/events``: SSE (or, without ``Accept: text/event-stream`` and query, poll JSON)."""
    run = ctx.run()
    faults = ctx.state.fault_state.for_run(run.run_id, run.workflow_id)
    if faults.sse_unavailable:
        raise ApiError(404, "not_found", f"No route for GET {ctx.request.url.path}.")
    cursor = parse_cursor(ctx.header("last-event-id"), "Last-Event-ID")
    accept = ctx.header("accept") or ""
    if "text/event-stream" not in accept and not ctx.request.url.query:
        return json_response(
            poll_body(run, -1 if cursor is None else cursor, faults.legacy_event_fields, POLL_PAGE_SIZE)
        )
    modes = parse_stream_modes(ctx.query("streamMode"))
    buffer_ms = parse_buffer_ms(ctx.query("bufferMs"))
    if ctx.engine.streams_closing:
        raise ApiError(503, "service_unavailable", "The host is shutting down; retry shortly.", {"retryAfter": 1})
    params = StreamParams(
        modes=modes, buffer_ms=buffer_ms, cursor=-1 if cursor is None else cursor, resumed=cursor is not None
    )
    return EventStreamResponse(ctx.engine, run, params, faults, ctx.state.fault_state, ctx.state.keepalive_interval)


async def poll_events(ctx: RequestContext) -> Response:
    """``GET /v1/runs/{runId}/events/poll``: events after ``lastSequence``/``since``, long-polling up to ``timeout``."""
    run = ctx.run()
    cursor = parse_cursor(ctx.query("lastSequence"), "lastSequence")
    if cursor is None:
        cursor = parse_cursor(ctx.query("since"), "since")
    cursor = -1 if cursor is None else cursor
    raw_timeout = ctx.query("timeout")
    timeout = 30
    if raw_timeout is not None:
        try:
            timeout = int(raw_timeout)
        except ValueError:
            raise validation_error(
                f"timeout must be an integer 1..60 (seconds), got {raw_timeout!r}.", param="timeout"
            ) from None
        if not 1 <= timeout <= 60:
            raise ApiError(
                400,
                "validation_error",
                f"timeout must be 1..60 seconds, got {timeout}.",
                {"param": "timeout", "min": 1, "max": 60},
            )
    deadline = time.monotonic() + timeout
    engine = ctx.engine
    while run.last_sequence <= cursor and not run.terminal and not engine.streams_closing:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await asyncio.wait({run.changed()}, timeout=remaining)
    legacy = ctx.state.fault_state.for_run(run.run_id, run.workflow_id).legacy_event_fields
    return json_response(poll_body(run, cursor, legacy, POLL_PAGE_SIZE))


def _resume_value(ctx: RequestContext) -> Any:
    body = ctx.json_object(required=True, allowed={"resumeValue"})
    if "resumeValue" not in body:
        raise validation_error('The body must be {"resumeValue": ...}.', key="resumeValue")
    return body["resumeValue"]


async def resolve_by_node(ctx: RequestContext) -> Response:
    """``POST /v1/runs/{runId}/interrupts/{nodeId}``: resolve the node's open interrupt (200)."""
    run = ctx.run()
    value = _resume_value(ctx)
    interrupt = ctx.engine.interrupts.find(run, ctx.params["nodeId"])
    assert ctx.principal is not None
    return json_response(ctx.engine.interrupts.resolve(run, interrupt, value, ctx.principal.id))


def _interrupt_for_token(ctx: RequestContext) -> tuple[Run, Interrupt]:
    try:
        claims = ctx.state.signer.verify(ctx.params["token"])
    except TokenExpired as exc:
        raise ApiError(
            410,
            "interrupt_expired",
            f"This interrupt token expired at {exc}; ask for a new one.",
            {"expiresAt": str(exc)},
        ) from None
    except TokenInvalid as exc:
        raise ApiError(401, "interrupt_token_invalid", f"The interrupt token is not valid: {exc}.") from None
    run = ctx.engine.get(claims.run_id)
    interrupt = run.interrupts_by_id.get(claims.interrupt_id) if run is not None else None
    if run is None or interrupt is None:
        raise ApiError(404, "interrupt_not_found", "The interrupt of this token does not exist on this host.")
    if interrupt.state == "cancelled":
        raise ApiError(422, "interrupt_cancelled", f"Run {run.run_id} was cancelled while this interrupt was pending.")
    if interrupt.state != "open":
        raise ApiError(
            404,
            "interrupt_not_found",
            "The interrupt of this token was already resolved.",
            {"interruptId": interrupt.interrupt_id},
        )
    return run, interrupt


async def inspect_by_token(ctx: RequestContext) -> Response:
    """``GET /v1/interrupts/{token}``: ``{kind, key, data, resumeSchema?, timeoutMs?}``."""
    _run, interrupt = _interrupt_for_token(ctx)
    return json_response(interrupt.public())


async def resolve_by_token(ctx: RequestContext) -> Response:
    """``POST /v1/interrupts/{token}``: resolve with ``{"resumeValue": ...}`` and no API key."""
    run, interrupt = _interrupt_for_token(ctx)
    value = _resume_value(ctx)
    return json_response(ctx.engine.interrupts.resolve(run, interrupt, value, "token"))


async def get_artifact(ctx: RequestContext) -> Response:
    """``GET /v1/runs/{runId}/artifacts/{artifactId}``."""
    run = ctx.run()
    artifact_id = ctx.params["artifactId"]
    artifact = run.artifacts.get(artifact_id)
    if artifact is None:
        raise ApiError(
            404, "artifact_not_found", f"Run {run.run_id} has no artifact {artifact_id!r}.", {"artifactId": artifact_id}
        )
    return json_response(artifact)


async def get_workflow(ctx: RequestContext) -> Response:
    """``GET /v1/workflows/{workflowId}``: the WorkflowDefinition document."""
    workflow_id = ctx.params["workflowId"]
    workflow = ctx.state.workflows.get(workflow_id)
    if workflow is None:
        raise ApiError(
            404, "workflow_not_found", f"No workflow {workflow_id!r} on this host.", {"workflowId": workflow_id}
        )
    return json_response(workflow.document)


async def register_webhook(ctx: RequestContext) -> Response:
    """``POST /v1/webhooks``: 201 ``{webhookId, secret, secretFingerprint}``."""
    body = ctx.json_object(required=True, allowed=REGISTRATION_FIELDS)
    return json_response(ctx.state.webhooks.register(body, "default"), 201)


async def delete_webhook(ctx: RequestContext) -> Response:
    """``DELETE /v1/webhooks/{webhookId}``: 204."""
    ctx.state.webhooks.unregister(ctx.params["webhookId"])
    return Response(status_code=204)
