"""Interrupts: a node suspends, someone resolves it (by node with the API key, or by signed token), or it ends.

Suspending opens an :class:`~.runs.Interrupt` with a signed token, moves the run to the node's
waiting status and appends ``node.suspended`` / ``interrupt.requested`` (shaped by the faults); a
run with a ``callbackUrl`` also gets the token posted there. Resolving validates the value first (a
bad one leaves the interrupt open), then appends ``interrupt.resolved``, the node kind's own events
and ``node.resumed``. A replay fork answers from the source run's recorded decisions instead.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from typing import Any

from ..errors import ApiError, dumps
from ..nodes.base import InterruptTimeout, NodeContext, SuspendSpec
from ..outbound import OutboundError, post_bytes
from .eventlog import EventLog
from .events import iso, now_iso
from .runs import Interrupt, Run
from .tokens import TokenSigner

logger = logging.getLogger("openwop_devhost")


class Interrupts:
    """Opens, resolves and closes the interrupts of one host's runs."""

    def __init__(self, log: EventLog, signer: TokenSigner) -> None:
        self.log = log
        self.signer = signer
        self._callbacks: set[asyncio.Task[None]] = set()

    async def suspend(self, ctx: NodeContext, spec: SuspendSpec) -> Any:
        """Open an interrupt for ``ctx.node`` and wait for its resolution (see :meth:`resolve`).

        Raises :class:`InterruptTimeout` when ``spec.timeout_ms`` elapses first.
        """
        run, node = ctx.run, ctx.node
        recorded_key = (node.id, ctx.visit)
        if recorded_key in run.recorded_resumes:  # replay fork: reuse the recorded decision
            value = run.recorded_resumes[recorded_key]
            normalised = spec.validate(value)
            self._append_resolved(run, node.id, f"int_{uuid.uuid4().hex[:16]}", spec.kind, value, "replay")
            for event_type, payload in spec.resolution_events(normalised, "replay"):
                self.log.append(run, event_type, payload, node.id)
            return normalised
        interrupt = self._open(run, node.id, ctx.visit, spec)
        if spec.timeout_ms is None:
            return await interrupt.future
        done, _ = await asyncio.wait({interrupt.future}, timeout=spec.timeout_ms / 1000.0)
        if done:
            return interrupt.future.result()
        interrupt.state = "timed-out"
        run.open_interrupts.pop(node.id, None)
        run.node_states[node.id]["status"] = "running"
        run.set_status("running")
        raise InterruptTimeout(interrupt.interrupt_id, spec.timeout_ms)

    def _open(self, run: Run, node_id: str, visit: int, spec: SuspendSpec) -> Interrupt:
        """Register the interrupt, enter the waiting status, announce it and post the callback."""
        interrupt_id = f"int_{uuid.uuid4().hex[:16]}"
        token, expires_at = self.signer.issue(run.run_id, node_id, interrupt_id)
        interrupt = Interrupt(
            interrupt_id=interrupt_id,
            run_id=run.run_id,
            node_id=node_id,
            kind=spec.kind,
            key=f"{run.run_id}:{node_id}:{visit}",
            spec=spec,
            requested_at=now_iso(),
            token=token,
            expires_at=expires_at,
            future=asyncio.get_running_loop().create_future(),
        )
        run.open_interrupts[node_id] = interrupt
        run.interrupts_by_id[interrupt_id] = interrupt
        run.node_states[node_id]["status"] = "suspended"
        run.set_status(spec.status)
        faults = self.log.faults.for_run(run.run_id, run.workflow_id)
        token_shape = faults.interrupt_token_shape if spec.kind == "external-event" else None
        suspended: dict[str, Any] = {
            "nodeId": node_id,
            "interruptId": interrupt_id,
            "kind": spec.kind,
            "key": interrupt.key,
        }
        if token_shape == "app-backend":
            suspended = {"interruptId": interrupt_id, "kind": spec.kind}
        elif token_shape == "reference-host":
            suspended.update(interrupt.token_fields(run.base_url))
        self.log.append(run, "node.suspended", suspended, node_id)
        if not faults.waiting_status_only and token_shape != "app-backend":
            requested: dict[str, Any] = {
                "runId": run.run_id,
                "nodeId": node_id,
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
            self.log.append(run, "interrupt.requested", requested, node_id)
            if spec.legacy_event is not None:
                legacy_type, legacy_payload = spec.legacy_event
                self.log.append(
                    run, legacy_type, {**copy.deepcopy(legacy_payload), "interruptId": interrupt_id}, node_id
                )
        if run.callback_url:
            task = asyncio.get_running_loop().create_task(self._send_callback(run, interrupt))
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)
        return interrupt

    def find(self, run: Run, node_id: str) -> Interrupt:
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
            run.set_status("running")
            self._append_resolved(run, node_id, interrupt.interrupt_id, interrupt.kind, value, resolved_by)
        for event_type, payload in spec.resolution_events(normalised, resolved_by):
            self.log.append(run, event_type, payload, node_id)
        if final:
            self.log.append(
                run,
                "node.resumed",
                {"nodeId": node_id, "interruptId": interrupt.interrupt_id, "resumeValue": copy.deepcopy(value)},
                node_id,
            )
            if not interrupt.future.done():
                interrupt.future.set_result(normalised)
        return {"runId": run.run_id, "nodeId": node_id, "interruptId": interrupt.interrupt_id, "status": run.status}

    def _append_resolved(
        self, run: Run, node_id: str, interrupt_id: str, kind: str, value: Any, resolved_by: str
    ) -> None:
        payload = {
            "nodeId": node_id,
            "interruptId": interrupt_id,
            "kind": kind,
            "resumeValue": copy.deepcopy(value),
            "resolvedAt": now_iso(),
            "resolvedBy": resolved_by,
        }
        self.log.append(run, "interrupt.resolved", payload, node_id)

    def close_all(self, run: Run) -> None:
        """Cancel every open interrupt of ``run`` (it is ending); a late resolve then answers 422."""
        for interrupt in list(run.open_interrupts.values()):
            interrupt.state = "cancelled"
            run.cancelled_interrupt_nodes.add(interrupt.node_id)
            if not interrupt.future.done():
                interrupt.future.cancel()
        run.open_interrupts.clear()

    def cancel_callbacks(self) -> list[asyncio.Task[None]]:
        """Cancel the callback posts still in flight (the host closes); returns them to be awaited."""
        tasks = list(self._callbacks)
        for task in tasks:
            task.cancel()
        return tasks

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
                "resolveUrl": interrupt.resolve_url(run.base_url),
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "openwop-devhost/callback"}
        try:
            status = await post_bytes(run.callback_url, body, headers)
            if status >= 300:
                logger.warning("interrupt callback for run %s answered HTTP %d", run.run_id, status)
        except OutboundError as exc:
            logger.warning("interrupt callback for run %s failed: %s", run.run_id, exc)
