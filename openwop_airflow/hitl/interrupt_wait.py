"""``InterruptWait``: wait until one interrupt is no longer open, as resiliently as any run wait.

A task that asked a person in Airflow watches the run meanwhile (in ``OpenwopHumanInputTrigger``), so an
answer given elsewhere, a timeout on the host or the end of the run is noticed at once. The retries and
resume cursor are :class:`~openwop_airflow.utils.waiting.RunWait`'s; whether the interrupt is still open is
judged by ``openwop_core``'s :class:`~openwop_core.InterruptWatch`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from openwop_airflow.utils.waiting import RunWait, WaitSpec
from openwop_core import (
    AsyncOpenwopClient,
    InterruptWatch,
    PendingInterrupt,
    RetryPolicy,
    RunEvent,
    RunSnapshot,
    WaitResult,
)


class InterruptClosedError(Exception):
    """Raised inside a wait when the interrupt watched is no longer open (ends :class:`InterruptWait`)."""


class InterruptWait(RunWait):
    """Wait (resiliently, as :class:`RunWait`) until one interrupt is no longer open. ``spec`` should not
    stop on interrupts: the run already waits on this one."""

    def __init__(self, spec: WaitSpec, policy: RetryPolicy, log: Any, interrupt: PendingInterrupt) -> None:
        super().__init__(spec, policy, log)
        self.watch = InterruptWatch(interrupt)

    def on_event(self, event: RunEvent) -> None:
        """Log and advance the cursor; raises :class:`InterruptClosedError` when the event closes the interrupt."""
        super().on_event(event)
        if not self.watch.observe(event):
            raise InterruptClosedError

    def on_snapshot(self, snapshot: RunSnapshot) -> WaitResult | None:
        """Polling mode: raises :class:`InterruptClosedError` once the run no longer waits on the node."""
        if not self.watch.allows(snapshot):
            raise InterruptClosedError
        return super().on_snapshot(snapshot)

    async def until_closed_async(self, client: AsyncOpenwopClient) -> RunSnapshot:
        """Wait in the triggerer; returns the run's snapshot once the interrupt is closed."""
        with contextlib.suppress(InterruptClosedError):
            await self.run_async(client)  # returns only when the run ended, which closes the interrupt too
        return await client.runs_get(self.spec.run_id)
