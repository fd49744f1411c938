"""The run engine: runs, their event logs, the status machine and node execution.

Every run executes as one asyncio task on the server's event loop, walking its workflow graph one
node at a time (:mod:`.walk`). All state changes happen on that loop, so handlers can read and
mutate runs without locks. Each appended event wakes the run's subscribers through one shared
future per run (no busy-polling, no per-subscriber queues), which keeps 1,000 concurrent streams
and bursts of 100,000 events cheap.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import ApiError, dumps
from .events import (
    TERMINAL_STATUSES,
    VALUES_EVENT_TYPES,
    WAITING_STATUSES,
    iso,
    now_iso,
)
from .faults import FaultState
from .nodes import NODE_TYPES, InterruptTimeout, NodeFailure, SuspendSpec
from .outbound import OutboundError, post_bytes
from .runoptions import RunOptions
from .tokens import TokenSigner
from .walk import GraphWalk
from .workflows import NodeDef, VariableBinding, WorkflowDef

logger = logging.getLogger("openwop_devhost")

ACTIVE_STATUSES = frozenset(
    {"pending", "running", "paused", "waiting-approval", "waiting-input", "waiting-external", "cancelling"}
)


@dataclass
class Event:
    """One appended event: the canonical document, its JSON text, and the snapshot after it.

    ``snapshot_json`` is set for ``values``-tier events, so a ``values`` stream can replay the
    state as it was after each transition, not just the current state.
    """

    sequence: int
    type: str
    doc: dict[str, Any]
    json: str
    snapshot_json: str | None = None


@dataclass
class Interrupt:
    """One suspension of one node: what it asks, its token, and how it ends."""

    interrupt_id: str
    run_id: str
    node_id: str
    kind: str
    key: str
    spec: SuspendSpec
    requested_at: str
    token: str
    expires_at: datetime
    future: asyncio.Future[Any]
    state: str = "open"  # open | resolved | timed-out | cancelled

    def public(self) -> dict[str, Any]:
        """The ``GET /v1/interrupts/{token}`` shape: ``{kind, key, data, resumeSchema?, timeoutMs?}``."""
        body: dict[str, Any] = {"kind": self.kind, "key": self.key, "data": copy.deepcopy(self.spec.data)}
        if self.spec.resume_schema is not None:
            body["resumeSchema"] = copy.deepcopy(self.spec.resume_schema)
        if self.spec.timeout_ms is not None:
            body["timeoutMs"] = self.spec.timeout_ms
        return body

    def describe(self, base_url: str) -> dict[str, Any]:
        """Everything a test or the admin route needs, including the signed token."""
        body = self.public()
        body.update(
            {
                "runId": self.run_id,
                "nodeId": self.node_id,
                "interruptId": self.interrupt_id,
                "requestedAt": self.requested_at,
                "token": self.token,
                "expiresAt": iso(self.expires_at),
                "resolveUrl": f"{base_url}/v1/interrupts/{self.token}",
            }
        )
        return body


@dataclass
class Run:
    """State of one run. Mutated only on the event loop thread."""

    run_id: str
    workflow: WorkflowDef
    inputs: dict[str, Any]
    options: RunOptions
    tenant_id: str
    base_url: str
    scope_id: str | None = None
    callback_url: str | None = None
    status: str = "pending"
    started_at: str = field(default_factory=now_iso)
    started_monotonic: float = field(default_factory=time.monotonic)
    completed_at: str | None = None
    error: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    node_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_node_id: str | None = None
    open_interrupts: dict[str, Interrupt] = field(default_factory=dict)
    interrupts_by_id: dict[str, Interrupt] = field(default_factory=dict)
    cancelled_interrupt_nodes: set[str] = field(default_factory=set)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: int = 0
    visits: Counter[str] = field(default_factory=Counter)
    recorded_resumes: dict[tuple[str, int], Any] = field(default_factory=dict)
    skipped_reported: set[str] = field(default_factory=set)
    pending_failure: tuple[dict[str, Any], str] | None = None
    source_run_id: str | None = None
    forked_from: dict[str, Any] | None = None
    fork_mode: str | None = None
    cancel_reason: str | None = None
    timed_out: bool = False
    pause_pending: dict[str, Any] | None = None
    paused: bool = False
    paused_at: str | None = None
    version: int = 0
    task: asyncio.Task[None] | None = None
    timeout_handle: asyncio.TimerHandle | None = None
    walk: GraphWalk | None = None
    _waiter: asyncio.Future[None] | None = None
    _resume: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def workflow_id(self) -> str:
        """The id of the workflow this run executes."""
        return self.workflow.id

    @property
    def terminal(self) -> bool:
        """Whether the run reached completed/failed/cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def last_sequence(self) -> int:
        """Sequence of the newest event (``-1`` before the first)."""
        return len(self.events) - 1

    def changed(self) -> asyncio.Future[None]:
        """A future completed at the next append (or shutdown); shared by all current waiters."""
        if self._waiter is None or self._waiter.done():
            self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def notify(self) -> None:
        """Wake everyone waiting on :meth:`changed`."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)


def _token_fields(run: Run, interrupt: Interrupt) -> dict[str, Any]:
    """``interruptToken`` and ``callbackUrl`` as the reference hosts report a pending interrupt's token."""
    return {"interruptToken": interrupt.token, "callbackUrl": f"{run.base_url}/v1/interrupts/{interrupt.token}"}


