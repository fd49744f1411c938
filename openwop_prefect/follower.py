"""Following one OpenWOP run to its end for ``run_openwop_workflow``: wait on its events (progress goes to the
flow run's logs), and each time it waits on someone, get an answer as ``on_interrupt`` says (your callable,
or a person through a Prefect pause) and send it to the host.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from openwop_core import (
    ConflictError,
    GoneError,
    InvalidArgumentError,
    InvalidRequestError,
    NotFoundError,
    OpenwopClient,
    OpenwopError,
    PendingInterrupt,
    WaitTimeoutError,
)
from openwop_prefect.artifacts import RunProgress
from openwop_prefect.events import RUN_RESUMED, RUN_WAITING_FOR_INPUT, emit_run_event
from openwop_prefect.exceptions import OpenwopInterruptRequired, OpenwopWaitTimedOut
from openwop_prefect.interrupts import pause_key_for
from openwop_prefect.pauses import PrefectPause
from openwop_prefect.runs import OpenwopRunResult

__all__ = ["MAX_ASK_ATTEMPTS", "InterruptHandler", "RunFollower"]

Logger = Any  # a logging.Logger or Prefect's run-logger adapter
InterruptHandler = Literal["pause", "fail", "return"] | Callable[[PendingInterrupt], Any]

#: How often a re-asked interrupt may be asked again after the host rejected the answer.
MAX_ASK_ATTEMPTS = 3


@dataclass
class RunFollower:
    """Follows one run to its end: waits, answers interrupts as ``on_interrupt`` says, and keeps going.
    ``cancelled`` is set once Prefect cancelled the flow run (the remote run is being cancelled)."""

    client: OpenwopClient
    run_id: str
    workflow_id: str
    on_interrupt: InterruptHandler
    timeout: float | None
    interrupt_timeout: float
    check_interval: float
    progress: RunProgress
    cancelled: threading.Event
    flow_run_id: UUID
    logger: Logger
    started: float = field(default_factory=time.monotonic)
    #: The cursor: the last event sequence seen.
    last_sequence: int | None = None
    #: The interrupts answered (by pause key), so one the host has not applied yet is not asked again.
    answered: set[str] = field(default_factory=set)
    #: The nodes' states in the last snapshot read (the event stream does not carry every node's end).
    node_states: dict[str, Any] = field(default_factory=dict)

    def remaining(self) -> float | None:
        """Seconds left before the flow's ``timeout`` (None: no timeout)."""
        return None if self.timeout is None else self.started + self.timeout - time.monotonic()

    def follow(self) -> OpenwopRunResult:
        """Wait until the run ends, Prefect cancels, or (``on_interrupt="return"``) the run waits on someone."""
        stale = 0
        while True:
            remaining = self.remaining()
            if remaining is not None and remaining <= 0:
                raise OpenwopWaitTimedOut(self.run_id, self.timeout or 0.0, None, self.last_sequence)
            try:
                waited = self.client.wait_for_run(
                    self.run_id,
                    timeout=remaining,
                    stop_on_interrupt=True,
                    last_sequence=self.last_sequence,
                    on_event=self.progress,
                )
            except WaitTimeoutError as exc:
                raise OpenwopWaitTimedOut(
                    self.run_id, self.timeout or 0.0, exc.last_status, exc.last_sequence
                ) from None
            if self.last_sequence is None and waited.events_seen == 0 and waited.snapshot.is_terminal:
                self.catch_up()  # it ended before we looked: log (and time) what happened
            self.last_sequence = waited.last_sequence
            self.node_states = waited.snapshot.node_states or {}
            result = OpenwopRunResult.from_wait(waited, self.workflow_id)
            interrupt = result.interrupt
            if interrupt is None or self.cancelled.is_set() or self.on_interrupt == "return":
                return result
            identity = pause_key_for(interrupt)
            if identity in self.answered:  # the host has not applied our answer yet: look again shortly
                stale += 1
                time.sleep(min(5.0, 0.25 * stale))
                continue
            stale = 0
            self.emit(RUN_WAITING_FOR_INPUT, interrupt)
            self.logger.info(
                "OpenWOP run %s waits for %s on node %s: %s",
                self.run_id,
                interrupt.kind,
                interrupt.node_id,
                interrupt.title,
            )
            if self.on_interrupt == "fail":
                raise OpenwopInterruptRequired(interrupt, cancelled=True)
            if self.answer(interrupt):
                self.answered.add(identity)
                self.emit(RUN_RESUMED, interrupt)
            # when cancelled meanwhile, the remote run is being cancelled: the next wait sees it end

    def emit(self, event: str, interrupt: PendingInterrupt) -> None:
        """Emit a Prefect event about the run's interrupt (its node and kind; never its token)."""
        emit_run_event(
            event,
            self.run_id,
            base_url=self.client.base_url,
            workflow_id=self.workflow_id,
            status=None,
            interrupt={"node_id": interrupt.node_id, "kind": interrupt.kind},
        )

    def catch_up(self) -> None:
        """Feed the run's event log to the progress reporter once (best effort)."""
        try:
            page = self.client.runs_poll_events(self.run_id, timeout_seconds=1)
        except OpenwopError as exc:
            self.logger.debug("Could not read OpenWOP run %s's events: %s", self.run_id, exc)
            return
        for event in page.events:
            self.progress(event)

    def answer(self, interrupt: PendingInterrupt) -> bool:
        """Get an answer (your callable, else a person through a Prefect pause) and send it to the host.
        True when the host took it; False when someone else had already answered."""
        note = ""
        for attempt in range(MAX_ASK_ATTEMPTS):
            value = self.on_interrupt(interrupt) if callable(self.on_interrupt) else None
            source = "on_interrupt callable"
            if value is None:
                value, source = self.ask_in_prefect(interrupt, attempt, note)
                if value is None:
                    return False  # cancelled while paused, or the interrupt closed on the host
            try:
                self.client.interrupts_resolve_by_run(self.run_id, interrupt.node_id, value)
            except (NotFoundError, ConflictError, GoneError) as exc:
                self.logger.warning(
                    "OpenWOP run %s's %s on node %s was no longer open (answered elsewhere or expired): %s",
                    self.run_id,
                    interrupt.kind,
                    interrupt.node_id,
                    exc.server_message or exc,
                )
                return False
            except InvalidRequestError as exc:
                if callable(self.on_interrupt) and source == "on_interrupt callable":
                    raise
                note = f"The host rejected the previous answer: {exc.server_message or exc}"
                self.logger.warning("%s; asking again", note)
                continue
            self.logger.info(
                "Answered OpenWOP run %s's %s on node %s (%s)", self.run_id, interrupt.kind, interrupt.node_id, source
            )
            return True
        raise InvalidArgumentError(
            f"The host rejected {MAX_ASK_ATTEMPTS} answers to OpenWOP run {self.run_id}'s {interrupt.kind} on node "
            f"{interrupt.node_id!r}. {note}"
        )

    def ask_in_prefect(self, interrupt: PendingInterrupt, attempt: int, note: str) -> tuple[Any, str]:
        """Ask a person through a Prefect pause, for ``interrupt_timeout`` or what is left of the flow's
        ``timeout`` if that is shorter; the answer as a resume value and where it came from."""
        remaining = self.remaining()
        if remaining is None or self.interrupt_timeout <= remaining:
            timeout, limit = self.interrupt_timeout, "interrupt_timeout"
        else:
            timeout, limit = max(1.0, remaining), "timeout"
        pause = PrefectPause(self.client, self.flow_run_id, self.check_interval, self.cancelled, self.logger)
        return pause.ask(
            interrupt, attempt=attempt, note=note, last_sequence=self.last_sequence, timeout=timeout, limit=limit
        )
