"""Asking a person in the Prefect UI: pause the flow run with a form built from the interrupt, say where to
answer, end the pause early when the interrupt closes on the host, and turn the answer into a resume value.
"""

import math
import threading
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input.actions import filter_flow_run_input
from prefect.input.run_input import keyset_from_base_key
from prefect.logging.loggers import flow_run_logger
from prefect.settings import get_current_settings
from prefect.states import Running
from prefect.utilities.urls import url_for

from openwop_core import OpenwopClient, PendingInterrupt
from openwop_prefect.exceptions import OpenwopInterruptTimedOut
from openwop_prefect.interrupts import (
    describe_interrupt,
    input_model_for,
    pause_key_for,
    responder_of,
    resume_value_for,
)
from openwop_prefect.watchers import InterruptCloseWatcher, run_unless

__all__ = ["PrefectPause"]

Logger = Any  # a logging.Logger or Prefect's run-logger adapter


@dataclass
class PrefectPause:
    """Asks a person through a pause of flow run ``flow_run_id``; ``cancelled`` (the cancellation watcher's
    event) abandons the pause at once."""

    client: OpenwopClient
    flow_run_id: UUID
    check_interval: float
    cancelled: threading.Event
    logger: Logger

    def ask(
        self,
        interrupt: PendingInterrupt,
        *,
        attempt: int,
        note: str,
        last_sequence: int | None,
        timeout: float,
        limit: str,
    ) -> tuple[Any, str]:
        """Pause the flow run for up to ``timeout`` seconds (``limit`` names the setting that bounds it) with a
        form built from the interrupt. Returns the answer as a resume value and where it came from, or
        ``(None, why)`` when the pause ended without one (cancelled, or the interrupt closed on the host)."""
        model = input_model_for(interrupt)
        if note:
            model._description = f"{describe_interrupt(interrupt)}\n\n**{note}**"  # as in input_model_for
        key = pause_key_for(interrupt, attempt)
        if get_current_settings().api.url is None:
            self.warn_no_prefect_ui(interrupt, timeout, limit)
        else:
            self.announce_pause(interrupt, timeout, limit)

        def pause() -> Any:
            return pause_flow_run(
                wait_for_input=model,
                timeout=math.ceil(timeout),
                poll_interval=max(1, math.ceil(self.check_interval)),
                key=key,
            )

        host_side = InterruptCloseWatcher(self.client, interrupt, last_sequence, self.check_interval)
        try:
            with host_side:
                finished, answer = run_unless((self.cancelled, host_side.fired), pause, poll=0.2)
        except FlowPauseTimeout:
            raise OpenwopInterruptTimedOut(interrupt, timeout, limit=limit) from None
        if not finished and host_side.fired.is_set() and not self.cancelled.is_set():
            self.logger.info(
                "OpenWOP run %s no longer waits on node %s (answered elsewhere, timed out there, or the run "
                "ended); ending the pause and following the run",
                interrupt.run_id,
                interrupt.node_id,
            )
            self._end_pause()
            return None, "closed on the host"
        if not finished or answer is None:
            return None, "cancelled"
        decided_by = responder_of(answer) or self._responder(key) or "prefect-ui"
        return resume_value_for(answer, decided_by=decided_by), f"answered in Prefect by {decided_by}"

    def announce_pause(self, interrupt: PendingInterrupt, timeout: float, limit: str) -> None:
        """Say where to answer: the pause is on this flow run (usually the ``run-openwop-workflow`` subflow), not
        on the flow run the user started, so log this run's UI link here and in the flow run above it."""
        link, flow_run, parent = self._whereabouts()
        where = f"open {link} and press Resume" if link else "press Resume on this flow run"
        self.logger.info(
            "Pausing until someone answers in the Prefect UI: %s. Waiting up to %.0fs (%s).", where, timeout, limit
        )
        if parent is not None and flow_run is not None:
            flow_run_logger(parent).info(
                "Subflow run %r (run-openwop-workflow) is paused until someone answers OpenWOP run %s: %s.",
                flow_run.name,
                interrupt.run_id,
                where,
            )

    def warn_no_prefect_ui(self, interrupt: PendingInterrupt, timeout: float, limit: str) -> None:
        """Ephemeral mode (no ``PREFECT_API_URL``): Prefect's temporary server has no UI, so nobody can press
        Resume. The pause still ends by an answer on the OpenWOP host or through Prefect's API from this process:
        say so, and how to get a UI, instead of pointing to a UI that does not exist."""
        self.logger.warning(
            "OpenWOP run %s waits for %s on node %s, but this flow runs on Prefect's temporary server "
            "(PREFECT_API_URL is not set), which has no UI: nobody can press Resume. Answer on the OpenWOP host "
            "instead (the pause then ends within %gs), e.g. `openwop runs resolve %s %s --value '{...}'`, or through "
            "Prefect's API from this process (resume_flow_run). For a Resume form, stop this flow, start "
            "`prefect server start`, set PREFECT_API_URL=http://127.0.0.1:4200/api and run it again. Waiting up to "
            "%.0fs (%s).",
            interrupt.run_id,
            interrupt.kind,
            interrupt.node_id,
            self.check_interval,
            interrupt.run_id,
            interrupt.node_id,
            timeout,
            limit,
        )

    def _whereabouts(self) -> tuple[str | None, FlowRun | None, FlowRun | None]:
        """The flow run's UI link (None without a UI), the flow run, and the flow run above it (best effort)."""
        try:
            with get_client(sync_client=True) as client:
                flow_run = client.read_flow_run(self.flow_run_id)
                parent = None
                if flow_run.parent_task_run_id is not None:
                    parent_task_run = client.read_task_run(flow_run.parent_task_run_id)
                    if parent_task_run.flow_run_id is not None:
                        parent = client.read_flow_run(parent_task_run.flow_run_id)
        except Exception:
            return None, None, None
        return url_for(flow_run), flow_run, parent

    def _end_pause(self) -> None:
        """Put the paused flow run back to Running without an answer (the question closed on the host)."""
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(self.flow_run_id, Running(), force=True)

    def _responder(self, pause_key: str) -> str | None:
        """Who answered, where Prefect records it: the input's sender (a flow run or, on some servers, a user)."""
        try:
            response_key = keyset_from_base_key(f"paused-{pause_key}")["response"]
            found = cast(
                list[Any], filter_flow_run_input(key_prefix=response_key, limit=1, flow_run_id=self.flow_run_id)
            )
        except Exception:
            return None
        return found[0].sender if found and found[0].sender else None