class NodeContext:
    """What a node handler may do: read its config and the run's variables, emit, suspend, store."""

    def __init__(self, engine: Engine, run: Run, node: NodeDef, visit: int) -> None:
        self.engine = engine
        self.run = run
        self.node = node
        self.visit = visit

    def param(self, key: str, default: Any = None) -> Any:
        """``config[key]`` if set, else the node's input binding ``key`` (a literal, or the bound run variable), else
        the run variable ``key``; ``default`` when unset. Run variables start as the declared defaults overlaid
        with the run's inputs, as on the reference hosts."""
        if key in self.node.config:
            return self.node.config[key]
        if key in self.node.inputs:
            binding = self.node.inputs[key]
            if not isinstance(binding, VariableBinding):
                return binding
            return self.run.variables.get(binding.variable_name, default)
        return self.run.variables.get(key, default)

    def emit(self, event_type: str, payload: dict[str, Any]) -> Event:
        """Append a node-scoped event."""
        return self.engine.append(self.run, event_type, payload, self.node.id)

    def store_artifact(self, artifact_id: str, artifact_type: str, data: Any, announce: bool) -> None:
        """Store an artifact for ``GET /v1/runs/{runId}/artifacts/{id}``; ``announce`` emits ``artifact.created``."""
        self.run.artifacts[artifact_id] = {
            "artifactId": artifact_id,
            "artifactType": artifact_type,
            "runId": self.run.run_id,
            "nodeId": self.node.id,
            "version": 1,
            "createdAt": now_iso(),
            "data": copy.deepcopy(data),
        }
        if announce:
            self.emit(
                "artifact.created",
                {"artifactId": artifact_id, "artifactType": artifact_type, "nodeId": self.node.id, "version": 1},
            )

    async def suspend(self, spec: SuspendSpec) -> Any:
        """Suspend this node until resolved; return the normalised resume value.

        Raises :class:`InterruptTimeout` when ``spec.timeout_ms`` elapses first.
        """
        return await self.engine.suspend(self, spec)


