"""The arguments of each public client method turned into a prepared :class:`~.endpoints.Call`.

Both clients call these, so argument checking, body shape and query names live in exactly one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from . import endpoints as ep
from . import models
from .endpoints import Call, check_id, check_json_object, check_tags
from .errors import InvalidArgumentError

T = TypeVar("T")

ForkMode = Literal["replay", "branch"]
DrainPolicy = Literal["immediate", "drain-current-node"]
STREAM_MODES = ("updates", "values", "messages", "debug")
POLL_TIMEOUT_MAX = 60


def discovery_capabilities() -> Call[models.Discovery]:
    """``GET /.well-known/openwop``."""
    return ep.build(ep.DISCOVERY)


def discovery_openapi() -> Call[dict[str, Any]]:
    """``GET /v1/openapi.json``."""
    return ep.build(ep.OPENAPI)


def workflows_get(workflow_id: str) -> Call[models.WorkflowDefinition]:
    """``GET /v1/workflows/{workflowId}``."""
    return ep.build(ep.WORKFLOW_GET, path_params={"workflow_id": check_id("workflow_id", workflow_id)})


def runs_create(
    workflow_id: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    dedup: bool = False,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    configurable: Mapping[str, Any] | None = None,
    scope_id: str | None = None,
    tenant_id: str | None = None,
    callback_url: str | None = None,
) -> Call[models.RunCreated]:
    """``POST /v1/runs``; ``dedup=True`` sends ``X-Dedup: enforce`` and needs a ``scope_id``."""
    body: dict[str, Any] = {"workflowId": check_id("workflow_id", workflow_id)}
    optional = {
        "inputs": check_json_object("inputs", inputs),
        "tenantId": tenant_id,
        "scopeId": scope_id,
        "callbackUrl": callback_url,
        "configurable": check_json_object("configurable", configurable),
        "tags": check_tags(tags),
        "metadata": check_json_object("metadata", metadata),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    headers = {}
    if dedup:
        if not scope_id:
            raise InvalidArgumentError("dedup=True needs a scope_id: X-Dedup guards one active run per scope.")
        headers["X-Dedup"] = "enforce"
    return ep.build(ep.RUN_CREATE, body=body, idempotency_key=idempotency_key, headers=headers)


def runs_get(run_id: str) -> Call[models.RunSnapshot]:
    """``GET /v1/runs/{runId}``."""
    return ep.build(ep.RUN_GET, path_params={"run_id": check_id("run_id", run_id)})


def _on_run(endpoint: ep.Endpoint[T], run_id: str, body: dict[str, Any], idempotency_key: str | None) -> Call[T]:
    """A mutation of one run (cancel, pause, resume, fork): its checked id in the path, ``body`` as JSON."""
    return ep.build(
        endpoint, path_params={"run_id": check_id("run_id", run_id)}, body=body, idempotency_key=idempotency_key
    )


def runs_cancel(
    run_id: str, *, reason: str | None = None, idempotency_key: str | None = None
) -> Call[models.CancelResult]:
    """``POST /v1/runs/{runId}/cancel``."""
    return _on_run(ep.RUN_CANCEL, run_id, {"reason": reason} if reason else {}, idempotency_key)


def runs_bulk_cancel(
    run_ids: Sequence[str], *, reason: str | None = None, idempotency_key: str | None = None
) -> Call[models.BulkCancelResult]:
    """``POST /v1/runs:bulk-cancel`` for 1..100 runs."""
    if isinstance(run_ids, str) or not run_ids:
        raise InvalidArgumentError("run_ids must be a non-empty list of run ids.")
    if len(run_ids) > 100:
        raise InvalidArgumentError(f"run_ids has {len(run_ids)} ids; bulk cancel takes at most 100 per call.")
    body: dict[str, Any] = {"runIds": [check_id("run_ids[]", r) for r in run_ids]}
    if reason:
        body["reason"] = reason[:512]
    return ep.build(ep.RUN_BULK_CANCEL, body=body, idempotency_key=idempotency_key)


def runs_pause(
    run_id: str,
    *,
    reason: str | None = None,
    drain_policy: DrainPolicy | None = None,
    idempotency_key: str | None = None,
) -> Call[models.RunStateChange]:
    """``POST /v1/runs/{runId}:pause``."""
    if drain_policy is not None and drain_policy not in ("immediate", "drain-current-node"):
        raise InvalidArgumentError(f"drain_policy must be 'immediate' or 'drain-current-node', got {drain_policy!r}.")
    body = {k: v for k, v in {"reason": reason, "drainPolicy": drain_policy}.items() if v is not None}
    return _on_run(ep.RUN_PAUSE, run_id, body, idempotency_key)


def runs_resume(
    run_id: str, *, reason: str | None = None, idempotency_key: str | None = None
) -> Call[models.RunStateChange]:
    """``POST /v1/runs/{runId}:resume``."""
    return _on_run(ep.RUN_RESUME, run_id, {"reason": reason} if reason else {}, idempotency_key)


def runs_fork(
    run_id: str,
    *,
    mode: ForkMode,
    from_seq: int | None = None,
    configurable: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[models.ForkResult]:
    """``POST /v1/runs/{runId}:fork``: ``replay`` (from ``from_seq``, default 0) or ``branch`` (needs
    ``from_seq``; may overlay ``configurable``/``tags``/``metadata``)."""
    if mode not in ("replay", "branch"):
        raise InvalidArgumentError(f"mode must be 'replay' or 'branch', got {mode!r}.")
    if from_seq is not None and (isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0):
        raise InvalidArgumentError(f"from_seq must be an integer >= 0 (an event sequence), got {from_seq!r}.")
    body: dict[str, Any] = {"mode": mode}
    overlay = {
        k: v
        for k, v in {
            "configurable": check_json_object("configurable", configurable),
            "tags": check_tags(tags),
            "metadata": check_json_object("metadata", metadata),
        }.items()
        if v is not None
    }
    if mode == "branch":
        if from_seq is None:
            raise InvalidArgumentError("mode='branch' needs from_seq: the sequence to branch from.")
        if overlay:
            body["runOptionsOverlay"] = overlay
    elif overlay:
        raise InvalidArgumentError("configurable/tags/metadata overlays are only allowed with mode='branch'.")
    if from_seq is not None:
        body["fromSeq"] = from_seq
    return _on_run(ep.RUN_FORK, run_id, body, idempotency_key)


def runs_events(
    run_id: str,
    *,
    last_event_id: str | None = None,
    stream_mode: str | Sequence[str] | None = None,
    buffer_ms: int | None = None,
    read_timeout: float | None = None,
) -> Call[None]:
    """``GET /v1/runs/{runId}/events`` as an SSE request (``Accept: text/event-stream`` always)."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    query: dict[str, Any] = {}
    mode = check_stream_mode(stream_mode)
    if mode:
        query["streamMode"] = mode
    if buffer_ms is not None:
        if isinstance(buffer_ms, bool) or not isinstance(buffer_ms, int) or not 0 <= buffer_ms <= 5000:
            raise InvalidArgumentError(f"buffer_ms must be an integer from 0 to 5000, got {buffer_ms!r}.")
        query["bufferMs"] = buffer_ms
    return ep.build(
        ep.RUN_EVENTS,
        path_params={"run_id": check_id("run_id", run_id)},
        query=query,
        headers=headers,
        timeout=read_timeout,
    )


