"""One OpenWOP run as Prefect sees it: the validated request, the idempotency key derived from the Prefect
run that creates it, the create-or-reattach rule, and the result object handed back to flows.

Why the key matters: a Prefect retry (of a task, a flow, or the parent of a subflow) re-executes the code
that starts the remote run. With a key derived from the Prefect run's identity, the host answers the
repeated ``POST /v1/runs`` with the run it already started (reattach), instead of starting a duplicate.
A run that already ended ``failed``/``cancelled`` must not be reattached (the retry exists to try
again): that rule, and the chain of keys it walks, is ``openwop_core.reattach``'s.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from prefect.context import FlowRunContext, TaskRunContext
from pydantic import BaseModel, ConfigDict, Field

from openwop_core import (
    AsyncOpenwopClient,
    ErrorInfo,
    OpenwopClient,
    PendingInterrupt,
    RunCreated,
    RunSnapshot,
    WaitResult,
    current_trace_id,
)
from openwop_core.endpoints import check_id, check_json_object, check_tags
from openwop_core.reattach import Attachment, astart_or_reattach, start_or_reattach

from .exceptions import OpenwopRunFailed

__all__ = [
    "OpenwopRunResult",
    "RunRequest",
    "acreate_or_reattach",
    "create_or_reattach",
    "derive_idempotency_key",
]


@dataclass(frozen=True)
class RunRequest:
    """What to start: the workflow and everything that goes into the ``POST /v1/runs`` body.

    :meth:`build` validates up front (naming the bad argument), so a bad input fails before anything
    is sent and before an idempotency key is derived from it.
    """

    workflow_id: str
    inputs: dict[str, Any] | None = None
    tags: tuple[str, ...] | None = None
    metadata: dict[str, Any] | None = None
    configurable: dict[str, Any] | None = None
    scope_id: str | None = None

    @classmethod
    def build(
        cls,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        configurable: Mapping[str, Any] | None = None,
        scope_id: str | None = None,
    ) -> RunRequest:
        """Validate and freeze a request (raises ``InvalidArgumentError`` naming the bad value)."""
        checked_tags = check_tags(tags)
        return cls(
            workflow_id=check_id("workflow_id", workflow_id),
            inputs=check_json_object("inputs", inputs),
            tags=tuple(checked_tags) if checked_tags is not None else None,
            metadata=check_json_object("metadata", metadata),
            configurable=check_json_object("configurable", configurable),
            scope_id=scope_id,
        )

    def digest(self) -> str:
        """A stable hash of the request (same request, same digest, in any process)."""
        document = {
            "workflowId": self.workflow_id,
            "inputs": self.inputs,
            "tags": list(self.tags) if self.tags is not None else None,
            "metadata": self.metadata,
            "configurable": self.configurable,
            "scopeId": self.scope_id,
        }
        return digest_of(document)

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``runs_create`` (idempotency key excluded)."""
        return {
            "workflow_id": self.workflow_id,
            "inputs": self.inputs,
            "tags": list(self.tags) if self.tags is not None else None,
            "metadata": self.metadata,
            "configurable": self.configurable,
            "scope_id": self.scope_id,
        }


# -- idempotency keys from the Prefect run ----------------------------------------------------------


def digest_of(document: Any) -> str:
    """SHA-256 of a JSON document in canonical form (sorted keys, compact)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


_calls: OrderedDict[tuple[str, int, str], int] = OrderedDict()
_calls_lock = threading.Lock()
_MAX_TRACKED_CALLS = 10_000  # a long-lived worker forgets the oldest attempts


def prefect_identity() -> tuple[str, str, int] | None:
    """``(identity, attempt-scope, run_count)`` of the Prefect run executing this code, or None.

    Inside a task run: the task run id (stable across the task's retries). Inside a flow run: the id
    of the parent task run that tracks a subflow call (stable across the parent's retries, even when
    Prefect gives the subflow a fresh flow run), else the flow run id (stable across its retries).
    """
    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        run = task_ctx.task_run
        return str(run.id), str(run.id), run.run_count
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        flow_run = flow_ctx.flow_run
        identity = flow_run.parent_task_run_id or flow_run.id
        return str(identity), str(flow_run.id), flow_run.run_count
    return None


def derive_idempotency_key(subject: RunRequest | Mapping[str, Any], explicit: str | None = None) -> str | None:
    """The Idempotency-Key for a mutation made here: ``explicit`` if given, else one derived from the
    Prefect run identity, the request's digest (``subject``: a :class:`RunRequest` or any JSON document
    describing the operation) and how many identical requests this attempt already made (so two
    deliberate identical calls make two requests, but a retry repeats the same keys).
    Outside any Prefect run: None (the client then uses a random key, still reused for its own retries).
    """
    if explicit is not None:
        return explicit
    found = prefect_identity()
    if found is None:
        return None
    identity, scope, run_count = found
    digest = subject.digest() if isinstance(subject, RunRequest) else digest_of(subject)
    with _calls_lock:
        number = _calls.pop((scope, run_count, digest), 0) + 1
        _calls[(scope, run_count, digest)] = number
        while len(_calls) > _MAX_TRACKED_CALLS:
            _calls.popitem(last=False)
    key = f"prefect-{identity}-{digest[:24]}"
    return key if number == 1 else f"{key}-{number}"


@dataclass(frozen=True)
class StartedRun(Attachment[RunCreated]):
    """The run a create call settled on, and how: ``openwop_core``'s attachment of the create, plus logging."""

    def log(self, logger: Any, workflow_id: str, base_url: str) -> None:
        """Say what happened: runs of earlier attempts stepped over, then reattached or started (with the trace
        id of the operation, when there is one)."""
        trace_id = current_trace_id()
        trace = f" (trace {trace_id})" if trace_id else ""
        log_attachment(
            logger, self, f"Started OpenWOP run {self.run_id} (workflow {workflow_id}) on {base_url}{trace}", trace
        )


