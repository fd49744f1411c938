"""Whether a run still waits on one interrupt: the judgement (sans-IO) and a one-off check.

Anything that puts an interrupt to a person elsewhere (Airflow's Required Actions page, a paused Prefect flow
run) must notice when the interrupt closes on the host meanwhile: answered by someone else, timed out there,
the run cancelled or ended, or a loop back that asks the same node anew. The rules live here once.
"""

from __future__ import annotations

from .client import OpenwopClient
from .models import PendingInterrupt, RunEvent, RunSnapshot
from .waiting import RunTracker


class InterruptWatch:
    """Whether one interrupt is still open, judged from the run's snapshot and its events after the
    cursor: a resolution (by anyone), a timeout on the host, the end of the run, or a new interrupt on the
    same node (a loop back) closes it."""

    def __init__(self, interrupt: PendingInterrupt) -> None:
        self.interrupt = interrupt
        self.tracker = RunTracker(interrupt.run_id)
        self.tracker.open[interrupt.node_id] = interrupt

    @property
    def is_open(self) -> bool:
        """False once the interrupt was seen closing."""
        current = self.tracker.open.get(self.interrupt.node_id)
        return current is not None and (
            self.interrupt.interrupt_id is None or current.interrupt_id in (None, self.interrupt.interrupt_id)
        )

    def observe(self, event: RunEvent) -> bool:
        """Fold in one event; True while the interrupt stays open."""
        self.tracker.observe(event)
        return self.is_open

    def allows(self, snapshot: RunSnapshot) -> bool:
        """False when the snapshot shows the run no longer waits on the interrupt's node."""
        return snapshot.is_waiting and snapshot.current_node_id in (None, self.interrupt.node_id)


def interrupt_is_open(
    client: OpenwopClient, interrupt: PendingInterrupt, last_sequence: int | None, *, wait_seconds: int = 1
) -> bool:
    """One check: does the run still wait on ``interrupt``? Reads the snapshot, then the events after
    ``last_sequence`` (a long-poll of at most ``wait_seconds`` when there are none)."""
    watch = InterruptWatch(interrupt)
    if not watch.allows(client.runs_get(interrupt.run_id)):
        return False
    page = client.runs_poll_events(interrupt.run_id, last_sequence=last_sequence, timeout_seconds=wait_seconds)
    return all(watch.observe(event) for event in page.events)