def check_stream_mode(stream_mode: str | Sequence[str] | None) -> str | None:
    """Validate a stream mode (or a list of modes) and render it as the ``streamMode`` query value."""
    if stream_mode is None:
        return None
    modes = [m.strip() for m in stream_mode.split(",")] if isinstance(stream_mode, str) else list(stream_mode)
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown or not modes:
        raise InvalidArgumentError(f"stream_mode {unknown or modes!r} is not one of {', '.join(STREAM_MODES)}.")
    if "values" in modes and len(modes) > 1:
        raise InvalidArgumentError("stream_mode 'values' cannot be combined with other modes.")
    return ",".join(modes)


def runs_poll_events(
    run_id: str, *, last_sequence: int | None = None, timeout_seconds: int | None = None
) -> Call[models.EventPage]:
    """``GET /v1/runs/{runId}/events/poll`` (long-poll up to ``timeout_seconds``, 1..60)."""
    if last_sequence is not None and (isinstance(last_sequence, bool) or not isinstance(last_sequence, int)):
        raise InvalidArgumentError(f"last_sequence must be an integer, got {last_sequence!r}.")
    if timeout_seconds is not None and not 1 <= int(timeout_seconds) <= POLL_TIMEOUT_MAX:
        raise InvalidArgumentError(f"timeout_seconds must be from 1 to 60, got {timeout_seconds!r}.")
    query = {"lastSequence": last_sequence, "timeout": timeout_seconds}
    # The HTTP read must outlast the long-poll itself (spec: timeout + 15 s).
    read_timeout = float(timeout_seconds if timeout_seconds is not None else 30) + 15.0
    return ep.build(ep.RUN_POLL, path_params={"run_id": check_id("run_id", run_id)}, query=query, timeout=read_timeout)


