"""Per-host state shared by all handlers, and the per-request context handed to each handler."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request

from ..engine.execution import Engine
from ..engine.runs import Run
from ..engine.tokens import TokenSigner
from ..errors import ApiError
from ..faults import Faults, FaultState
from ..webhooks import WebhookRegistry
from ..workflows.model import WorkflowDef
from .auth import KeyRing, Principal
from .idempotency import IdempotencyStore
from .middleware import RequestLog

MAX_REQUEST_BODY_BYTES = 1_048_576
MAX_NODE_EXECUTIONS = 100
MAX_RUN_DURATION_MS = 3_600_000


class HostState:
    """Everything one running host owns: workflows, runs, keys, faults, webhooks, logs."""

    def __init__(
        self,
        *,
        api_key: str,
        api_keys: dict[str, list[str]] | None,
        workflows: dict[str, WorkflowDef],
        keepalive_interval: float,
        faults: Faults | None,
        token_ttl_seconds: float,
        allow_insecure_webhooks: bool,
        token_secret: bytes | None,
    ) -> None:
        if keepalive_interval <= 0:
            raise ValueError(f"keepalive_interval must be > 0 seconds, got {keepalive_interval!r}")
        self.keys = KeyRing(api_key, api_keys)
        self.workflows = workflows
        self.keepalive_interval = float(keepalive_interval)
        self.fault_state = FaultState(faults)
        self.signer = TokenSigner(token_secret, token_ttl_seconds)
        self.engine = Engine(
            workflows,
            self.signer,
            self.fault_state,
            max_node_executions=MAX_NODE_EXECUTIONS,
            max_run_duration_ms=MAX_RUN_DURATION_MS,
        )
        self.webhooks = WebhookRegistry(allow_insecure=allow_insecure_webhooks)
        self.engine.listeners.append(self.webhooks.on_event)
        self.idempotency = IdempotencyStore()
        self.request_log = RequestLog()

    async def shutdown(self) -> None:
        """Cancel runs, close streams and stop webhook delivery."""
        self.webhooks.close()
        await self.engine.shutdown()


@dataclass
class RequestContext:
    """One request after routing and authentication."""

    request: Request
    state: HostState
    params: dict[str, str]
    principal: Principal | None
    body: bytes
    base_url: str

    @property
    def engine(self) -> Engine:
        """The host's run engine."""
        return self.state.engine

    def header(self, name: str) -> str | None:
        """A request header (case-insensitive)."""
        return self.request.headers.get(name)

    def query(self, name: str) -> str | None:
        """A query parameter."""
        return self.request.query_params.get(name)

    def json(self) -> Any:
        """The parsed JSON body (``None`` when empty); ``400 validation_error`` when malformed."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise ApiError(
                400,
                "validation_error",
                f"Request body is not valid JSON{where}; send a JSON object with Content-Type: application/json.",
            ) from None

    def json_object(self, required: bool, allowed: set[str] | frozenset[str] | None = None) -> dict[str, Any]:
        """The body as a JSON object; optionally closed to ``allowed`` keys (unknown key -> 400)."""
        value = self.json()
        if value is None:
            if required:
                raise ApiError(400, "validation_error", "A JSON object request body is required.")
            return {}
        if not isinstance(value, dict):
            raise ApiError(
                400, "validation_error", f"The request body must be a JSON object, got {type(value).__name__}."
            )
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise ApiError(
                    400,
                    "validation_error",
                    f"Unknown field {unknown[0]!r} in the request body; accepted fields: {sorted(allowed)}.",
                    {"key": unknown[0], "accepted": sorted(allowed)},
                )
        return value

    def run(self) -> Run:
        """The run named by the ``runId`` path parameter, or ``404 run_not_found``."""
        run_id = self.params["runId"]
        run = self.state.engine.get(run_id)
        if run is None:
            raise ApiError(404, "run_not_found", f"No run {run_id!r} on this host.", {"runId": run_id})
        return run

    def run_url(self, run_id: str, suffix: str = "") -> str:
        """Absolute URL of a run resource on this host."""
        return f"{self.base_url}/v1/runs/{quote(run_id, safe='')}{suffix}"
