"""The one "wait for a run" algorithm, free of I/O, shared by both clients, the Airflow trigger and the
Prefect task.

:class:`RunTracker` folds events into what a waiter needs (open interrupts, node progress, the terminal
event). :class:`WaitPlan` decides, from the first snapshot and each event, whether the wait is over. The
clients drive it: read the snapshot, follow events from the cursor, read the final snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import OpenwopError, RunFailedError
from .models import (
    KIND_BY_WAITING_STATUS,
    PendingInterrupt,
    RunEvent,
    RunSnapshot,
    RunStatus,
    SnapshotInterrupt,
    interrupt_token,
)
from .retry import is_retryable_error
from .tracing import current_trace_id

__all__ = ["STALL_CHECK_INTERVAL", "ProgressLines", "RunTracker", "WaitPlan", "WaitResult", "describe_event"]

#: While the event stream cannot be (re)opened, a waiter reads the run's snapshot at least this often
#: (seconds), so a run that finished meanwhile is noticed within a few seconds whatever the stream does.
STALL_CHECK_INTERVAL = 2.0

WaitOutcome = Literal["completed", "failed", "cancelled", "interrupted", "terminal-unknown"]

_REQUEST_TYPES = frozenset({"interrupt.requested", "approval.requested", "clarification.requested"})
_SUSPEND_TYPES = _REQUEST_TYPES | {"node.suspended"}
_RESOLVE_TYPES = frozenset(
    {
        "interrupt.resolved",
        "approval.received",
        "approval.granted",
        "approval.rejected",
        "clarification.resolved",
        "node.resumed",
        "node.completed",
        "node.failed",
        "node.cancelled",
    }
)


class RunTracker:
    """Folds a run's events into its open interrupts and the terminal event, keyed per node."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.open: dict[str, PendingInterrupt] = {}
        self.terminal: RunEvent | None = None
        self.last_sequence: int | None = None
        self.events_seen = 0
        self.failed_node_id: str | None = None

    def observe(self, event: RunEvent) -> None:
        """Fold one event in (events arrive once, in order)."""
        self.events_seen += 1
        self.last_sequence = event.sequence
        payload = event.payload_dict
        node_id = event.node_id or _text(payload.get("nodeId"))
        if event.type in _REQUEST_TYPES or event.type == "node.suspended":
            if node_id:
                self._merge_request(event, node_id, payload)
        elif event.type in _RESOLVE_TYPES and node_id:
            pending = self.open.get(node_id)
            interrupt_id = _text(payload.get("interruptId"))
            if pending and (interrupt_id is None or pending.interrupt_id in (None, interrupt_id)):
                del self.open[node_id]
            if event.type == "node.failed":
                self.failed_node_id = node_id
        elif event.is_terminal:
            self.terminal = event
            self.open.clear()

    def _merge_request(self, event: RunEvent, node_id: str, payload: dict[str, Any]) -> None:
        interrupt_id = _text(payload.get("interruptId"))
        current = self.open.get(node_id)
        if current is not None and interrupt_id and current.interrupt_id not in (None, interrupt_id):
            current = None  # a new suspension of the same node (loops): start afresh
        fields: dict[str, Any] = current.model_dump() if current else {"run_id": self.run_id, "node_id": node_id}
        fields["sequence"] = fields.get("sequence") or event.sequence
        if interrupt_id:
            fields["interrupt_id"] = interrupt_id
        kind = _text(payload.get("kind"))
        if event.type == "approval.requested":
            kind = kind or "approval"
        elif event.type == "clarification.requested":
            kind = kind or "clarification"
        if kind and (event.type != "node.suspended" or not current):
            fields["kind"] = kind
        data = payload.get("data")
        if isinstance(data, dict):
            fields["data"] = {**fields.get("data", {}), **data}
        elif event.type in ("approval.requested", "clarification.requested"):
            legacy = {k: v for k, v in payload.items() if k not in ("nodeId", "interruptId", "runId")}
            fields["data"] = {**legacy, **fields.get("data", {})}
        for source, target in (
            ("key", "key"),
            ("resumeSchema", "resume_schema"),
            ("timeoutMs", "timeout_ms"),
            ("requestedAt", "requested_at"),
        ):
            if payload.get(source) is not None:
                fields[target] = payload[source]
        token = interrupt_token(payload)
        if token is not None:
            fields["token"] = token
        self.open[node_id] = PendingInterrupt.model_validate(fields)

    def pending_interrupt(self, snapshot: RunSnapshot | None = None) -> PendingInterrupt | None:
        """The interrupt the run waits on now: the snapshot's ``currentNodeId`` if known, else the most
        recent open one; built from the snapshot alone when a host emitted no interrupt events."""
        if snapshot is not None and not snapshot.is_waiting:
            return None
        node_id = snapshot.current_node_id if snapshot is not None else None
        pending = self.open.get(node_id) if node_id else None
        if pending is None and self.open:
            pending = max(self.open.values(), key=lambda p: p.sequence or -1)
        if pending is None and snapshot is not None and node_id:
            pending = PendingInterrupt(run_id=self.run_id, node_id=node_id)
        if snapshot is not None and snapshot.interrupt is not None:
            pending = _with_snapshot_interrupt(self.run_id, pending, snapshot.interrupt)
        if pending is not None and snapshot is not None and pending.kind == "custom":
            kind = KIND_BY_WAITING_STATUS.get(snapshot.status)
            if kind:
                pending = pending.model_copy(update={"kind": kind})
        return pending


