"""Event emission and the RunSnapshot: appending to a run's log, waking its readers, telling the listeners.

:class:`EventLog` is the base of the engine: everything that changes a run appends through
:meth:`EventLog.append`, which also keeps the ``values``-tier snapshot after each transition and
calls the listeners (the webhook dispatcher) without ever letting one break a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..errors import dumps
from ..faults import FaultState
from .events import VALUES_EVENT_TYPES, now_iso
from .runs import Event, Run

logger = logging.getLogger("openwop_devhost")


class EventLog:
    """Appends events to runs and builds their snapshots; the listeners hear every appended event."""

    def __init__(self, faults: FaultState) -> None:
        self.faults = faults
        self.listeners: list[Callable[[Run, Event], None]] = []

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
                    snap["interrupt"] = {**fields, **interrupt.token_fields(run.base_url)}
        return snap
