"""The ASGI application: ``create_app`` and the single dispatcher in front of every handler.

Dispatch order per request: injected failures and trace context (middleware), route match on the
raw path, authentication and scope check, body size limit, then the handler inside the
idempotency window (mutations with ``Idempotency-Key``) with the ``latency_ms`` fault applied
before the response.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import ApiError, error_body, json_response
from ..faults import Faults
from ..workflows.catalogue import builtin_workflows
from ..workflows.loading import load_workflows_dir
from . import admin, handlers, pages
from .auth import require
from .discovery import build_discovery, discovery_etag, openapi_bytes
from .idempotency import check_key
from .middleware import FrontMiddleware
from .routing import resolve
from .sse import install_log_filter
from .state import MAX_NODE_EXECUTIONS, MAX_REQUEST_BODY_BYTES, MAX_RUN_DURATION_MS, HostState, RequestContext

logger = logging.getLogger("openwop_devhost")

DEFAULT_API_KEY = "openwop-dev-key"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _discovery(ctx: RequestContext) -> Response:
    document: dict[str, Any] = ctx.request.app.state.discovery
    return json_response(
        document, 200, {"Cache-Control": "public, max-age=300", "Capabilities-Etag": discovery_etag(document)}
    )


async def _openapi(ctx: RequestContext) -> Response:
    return Response(content=openapi_bytes(), media_type="application/json")


HANDLERS: dict[str, handlers.Handler] = {
    "discovery": _discovery,
    "openapi": _openapi,
    "get_workflow": handlers.get_workflow,
    "create_run": handlers.create_run,
    "bulk_cancel": handlers.bulk_cancel,
    "cancel_run": handlers.cancel_run,
    "pause_run": handlers.pause_run,
    "resume_run": handlers.resume_run,
    "fork_run": handlers.fork_run,
    "get_run": handlers.get_run,
    "stream_events": handlers.stream_events,
    "poll_events": handlers.poll_events,
    "resolve_by_node": handlers.resolve_by_node,
    "get_artifact": handlers.get_artifact,
    "inspect_by_token": handlers.inspect_by_token,
    "resolve_by_token": handlers.resolve_by_token,
    "register_webhook": handlers.register_webhook,
    "delete_webhook": handlers.delete_webhook,
    "admin_interrupts": admin.admin_interrupts,
    "admin_get_faults": admin.admin_get_faults,
    "admin_set_faults": admin.admin_set_faults,
    "admin_set_run_faults": admin.admin_set_run_faults,
}


async def _dispatch(request: Request) -> Response:
    state: HostState = request.app.state.devhost
    raw_path = (request.scope.get("raw_path") or request.scope["path"].encode()).decode("latin-1")
    path = raw_path.split("?", 1)[0]
    latency_ms = state.fault_state.faults.latency_ms
    delayed = False

    async def delay() -> None:
        nonlocal delayed
        if latency_ms and not delayed:
            delayed = True
            await asyncio.sleep(latency_ms / 1000.0)

    try:
        route, params = resolve(request.method, raw_path)
        if route.page and pages.prefers_html(request.headers.get("accept")):
            return await pages.run_page(request, state, request.app.state.run_pages, params["runId"])
        if route.admin:
            latency_ms = 0
        principal = None
        if not route.public:
            principal = state.keys.authenticate(request.headers.get("authorization"))
            require(principal, *route.scopes)
        body = await request.body() if route.method != "GET" else b""
        if len(body) > MAX_REQUEST_BODY_BYTES:
            raise ApiError(
                413,
                "payload_too_large",
                f"Request body of {len(body)} bytes exceeds limits.maxRequestBodyBytes ({MAX_REQUEST_BODY_BYTES}).",
                {"limit": MAX_REQUEST_BODY_BYTES},
            )
        ctx = RequestContext(
            request=request,
            state=state,
            params=params,
            principal=principal,
            body=body,
            base_url=str(request.base_url).rstrip("/"),
        )
        handler = HANDLERS[route.name]

        async def timed() -> Response:
            response = await handler(ctx)
            await delay()
            return response

        key = request.headers.get("idempotency-key")
        if route.mutating and key is not None and not route.admin:
            check_key(key)
            owner = principal.id if principal is not None else "token"
            return await state.idempotency.run((owner, f"{request.method} {path}", key), body, timed)
        return await timed()
    except ApiError as exc:
        await delay()
        return exc.response()
    except ClientDisconnect:  # the caller went away while sending its body; nobody to answer
        return Response(status_code=400)
    except Exception:
        traceparent = request.scope.get("state", {}).get("traceparent", "00-" + "0" * 32 + "-0-0")
        correlation_id = traceparent.split("-")[1]
        logger.exception("unhandled error in %s %s (correlationId %s)", request.method, path, correlation_id)
        return json_response(
            error_body(
                "internal_error",
                "The devhost failed to handle this request; see its log for the correlationId.",
                {"correlationId": correlation_id},
            ),
            500,
        )


def load_workflows(workflows_dir: str | Path | None) -> dict[str, Any]:
    """Built-in catalogue plus, if given, every ``*.json`` in ``workflows_dir`` (folder ids win)."""
    workflows = builtin_workflows()
    if workflows_dir is not None:
        workflows.update(load_workflows_dir(workflows_dir))
    return workflows


def create_app(
    api_key: str | None = None,
    *,
    api_keys: dict[str, list[str]] | None = None,
    workflows_dir: str | Path | None = None,
    keepalive_interval: float = 15.0,
    faults: Faults | None = None,
    token_ttl_seconds: float = 1800.0,
    allow_insecure_webhooks: bool = False,
    token_secret: bytes | None = None,
    run_pages: str = "public",
) -> Starlette:
    """Build the local OpenWOP v1 host as a Starlette app (serve it with any ASGI server).

    ``api_key`` defaults to ``$OPENWOP_API_KEY`` or ``openwop-dev-key``. ``api_keys`` adds keys
    restricted to the listed scopes. ``workflows_dir`` adds ``*.json`` workflow definitions to
    the built-in catalogue (raises :class:`~openwop_devhost.WorkflowLoadError`
    naming the bad file). ``run_pages`` is who may read a run's HTML page (what a browser gets at
    ``GET /v1/runs/{id}``): ``"public"`` (no API key, for a development host on loopback) or
    ``"api-key"``. The host state is available as ``app.state.devhost``.
    """
    key = api_key if api_key is not None else os.environ.get("OPENWOP_API_KEY") or DEFAULT_API_KEY
    workflows = load_workflows(workflows_dir)
    state = HostState(
        api_key=key,
        api_keys=api_keys,
        workflows=workflows,
        keepalive_interval=keepalive_interval,
        faults=faults,
        token_ttl_seconds=token_ttl_seconds,
        allow_insecure_webhooks=allow_insecure_webhooks,
        token_secret=token_secret,
    )
    install_log_filter()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await state.shutdown()

    app = Starlette(
        routes=[Route("/{path:path}", endpoint=_dispatch, methods=list(_METHODS))],
        middleware=[Middleware(FrontMiddleware, faults=state.fault_state, request_log=state.request_log)],
        lifespan=lifespan,
    )
    app.state.devhost = state
    app.state.run_pages = pages.validate_access(run_pages)
    app.state.discovery = build_discovery(
        workflows,
        max_node_executions=MAX_NODE_EXECUTIONS,
        max_run_duration_ms=MAX_RUN_DURATION_MS,
        max_request_body_bytes=MAX_REQUEST_BODY_BYTES,
    )
    return app