def log_attachment(logger: Any, attachment: Attachment[Any], started: str, trace: str = "") -> None:
    """Log the runs of earlier attempts stepped over, then the reattach (or ``started`` for a fresh run);
    ``trace`` ends the reattach line."""
    for skipped in attachment.skipped:
        logger.info(
            "The earlier attempt's OpenWOP run %s ended %s; starting a fresh run", skipped.run_id, skipped.status
        )
    if attachment.reattached:
        logger.info("Reattached to OpenWOP run %s (started by an earlier attempt)%s", attachment.run_id, trace)
    else:
        logger.info("%s", started)


def create_or_reattach(client: OpenwopClient, request: RunRequest, key: str | None) -> StartedRun:
    """Start ``request`` under ``key``, reattaching to a live or completed run a retry finds there."""
    attachment = start_or_reattach(
        lambda chained: client.runs_create(**request.create_kwargs(), idempotency_key=chained), client.runs_get, key
    )
    return StartedRun(**vars(attachment))


async def acreate_or_reattach(client: AsyncOpenwopClient, request: RunRequest, key: str | None) -> StartedRun:
    """Async twin of :func:`create_or_reattach` (the decisions are ``openwop_core``'s)."""
    attachment = await astart_or_reattach(
        lambda chained: client.runs_create(**request.create_kwargs(), idempotency_key=chained), client.runs_get, key
    )
    return StartedRun(**vars(attachment))


# -- results ----------------------------------------------------------------------------------------

Outcome = Literal["completed", "failed", "cancelled", "interrupted", "running", "terminal-unknown"]


class OpenwopRunResult(BaseModel):
    """Where a run stands when a wait ends: status, outputs, error, and the pending interrupt if the wait
    stopped because the run waits on someone. ``last_sequence`` is the cursor to resume a wait from."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    workflow_id: str | None = None
    status: str
    outcome: Outcome
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    interrupt: PendingInterrupt | None = None
    last_sequence: int | None = None
    failed_node_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    elapsed_seconds: float | None = None
    #: The W3C trace id of the requests that followed the run (``openwop_core.tracing``), to find them in the
    #: host's traces.
    trace_id: str | None = Field(default_factory=current_trace_id)

    @classmethod
    def from_wait(cls, result: WaitResult, workflow_id: str | None = None) -> OpenwopRunResult:
        """Build from ``openwop_core``'s ``WaitResult``."""
        return cls.from_snapshot(
            result.snapshot,
            workflow_id,
            interrupt=result.interrupt,
            last_sequence=result.last_sequence,
            failed_node_id=result.failed_node_id,
            elapsed_seconds=result.elapsed,
            trace_id=result.trace_id,
        )

    @classmethod
    def from_snapshot(cls, snapshot: RunSnapshot, workflow_id: str | None = None, **extra: Any) -> OpenwopRunResult:
        """Build from a run snapshot (``extra``: interrupt, last_sequence, failed_node_id, elapsed_seconds,
        trace_id)."""
        return cls(
            run_id=snapshot.run_id,
            workflow_id=workflow_id or snapshot.workflow_id,
            status=snapshot.status,
            outcome=_outcome_of(snapshot),
            outputs=snapshot.outputs,
            error=snapshot.error,
            started_at=snapshot.started_at,
            completed_at=snapshot.completed_at,
            **extra,
        )

    def outputs_or_raise(self) -> dict[str, Any]:
        """The outputs of a completed run; ``OpenwopRunFailed`` for a failed one; ``RuntimeError`` while it
        is still going (or waits on someone)."""
        if self.outcome in ("interrupted", "running"):
            raise RuntimeError(
                f"OpenWOP run {self.run_id} is still {self.status}; wait for it to end before reading its outputs."
            )
        self.raise_for_status()
        return self.outputs

    @property
    def duration_seconds(self) -> float | None:
        """The run's duration as the host reports it (start to end), else how long the wait took."""
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return self.elapsed_seconds

    @property
    def is_interrupted(self) -> bool:
        """True when the run waits on an interrupt (see :attr:`interrupt`)."""
        return self.outcome == "interrupted"

    def raise_for_status(self) -> OpenwopRunResult:
        """Raise :class:`OpenwopRunFailed` unless the run completed (or waits on an interrupt)."""
        if self.outcome in ("completed", "interrupted"):
            return self
        raise OpenwopRunFailed(
            self.run_id,
            self.status,
            self.error.code if self.error else None,
            self.error.message if self.error else None,
            failed_node_id=self.failed_node_id,
            workflow_id=self.workflow_id,
        )


def _outcome_of(snapshot: RunSnapshot) -> Outcome:
    if snapshot.is_waiting:
        return "interrupted"
    if not snapshot.is_terminal:
        return "running"
    return WaitResult(snapshot, None).outcome