def interrupts_resolve_by_run(
    run_id: str, node_id: str, resume_value: Any, *, idempotency_key: str | None = None
) -> Call[models.InterruptResolution]:
    """``POST /v1/runs/{runId}/interrupts/{nodeId}`` with ``{"resumeValue": ...}``."""
    return ep.build(
        ep.INTERRUPT_RESOLVE,
        path_params={"run_id": check_id("run_id", run_id), "node_id": check_id("node_id", node_id)},
        body={"resumeValue": _resume_value(resume_value)},
        idempotency_key=idempotency_key,
    )


def interrupts_inspect_by_token(token: str) -> Call[models.InterruptInfo]:
    """``GET /v1/interrupts/{token}`` (the token is the credential: no API key is sent)."""
    return ep.build(ep.INTERRUPT_INSPECT, path_params={"token": check_id("token", token)})


def interrupts_resolve_by_token(
    token: str, resume_value: Any, *, idempotency_key: str | None = None
) -> Call[models.InterruptResolution]:
    """``POST /v1/interrupts/{token}`` with ``{"resumeValue": ...}`` (no API key is sent)."""
    return ep.build(
        ep.INTERRUPT_RESOLVE_TOKEN,
        path_params={"token": check_id("token", token)},
        body={"resumeValue": _resume_value(resume_value)},
        idempotency_key=idempotency_key,
    )


def _resume_value(value: Any) -> Any:
    checked = check_json_object("resume_value", {"v": value})
    return checked["v"] if checked else None


def artifacts_get(run_id: str, artifact_id: str) -> Call[models.Artifact]:
    """``GET /v1/runs/{runId}/artifacts/{artifactId}``."""
    return ep.build(
        ep.ARTIFACT_GET,
        path_params={
            "run_id": check_id("run_id", run_id),
            "artifact_id": check_id("artifact_id", artifact_id),
        },
    )


def webhooks_register(
    url: str,
    events: Sequence[str],
    *,
    tags: Sequence[str] | None = None,
    tenant_id: str | None = None,
    secret: str | None = None,
    idempotency_key: str | None = None,
) -> Call[models.WebhookRegistration]:
    """``POST /v1/webhooks``: subscribe ``url`` to run events of the given types."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise InvalidArgumentError(f"url must be an absolute https:// URL, got {url!r}.")
    if isinstance(events, str) or not events:
        raise InvalidArgumentError("events must be a non-empty list of event types, e.g. ['run.completed'].")
    body: dict[str, Any] = {"url": url, "events": list(events)}
    extra = {"tags": check_tags(tags), "tenantId": tenant_id, "secret": secret}
    body.update({k: v for k, v in extra.items() if v is not None})
    return ep.build(ep.WEBHOOK_REGISTER, body=body, idempotency_key=idempotency_key)


def webhooks_unregister(
    webhook_id: str, *, tenant_id: str | None = None, idempotency_key: str | None = None
) -> Call[None]:
    """``DELETE /v1/webhooks/{webhookId}``."""
    return ep.build(
        ep.WEBHOOK_UNREGISTER,
        path_params={"webhook_id": check_id("webhook_id", webhook_id)},
        query={"tenantId": tenant_id},
        idempotency_key=idempotency_key,
    )
