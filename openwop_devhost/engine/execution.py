"""The run engine (:class:`Engine`): all runs of one host, each one asyncio task on the server's event loop.

A run walks its workflow graph one node at a time (:mod:`.walk`), running each node's handler
(:mod:`openwop_devhost.nodes`) and recording the outcome. All state changes happen on that loop,
so handlers can read and mutate runs without locks. What a run is lives in :mod:`.runs`, event
emission and snapshots in :mod:`.eventlog`, interrupts in :mod:`.interrupts`, pause and resume in
:mod:`.pausing`, and how a run ends (including cancellation and its timeout) in :mod:`.endings`.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from typing import Any

from ..faults import FaultState
from ..nodes import NODE_TYPES
from ..nodes.base import NodeContext, NodeFailure
from ..workflows.model import NodeDef, WorkflowDef
from . import endings, pausing
from .eventlog import EventLog
from .events import now_iso
from .interrupts import Interrupts
from .runoptions import RunOptions
from .runs import Run
from .tokens import TokenSigner
from .walk import GraphWalk


class Engine(EventLog):
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
        super().__init__(faults)
        self.workflows = workflows
        self.interrupts = Interrupts(self, signer)
        self.max_node_executions = max_node_executions
        self.max_run_duration_ms = max_run_duration_ms
        self.runs: dict[str, Run] = {}
        self.streams_closing = False
        self.abrupt_close = False

    # ── runs ──────────────────────────────────────────────────────────────────

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
        *,
        tenant_id: str,
        base_url: str,
        scope_id: str | None = None,
        callback_url: str | None = None,
    ) -> Run:
        """Register a new run (not started yet: see :meth:`start`) with fresh node states and graph walk."""
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

    def start(self, run: Run, announce: bool) -> None:
        """Mark ``run`` running, optionally append ``run.started``, and launch its task (and timeout)."""
        run.set_status("running")
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
        timeout_ms = run.options.run_timeout_ms(self.max_run_duration_ms) or 0
        endings.after_task(self, self.interrupts, run, task, timeout_ms)

    # ── execution ─────────────────────────────────────────────────────────────

    async def _execute(self, run: Run) -> None:
        walk = run.walk
        assert walk is not None
        if run.pending_failure is not None:  # a fork whose inherited prefix ends in an unhandled failure
            error, failed_node = run.pending_failure
            endings.finish_failed(self, run, error, failed_node)
            return
        limit = run.options.recursion_limit(self.max_node_executions)
        while True:
            await pausing.at_node_boundary(self, run)
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
                endings.finish_failed(
                    self,
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
        endings.finish_completed(self, run)

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
        await pausing.hold_while_paused(run)  # an ``immediate`` pause holds the node's completion events
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
        endings.finish_failed(self, run, error, node.id)
        return False

    # ── operator actions ──────────────────────────────────────────────────────

    def cancel_run(self, run: Run, reason: str | None) -> dict[str, Any]:
        """Cancel a run: terminal runs answer ``alreadyTerminal``; others go through ``cancelling``."""
        if run.terminal:
            return {"runId": run.run_id, "status": run.status, "alreadyTerminal": True}
        if run.status != "cancelling":
            run.cancel_reason = reason or "cancelled-by-request"
            run.set_status("cancelling")
            run.notify()
            if run.task is not None and not run.task.done():
                run.task.cancel()
        return {"runId": run.run_id, "status": run.status}

    def pause_run(self, run: Run, reason: str | None, drain_policy: str) -> dict[str, Any]:
        """Request a pause (202 semantics); see :func:`.pausing.request_pause`."""
        return pausing.request_pause(self, run, reason, drain_policy)

    def resume_run(self, run: Run, reason: str | None) -> dict[str, Any]:
        """Resume a paused run (or withdraw a pending pause); see :func:`.pausing.resume`."""
        return pausing.resume(self, run, reason)

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
        self.close_streams(abrupt=False)
        tasks: list[asyncio.Task[Any]] = [
            run.task for run in self.runs.values() if run.task is not None and not run.task.done()
        ]
        for run in self.runs.values():
            if not run.terminal:
                run.cancel_reason = "host-shutdown"
        for task in tasks:
            task.cancel()
        pending = tasks + self.interrupts.cancel_callbacks()
        if pending:
            await asyncio.wait(pending, timeout=2.0)


__all__ = ["Engine"]