@dataclass
class WaitResult:
    """How a wait ended: the final snapshot, the last event sequence seen (the cursor to resume from),
    and the pending interrupt when the wait stopped because the run waits on someone."""

    snapshot: RunSnapshot
    last_sequence: int | None
    interrupt: PendingInterrupt | None = None
    events_seen: int = 0
    elapsed: float = 0.0
    failed_node_id: str | None = None
    #: The trace of the wait's requests (see ``openwop_core.tracing``), to find the run in the host's traces.
    trace_id: str | None = field(default_factory=current_trace_id)

    @property
    def run_id(self) -> str:
        """The run waited for."""
        return self.snapshot.run_id

    @property
    def status(self) -> str:
        """The run's status at the end of the wait."""
        return self.snapshot.status

    @property
    def outcome(self) -> WaitOutcome:
        """``completed``/``failed``/``cancelled``, ``interrupted`` (waiting on someone), or
        ``terminal-unknown`` for a terminal status this client does not know."""
        status = self.snapshot.status
        if status in ("completed", "failed", "cancelled"):
            return status  # type: ignore[return-value]
        if not RunStatus.is_terminal(status):
            return "interrupted"
        return "terminal-unknown"

    @property
    def outputs(self) -> dict[str, Any]:
        """The run's outputs (see :attr:`RunSnapshot.outputs`)."""
        return self.snapshot.outputs

    def raise_for_status(self) -> WaitResult:
        """Raise :class:`RunFailedError` unless the run completed (or stopped on an interrupt)."""
        if self.outcome in ("completed", "interrupted"):
            return self
        error = self.snapshot.error
        failure = RunFailedError(
            self.run_id,
            self.snapshot.status,
            error.code if error else None,
            error.message if error else None,
            failed_node_id=self.failed_node_id,
        )
        if self.outcome == "terminal-unknown":
            failure.hint = (
                f"{self.snapshot.status!r} is a status this client does not know; it is treated as the end of the "
                "run (not a success). Check the run on the host."
            )
        raise failure


