"""The state of runs: one run, its appended events and its interrupts.

All of it is mutated only on the host's event loop thread, so no locks. Each appended event wakes
the run's subscribers through one shared future per run (no busy-polling, no per-subscriber
queues), which keeps 1,000 concurrent streams and bursts of 100,000 events cheap.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..workflows.model import WorkflowDef
from .events import TERMINAL_STATUSES, iso, now_iso
from .runoptions import RunOptions
from .walk import GraphWalk

if TYPE_CHECKING:
    from ..nodes.base import SuspendSpec


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

    def resolve_url(self, base_url: str) -> str:
        """Where a resolver without an API key sends the resume value (the signed token is the credential)."""
        return f"{base_url}/v1/interrupts/{self.token}"

    def token_fields(self, base_url: str) -> dict[str, Any]:
        """``interruptToken`` and ``callbackUrl`` as the reference hosts report a pending interrupt's token."""
        return {"interruptToken": self.token, "callbackUrl": self.resolve_url(base_url)}

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
                "resolveUrl": self.resolve_url(base_url),
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

    def set_status(self, status: str) -> None:
        """Move to ``status``; bumps ``version`` (the snapshot's ETag) like every change a reader can see."""
        self.status = status
        self.version += 1

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


__all__ = ["Event", "Interrupt", "Run"]