class Engine:
    """All runs of one host, and the operations the HTTP layer performs on them."""

    def __init__(
        self,
        workflows: dict[str, WorkflowDef],
        signer: TokenSigner,
        faults: FaultState,
        *,
        max_node_executions: int = 100,
        max_run_duration_ms: int = 3_600_000,
    ) -> None:
        self.workflows = workflows
        self.signer = signer
        self.faults = faults
        self.max_node_executions = max_node_executions
        self.max_run_duration_ms = max_run_duration_ms
        self.runs: dict[str, Run] = {}
        self.listeners: list[Callable[[Run, Event], None]] = []
        self.closing = False
        self.streams_closing = False
        self.abrupt_close = False
        self._background: set[asyncio.Task[Any]] = set()

    # ── events ────────────────────────────────────────────────────────────────

    def append(self, run: Run, event_type: str, payload: dict[str, Any], node_id: str | None = None) -> Event:
        """Append one event to ``run``'s log, wake its subscribers and notify listeners (webhooks)."""
        sequence = len(run.events)
        doc: dict[str, Any] = {
            "eventId": f"evt_{run.run_id[4:]}_{sequence}",
            "runId": run.run_id,
            "type": event_type,
            "sequence": sequence,
            "timestamp": now_iso(),
            "schemaVersion": 1,
        }
        if node_id is not None:
            doc["nodeId"] = node_id
        doc["payload"] = payload
        event = Event(sequence, event_type, doc, dumps(doc))
        run.events.append(event)
        run.version += 1
        if event_type in VALUES_EVENT_TYPES:
            event.snapshot_json = dumps(self.snapshot(run))
        run.notify()
        for listener in self.listeners:
            try:
                listener(run, event)
            except Exception:  # a listener must never break a run
                logger.exception("event listener failed for %s", event_type)
        return event

    def snapshot(self, run: Run) -> dict[str, Any]:
        """The RunSnapshot of ``GET /v1/runs/{runId}`` (also the ``values``-mode frame)."""
        snap: dict[str, Any] = {
            "runId": run.run_id,
            "workflowId": run.workflow_id,
            "status": run.status,
            "startedAt": run.started_at,
            "nodeStates": {node_id: dict(state) for node_id, state in run.node_states.items()},
            "variables": dict(run.variables),
            "inputs": dict(run.inputs),
            "tags": list(run.options.tags),
            "metadata": dict(run.options.metadata),
            "configurable": dict(run.options.configurable),
            "owner": {"tenant": run.tenant_id},
            "engineVersion": "1",
            "eventLogSchemaVersion": 2,
            "lastEventSeq": run.last_sequence,
        }
        if run.current_node_id is not None:
            snap["currentNodeId"] = run.current_node_id
        if run.completed_at is not None:
            snap["completedAt"] = run.completed_at
            snap["endedAt"] = run.completed_at
        if run.error is not None:
            snap["error"] = dict(run.error)
        if run.paused and run.paused_at is not None:
            snap["pausedAt"] = run.paused_at
        if run.scope_id is not None:
            snap["scopeId"] = run.scope_id
        if run.source_run_id is not None:
            snap["sourceRunId"] = run.source_run_id
            snap["forkedFrom"] = dict(run.forked_from or {})
        if run.open_interrupts and self.faults.for_run(run.run_id, run.workflow_id).interrupt_token_shape:
            for interrupt in run.open_interrupts.values():
                if interrupt.kind == "external-event":  # the host-specific report of the token (a fault)
                    fields = {
                        "interruptId": interrupt.interrupt_id,
                        "nodeId": interrupt.node_id,
                        "kind": interrupt.kind,
                    }
                    snap["interrupt"] = {**fields, **_token_fields(run, interrupt)}
        return snap

    def _set_status(self, run: Run, status: str) -> None:
        run.status = status
        run.version += 1

    # ── lifecycle ─────────────────────────────────────────────────────────────

    def get(self, run_id: str) -> Run | None:
        """The run with this id, if any."""
        return self.runs.get(run_id)

    def active_run_for_scope(self, tenant_id: str, scope_id: str) -> Run | None:
        """A non-terminal run with the same ``(tenantId, scopeId)`` (for ``X-Dedup: enforce``)."""
        for run in self.runs.values():
            if run.scope_id == scope_id and run.tenant_id == tenant_id and not run.terminal:
                return run
        return None

    def new_run(
        self,
        workflow: WorkflowDef,
        inputs: dict[str, Any],
        options: RunOptions,
        tenant_id: str,
        base_url: str,
        scope_id: str | None,
        callback_url: str | None,
    ) -> Run:
        """Register a new run (not started yet) with fresh node states and graph walk."""
        run = Run(
            run_id=f"run_{uuid.uuid4().hex}",
            workflow=workflow,
            inputs=copy.deepcopy(inputs),
            options=options,
            tenant_id=tenant_id,
            base_url=base_url,
            scope_id=scope_id,
            callback_url=callback_url,
        )
        run.variables = copy.deepcopy(inputs)
        run.node_states = {
            node.id: {"status": "pending", "typeId": node.type_id, "executions": 0} for node in workflow.nodes
        }
        run.walk = GraphWalk(workflow)
        self.runs[run.run_id] = run
        return run

    def create_run(
        self,
        workflow: WorkflowDef,
        inputs: dict[str, Any],
        options: RunOptions,
        *,
        tenant_id: str,
        base_url: str,
        scope_id: str | None = None,
        callback_url: str | None = None,
    ) -> Run:
        """Create a run, append ``run.started`` and start executing it in the background."""
        run = self.new_run(workflow, inputs, options, tenant_id, base_url, scope_id, callback_url)
        self.start(run, announce=True)
        return run

    def start(self, run: Run, announce: bool) -> None:
        """Mark ``run`` running, optionally append ``run.started``, and launch its task (and timeout)."""
        self._set_status(run, "running")
        if announce:
            self.append(
                run,
                "run.started",
                {
                    "workflowId": run.workflow_id,
                    "inputs": copy.deepcopy(run.inputs),
                    "transport": "rest",
                    "engineVersion": "1",
                    "owner": {"tenant": run.tenant_id},
                    "tags": list(run.options.tags),
                    "metadata": dict(run.options.metadata),
                },
            )
        loop = asyncio.get_running_loop()
        run.task = loop.create_task(self._execute(run), name=f"openwop-run-{run.run_id}")
        run.task.add_done_callback(lambda task: self._on_task_done(run, task))
        timeout_ms = run.options.run_timeout_ms(self.max_run_duration_ms)
        if timeout_ms is not None:
            run.timeout_handle = loop.call_later(timeout_ms / 1000.0, self._on_run_timeout, run)

    def _on_run_timeout(self, run: Run) -> None:
        if not run.terminal and run.task is not None and not run.task.done():
            run.timed_out = True
            run.task.cancel()

    def _on_task_done(self, run: Run, task: asyncio.Task[None]) -> None:
        if run.timeout_handle is not None:
            run.timeout_handle.cancel()
        if run.terminal:
            return
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            logger.error("run %s crashed", run.run_id, exc_info=exc)
            self._finish_failed(
                run,
                {
                    "code": "internal_error",
                    "message": f"The host failed while executing the run: {type(exc).__name__}: {exc}",
                },
                run.current_node_id,
            )
            return
        self._close_interrupts(run)
        if run.current_node_id is not None:
            node_id = run.current_node_id
            run.node_states[node_id]["status"] = "cancelled"
            reason = "run-timeout" if run.timed_out else "run-cancelled"
            self.append(run, "node.cancelled", {"nodeId": node_id, "reason": reason}, node_id)
        if run.timed_out:
            limit = run.options.run_timeout_ms(self.max_run_duration_ms) or 0
            observed = int((time.monotonic() - run.started_monotonic) * 1000)
            self.append(
                run, "cap.breached", {"kind": "run-duration", "limit": limit, "observed": max(observed, limit + 1)}
            )
            self._finish_failed(
                run,
                {"code": "run_timeout", "message": f"The run exceeded its runTimeoutMs of {limit} ms"},
                run.current_node_id,
            )
            return
        self._finish_cancelled(run, run.cancel_reason or "host-shutdown")

    def _duration_ms(self, run: Run) -> int:
        return int((time.monotonic() - run.started_monotonic) * 1000)

    def _finish(self, run: Run, status: str) -> None:
        run.completed_at = now_iso()
        run.current_node_id = None
        run.paused = False
        run.pause_pending = None
        self._set_status(run, status)

    def _finish_completed(self, run: Run) -> None:
        self._finish(run, "completed")
        self.append(run, "run.completed", {"outputs": copy.deepcopy(run.outputs), "durationMs": self._duration_ms(run)})

    def _finish_failed(self, run: Run, error: dict[str, Any], failed_node_id: str | None) -> None:
        run.error = dict(error)
        self._finish(run, "failed")
        payload: dict[str, Any] = {"error": dict(error), "durationMs": self._duration_ms(run)}
        if failed_node_id is not None:
            payload["failedNodeId"] = failed_node_id
        self.append(run, "run.failed", payload)

    def _finish_cancelled(self, run: Run, reason: str) -> None:
        self._finish(run, "cancelled")
        self.append(run, "run.cancelled", {"reason": reason, "durationMs": self._duration_ms(run)})

    def _close_interrupts(self, run: Run) -> None:
        for interrupt in list(run.open_interrupts.values()):
            interrupt.state = "cancelled"
            run.cancelled_interrupt_nodes.add(interrupt.node_id)
            if not interrupt.future.done():
                interrupt.future.cancel()
        run.open_interrupts.clear()

    # ── execution ─────────────────────────────────────────────────────────────

    async def _execute(self, run: Run) -> None:
        walk = run.walk
        assert walk is not None
        if run.pending_failure is not None:  # a fork whose inherited prefix ends in an unhandled failure
            error, failed_node = run.pending_failure
            self._finish_failed(run, error, failed_node)
            return
        limit = run.options.recursion_limit(self.max_node_executions)
        while True:
            await self._checkpoint(run)
            node_id = walk.next_ready()
            if node_id is None:
                break
            node = run.workflow.node_index[node_id]
            if run.executions >= limit:
                self.append(
                    run,
                    "cap.breached",
                    {"kind": "node-executions", "limit": limit, "observed": run.executions + 1, "nodeId": node_id},
                )
                self._finish_failed(
                    run,
                    {
                        "code": "recursion_limit_exceeded",
                        "message": f"The run would execute more than {limit} nodes (recursionLimit {limit})",
                        "details": {"limit": limit, "observed": run.executions + 1},
                    },
                    node_id,
                )
                return
            if not await self._run_node(run, node, walk):
                return
        for node_id in walk.never_executed():
            if node_id in run.skipped_reported:
                continue
            run.skipped_reported.add(node_id)
            run.node_states[node_id]["status"] = "skipped"
            self.append(
                run, "node.skipped", {"nodeId": node_id, "reason": "no incoming edge fired for this node"}, node_id
            )
        self._finish_completed(run)

    async def _run_node(self, run: Run, node: NodeDef, walk: GraphWalk) -> bool:
        """Execute one node; return ``False`` when the run ended (unhandled failure)."""
        run.executions += 1
        visit = run.visits[node.id]
        run.visits[node.id] += 1
        run.current_node_id = node.id
        state = run.node_states[node.id]
        state.update({"status": "running", "startedAt": now_iso(), "executions": state.get("executions", 0) + 1})
        state.pop("completedAt", None)
        self.append(run, "node.started", {"nodeId": node.id, "typeId": node.type_id, "attempt": 0}, node.id)
        started = time.monotonic()
        handler = NODE_TYPES.get(node.type_id)
        outputs: dict[str, Any] = {}
        failure: NodeFailure | None = None
        try:
            if handler is None:
                raise NodeFailure(
                    "unknown_node_type",
                    f"Node {node.id!r} has unknown node type {node.type_id!r}; "
                    f"this host executes: {', '.join(sorted(NODE_TYPES))}",
                    {"typeId": node.type_id, "nodeId": node.id},
                )
            result = await handler(NodeContext(self, run, node, visit))
            outputs = dict(result or {})
        except NodeFailure as exc:
            failure = exc
        while run.paused:  # an ``immediate`` pause holds the node's completion events
            await self._wait_resumed(run)
        duration = int((time.monotonic() - started) * 1000)
        state["completedAt"] = now_iso()
        run.current_node_id = None
        if failure is None:
            state.update({"status": "completed", "outputs": copy.deepcopy(outputs)})
            state.pop("error", None)
            run.variables.update(copy.deepcopy(outputs))
            run.outputs.update(copy.deepcopy(outputs))
            self.append(run, "node.completed", {"nodeId": node.id, "outputs": outputs, "durationMs": duration}, node.id)
            walk.record(node.id, "success")
            return True
        error = failure.error()
        state.update({"status": "failed", "error": error})
        self.append(run, "node.failed", {"nodeId": node.id, "error": error, "attempts": 1}, node.id)
        if walk.record(node.id, "failed"):
            return True
        self._finish_failed(run, error, node.id)
        return False

    async def _checkpoint(self, run: Run) -> None:
        """Node boundary: a pending ``drain-current-node`` pause takes effect here."""
        if run.pause_pending is not None and not run.paused:
            pending = run.pause_pending
            run.pause_pending = None
            self._enter_pause(run, pending)
        while run.paused:
            await self._wait_resumed(run)

    async def _wait_resumed(self, run: Run) -> None:
        run._resume.clear()
        if run.paused:
            await run._resume.wait()

    def _enter_pause(self, run: Run, request: dict[str, Any]) -> None:
        run.paused = True
        run.paused_at = request["pausedAt"]
        self._set_status(run, "paused")
        payload = {"drainPolicy": request["drainPolicy"], "pausedAt": request["pausedAt"]}
        if request.get("reason") is not None:
            payload["reason"] = request["reason"]
        self.append(run, "run.paused", payload)

    # ── suspension ────────────────────────────────────────────────────────────

    async def suspend(self, ctx: NodeContext, spec: SuspendSpec) -> Any:
        """Open an interrupt for ``ctx.node`` and wait for its resolution (see :meth:`resolve`)."""
        run, node = ctx.run, ctx.node
        recorded_key = (node.id, ctx.visit)
        if recorded_key in run.recorded_resumes:  # replay fork: reuse the recorded decision
            value = run.recorded_resumes[recorded_key]
            normalised = spec.validate(value)
            interrupt_id = f"int_{uuid.uuid4().hex[:16]}"
            self.append(
                run,
                "interrupt.resolved",
                {
                    "nodeId": node.id,
                    "interruptId": interrupt_id,
                    "kind": spec.kind,
                    "resumeValue": value,
                    "resolvedAt": now_iso(),
                    "resolvedBy": "replay",
                },
                node.id,
            )
            for event_type, payload in spec.resolution_events(normalised, "replay"):
                self.append(run, event_type, payload, node.id)
            return normalised
        loop = asyncio.get_running_loop()
        interrupt_id = f"int_{uuid.uuid4().hex[:16]}"
        token, expires_at = self.signer.issue(run.run_id, node.id, interrupt_id)
        interrupt = Interrupt(
            interrupt_id=interrupt_id,
            run_id=run.run_id,
            node_id=node.id,
            kind=spec.kind,
            key=f"{run.run_id}:{node.id}:{ctx.visit}",
            spec=spec,
            requested_at=now_iso(),
            token=token,
            expires_at=expires_at,
            future=loop.create_future(),
        )
        run.open_interrupts[node.id] = interrupt
        run.interrupts_by_id[interrupt_id] = interrupt
        run.node_states[node.id]["status"] = "suspended"
        self._set_status(run, spec.status)
        faults = self.faults.for_run(run.run_id, run.workflow_id)
        token_shape = faults.interrupt_token_shape if spec.kind == "external-event" else None
        suspended: dict[str, Any] = {
            "nodeId": node.id,
            "interruptId": interrupt_id,
            "kind": spec.kind,
            "key": interrupt.key,
        }
        if token_shape == "app-backend":
            suspended = {"interruptId": interrupt_id, "kind": spec.kind}
        elif token_shape == "reference-host":
            suspended.update(_token_fields(run, interrupt))
        self.append(run, "node.suspended", suspended, node.id)
        if not faults.waiting_status_only and token_shape != "app-backend":
            requested: dict[str, Any] = {
                "runId": run.run_id,
                "nodeId": node.id,
                "interruptId": interrupt_id,
                "kind": spec.kind,
                "key": interrupt.key,
                "data": copy.deepcopy(spec.data),
                "requestedAt": interrupt.requested_at,
            }
            if spec.resume_schema is not None:
                requested["resumeSchema"] = copy.deepcopy(spec.resume_schema)
            if spec.timeout_ms is not None:
                requested["timeoutMs"] = spec.timeout_ms
            self.append(run, "interrupt.requested", requested, node.id)
            if spec.legacy_event is not None:
                legacy_type, legacy_payload = spec.legacy_event
                self.append(run, legacy_type, {**copy.deepcopy(legacy_payload), "interruptId": interrupt_id}, node.id)
        if run.callback_url:
            self._spawn(self._send_callback(run, interrupt))
        if spec.timeout_ms is None:
            return await interrupt.future
        done, _ = await asyncio.wait({interrupt.future}, timeout=spec.timeout_ms / 1000.0)
        if done:
            return interrupt.future.result()
        interrupt.state = "timed-out"
        run.open_interrupts.pop(node.id, None)
        run.node_states[node.id]["status"] = "running"
        self._set_status(run, "running")
        raise InterruptTimeout(interrupt_id, spec.timeout_ms)

    def find_interrupt(self, run: Run, node_id: str) -> Interrupt:
        """The open interrupt of ``node_id``, or the spec's 404/422 error."""
        interrupt = run.open_interrupts.get(node_id)
        if interrupt is not None:
            return interrupt
        if node_id in run.cancelled_interrupt_nodes and run.status in ("cancelled", "cancelling"):
            raise ApiError(
                422,
                "interrupt_cancelled",
                f"Run {run.run_id} was cancelled while node {node_id!r} was waiting; nothing to resolve.",
                {"runId": run.run_id, "nodeId": node_id},
            )
        raise ApiError(
            404,
            "interrupt_not_found",
            f"Node {node_id!r} of run {run.run_id} has no open interrupt (it never suspended or was already resolved).",
            {"runId": run.run_id, "nodeId": node_id},
        )

    def resolve(self, run: Run, interrupt: Interrupt, value: Any, resolved_by: str) -> dict[str, Any]:
        """Resolve an open interrupt with ``value`` (validated first; a bad value leaves it open)."""
        if interrupt.state == "cancelled" or run.status in ("cancelled", "cancelling"):
            raise ApiError(
                422,
                "interrupt_cancelled",
                f"Run {run.run_id} was cancelled while node {interrupt.node_id!r} was waiting.",
                {"runId": run.run_id, "nodeId": interrupt.node_id},
            )
        if interrupt.state != "open" or run.open_interrupts.get(interrupt.node_id) is not interrupt:
            raise ApiError(
                404,
                "interrupt_not_found",
                f"Interrupt {interrupt.interrupt_id} of node {interrupt.node_id!r} is no longer open "
                "(already resolved).",
                {"runId": run.run_id, "nodeId": interrupt.node_id, "interruptId": interrupt.interrupt_id},
            )
        spec = interrupt.spec
        normalised = spec.validate(value)
        final = spec.is_final(normalised)
        node_id = interrupt.node_id
        if final:
            interrupt.state = "resolved"
            del run.open_interrupts[node_id]
            run.node_states[node_id]["status"] = "running"
            self._set_status(run, "running")
            self.append(
                run,
                "interrupt.resolved",
                {
                    "nodeId": node_id,
                    "interruptId": interrupt.interrupt_id,
                    "kind": interrupt.kind,
                    "resumeValue": copy.deepcopy(value),
                    "resolvedAt": now_iso(),
                    "resolvedBy": resolved_by,
                },
                node_id,
            )
        for event_type, payload in spec.resolution_events(normalised, resolved_by):
            self.append(run, event_type, payload, node_id)
        if final:
            self.append(
                run,
                "node.resumed",
                {"nodeId": node_id, "interruptId": interrupt.interrupt_id, "resumeValue": copy.deepcopy(value)},
                node_id,
            )
            if not interrupt.future.done():
                interrupt.future.set_result(normalised)
        return {"runId": run.run_id, "nodeId": node_id, "interruptId": interrupt.interrupt_id, "status": run.status}

    async def _send_callback(self, run: Run, interrupt: Interrupt) -> None:
        assert run.callback_url is not None
        body = dumps(
            {
                "runId": run.run_id,
                "nodeId": interrupt.node_id,
                "interruptId": interrupt.interrupt_id,
                "kind": interrupt.kind,
                "token": interrupt.token,
                "expiresAt": iso(interrupt.expires_at),
                "resolveUrl": f"{run.base_url}/v1/interrupts/{interrupt.token}",
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "openwop-devhost/callback"}
        try:
            status = await post_bytes(run.callback_url, body, headers)
            if status >= 300:
                logger.warning("interrupt callback for run %s answered HTTP %d", run.run_id, status)
        except OutboundError as exc:
            logger.warning("interrupt callback for run %s failed: %s", run.run_id, exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ── operator actions ──────────────────────────────────────────────────────

    def cancel_run(self, run: Run, reason: str | None) -> dict[str, Any]:
        """Cancel a run: terminal runs answer ``alreadyTerminal``; others go through ``cancelling``."""
        if run.terminal:
            return {"runId": run.run_id, "status": run.status, "alreadyTerminal": True}
        if run.status != "cancelling":
            run.cancel_reason = reason or "cancelled-by-request"
            self._set_status(run, "cancelling")
            run.notify()
            if run.task is not None and not run.task.done():
                run.task.cancel()
        return {"runId": run.run_id, "status": run.status}

    def pause_run(self, run: Run, reason: str | None, drain_policy: str) -> dict[str, Any]:
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
            self._enter_pause(run, request)
        else:
            run.pause_pending = request
        return {"runId": run.run_id, "status": "paused", "pausedAt": request["pausedAt"]}

    def resume_run(self, run: Run, reason: str | None) -> dict[str, Any]:
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
        self._set_status(run, "running")
        self.append(run, "run.resumed", {"reason": reason} if reason else {})
        run._resume.set()
        return {"runId": run.run_id, "status": run.status, "resumedAt": now_iso()}

    # ── shutdown ──────────────────────────────────────────────────────────────

    def wake_all(self) -> None:
        """Wake every waiting stream and long-poll (they re-check ``streams_closing``)."""
        for run in self.runs.values():
            run.notify()

    def close_streams(self, abrupt: bool) -> None:
        """End every open SSE stream and long-poll now; ``abrupt`` cuts streams mid-body (an outage)."""
        self.streams_closing = True
        self.abrupt_close = abrupt
        self.wake_all()

    def reopen_streams(self) -> None:
        """Accept streams again after :meth:`close_streams` (the server was restarted)."""
        self.streams_closing = False
        self.abrupt_close = False

    async def shutdown(self) -> None:
        """Cancel every active run and background task; used when the host closes."""
        self.closing = True
        self.close_streams(abrupt=False)
        tasks = [run.task for run in self.runs.values() if run.task is not None and not run.task.done()]
        for run in self.runs.values():
            if not run.terminal:
                run.cancel_reason = "host-shutdown"
        for task in tasks:
            task.cancel()
        for task in list(self._background):
            task.cancel()
        pending = tasks + list(self._background)
        if pending:
            await asyncio.wait(pending, timeout=2.0)


__all__ = ["ACTIVE_STATUSES", "WAITING_STATUSES", "Engine", "Event", "Interrupt", "NodeContext", "Run"]