@dataclass
class WaitPlan:
    """The decisions of one wait; the client supplies snapshots and events."""

    run_id: str
    timeout: float | None = None
    stop_on_interrupt: bool = False
    last_sequence: int | None = None
    on_event: Callable[[RunEvent], None] | None = None
    started: float = field(default_factory=time.monotonic)
    stall_check: float = STALL_CHECK_INTERVAL
    tracker: RunTracker = field(init=False)
    finished: bool = field(default=False, init=False)
    needs_catch_up: bool = field(default=False, init=False)
    stalled: bool = field(default=False, init=False)
    over_at_last_check: bool = field(default=False, init=False)
    checked_at: float = field(default=0.0, init=False)
    answered_at: float = field(default_factory=time.time, init=False)
    failing: bool = field(default=False, init=False)
    #: The stream was given up for reconnecting too late: read the missed events without waiting for its
    #: backoff (a host's ``Retry-After`` is still waited for, see ``EventStreamState.catch_up_wait``).
    catch_up_now: bool = field(default=False, init=False)
    last_error: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tracker = RunTracker(self.run_id)
        self.tracker.last_sequence = self.last_sequence

    @property
    def deadline(self) -> float | None:
        """Monotonic time at which the wait gives up (None: wait forever)."""
        return None if self.timeout is None else self.started + self.timeout

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), None without a timeout."""
        deadline = self.deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def expired(self) -> bool:
        """True once the deadline has passed."""
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def on_snapshot(self, snapshot: RunSnapshot) -> bool:
        """Check a snapshot (first, or after a silent stretch); True when the wait is already over.
        With an ``on_event`` callback a finished run's remaining events are still read, so the caller
        sees them (the host replays the backlog and closes at once)."""
        self._answered()
        if snapshot.is_terminal and (self.on_event is None or self.tracker.terminal is not None):
            self.finished = True
        elif self.stop_on_interrupt and snapshot.is_waiting and self._knows_interrupt():
            self.finished = True
        return self.finished

    def stall_check_due(self) -> bool:
        """During a reconnect's backoff: True when the snapshot was last read ``stall_check`` seconds ago
        or more (the client then reads it and calls :meth:`on_stall_snapshot`; it also reads it once right
        after each failed connection)."""
        return time.monotonic() - self.checked_at >= self.stall_check

    def on_stall_snapshot(self, snapshot: RunSnapshot, reconnect_at: float | None = None) -> bool:
        """A snapshot read while the stream was stalled; True when the wait is over. The events the stream
        could not deliver are then read once from the poll endpoint, best effort. With an ``on_event``
        callback the stream first gets one more chance (until the next check, and as long as it delivers
        events) to deliver them itself, in its stream mode: after a mere dropped connection it reconnects
        at once and does. Not when its next reconnect (``reconnect_at``, monotonic) comes only after that
        check (a stream refused again and again, its backoff grown): it could not deliver them, and waiting
        would only notice the end one check later; the events are then read from the poll endpoint at once
        (after what is left of a ``Retry-After`` the host sent, or not at all when that is longer than a check)."""
        self._answered()
        self.stalled = True
        over = snapshot.is_terminal or (self.stop_on_interrupt and snapshot.is_waiting)
        stream_too_late = reconnect_at is not None and reconnect_at - self.checked_at >= self.stall_check
        if over and (self.on_event is None or self.over_at_last_check or stream_too_late):
            self.finished = True
            self.needs_catch_up = True
            self.catch_up_now = self.on_event is not None and stream_too_late
        self.over_at_last_check = over
        return self.finished

    def catch_up_failed(self, error: OpenwopError) -> None:
        """The catch-up read after the wait failed: re-raise unless the stream was stalled and the error
        is transient (the snapshot already tells how the run ended; the missing events are only progress)."""
        if not (self.stalled and is_retryable_error(error)):
            raise error

    def stall_read_failed(self, error: OpenwopError) -> None:
        """A snapshot read during a stall failed: transient errors are noted (the host is unreachable) and
        otherwise ignored (the stream's reconnect budget decides when to give up), others re-raised."""
        if not is_retryable_error(error):
            raise error
        self.checked_at = time.monotonic()
        self.failing = True
        self.last_error = error.message

    def unreachable_since(self) -> float | None:
        """Epoch seconds of the host's last answer while it answers nothing now (None: it answers)."""
        return self.answered_at if self.failing else None

    def _answered(self) -> None:
        self.checked_at = time.monotonic()
        self.answered_at = time.time()
        self.failing = False

    def needs_history(self, snapshot: RunSnapshot) -> bool:
        """True when the run already waits, the caller stops on interrupts, and the events that describe
        the interrupt lie before the resume cursor (so they must be read once, quietly)."""
        return self.stop_on_interrupt and snapshot.is_waiting and self.last_sequence is not None

    def observe(self, event: RunEvent, *, notify: bool = True) -> bool:
        """Fold in one event; True when the wait is over."""
        self._answered()
        self.over_at_last_check = False  # the stream delivers: let it deliver the rest too
        self.tracker.observe(event)
        if notify and self.on_event is not None:
            self.on_event(event)
        if event.is_terminal:
            self.finished = True
            self.needs_catch_up = False
        elif self.stop_on_interrupt and event.type in _SUSPEND_TYPES:
            self.finished = True
            # Only the canonical event carries the whole interrupt; after a legacy twin or a bare
            # node.suspended the client reads what the host logged right after it.
            self.needs_catch_up = event.type != "interrupt.requested"
        return self.finished

    def _knows_interrupt(self) -> bool:
        return bool(self.tracker.open)

    def result(self, snapshot: RunSnapshot) -> WaitResult:
        """The result for the final snapshot."""
        interrupt = self.tracker.pending_interrupt(snapshot) if snapshot.is_waiting else None
        return WaitResult(
            snapshot=snapshot,
            last_sequence=self.tracker.last_sequence,
            interrupt=interrupt,
            events_seen=self.tracker.events_seen,
            elapsed=time.monotonic() - self.started,
            failed_node_id=self.tracker.failed_node_id or _text((self._terminal_payload()).get("failedNodeId")),
        )

    def _terminal_payload(self) -> dict[str, Any]:
        terminal = self.tracker.terminal
        return terminal.payload_dict if terminal is not None else {}


def describe_event(event: RunEvent) -> str | None:
    """A one-line, human description of a progress event for task logs; None for events not worth a line."""
    payload = event.payload_dict
    node = event.node_id or payload.get("nodeId")
    kind = event.type
    if kind == "run.started":
        return f"run started (workflow {payload.get('workflowId', '?')})"
    if kind == "node.started":
        return f"node {node} started"
    if kind == "node.completed":
        took = payload.get("durationMs")
        return f"node {node} completed" + (f" in {took} ms" if took is not None else "")
    if kind == "node.failed":
        error = payload.get("error") or {}
        code = error.get("code") if isinstance(error, dict) else error
        message = error.get("message") if isinstance(error, dict) else ""
        return f"node {node} failed: {code}: {message}"
    if kind == "interrupt.requested":
        return f"node {node} waits for {payload.get('kind') or 'an answer'}"
    if kind in ("approval.requested", "clarification.requested"):
        return None  # legacy twins of interrupt.requested; node.suspended covers hosts that send only these
    if kind == "node.suspended":
        return f"node {node} suspended ({payload.get('kind') or payload.get('reason') or 'interrupt'})"
    if kind in ("interrupt.resolved", "approval.received", "clarification.resolved", "node.resumed"):
        return f"node {node} resumed"  # hosts send several of these for one answer: ProgressLines folds them
    if kind == "run.completed":
        return "run completed"
    if kind == "run.failed":
        error = payload.get("error") or {}
        if isinstance(error, dict):
            return f"run failed: {error.get('code')}: {error.get('message')}"
        return f"run failed: {error}"
    if kind == "run.cancelled":
        return "run cancelled" + (f" ({payload['reason']})" if payload.get("reason") else "")
    if kind in ("run.paused", "run.resumed", "node.skipped", "artifact.created", "node.retried"):
        return kind.replace(".", " ") + (f" (node {node})" if node else "")
    return None


class ProgressLines:
    """:func:`describe_event` for one run's log, one line per change of a node: hosts send several events for
    one change (an answer is ``interrupt.resolved``, ``approval.received`` and ``node.resumed``), and a line
    repeated for the same node says nothing new."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def __call__(self, event: RunEvent) -> str | None:
        """The line for ``event``, or None when it is not worth one or repeats the node's last line."""
        line = describe_event(event)
        node = event.node_id or event.payload_dict.get("nodeId")
        if line is None or not isinstance(node, str):
            return line
        if self._last.get(node) == line:
            return None
        self._last[node] = line
        return line


def _with_snapshot_interrupt(
    run_id: str, pending: PendingInterrupt | None, reported: SnapshotInterrupt
) -> PendingInterrupt | None:
    """``pending`` completed with what the snapshot's ``interrupt`` reports of the same interrupt (its
    token above all: some hosts put it nowhere else); built from it alone when no event described one."""
    if pending is None:
        if not reported.node_id:
            return None
        pending = PendingInterrupt(run_id=run_id, node_id=reported.node_id)
    same_node = reported.node_id in (None, pending.node_id)
    same_interrupt = reported.interrupt_id is None or pending.interrupt_id in (None, reported.interrupt_id)
    if not (same_node and same_interrupt):
        return pending  # the snapshot describes another interrupt than the one the events left open
    update: dict[str, Any] = {}
    if reported.token and not pending.token:
        update["token"] = reported.token
    if reported.interrupt_id and not pending.interrupt_id:
        update["interrupt_id"] = reported.interrupt_id
    if reported.kind and pending.kind == "custom":
        update["kind"] = reported.kind
    return pending.model_copy(update=update) if update else pending


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
