"""Background threads that keep an eye on something while ``run_openwop_workflow`` waits.

- :class:`CancellationWatcher`: has Prefect cancelled this flow run (or one above it)?
- :class:`InterruptCloseWatcher`: while a Prefect pause asks a person, has the interrupt closed on the host?
- :func:`run_unless`: run a blocking call (a pause) that a watcher's firing abandons.

Every thread copies the caller's context: Prefect's settings and run context live in context variables.
"""

import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from openwop_core import OpenwopClient, OpenwopError, PendingInterrupt
from openwop_core.interrupt_watch import interrupt_is_open

__all__ = ["CancellationWatcher", "InterruptCloseWatcher", "Watcher", "run_unless"]

T = TypeVar("T")
W = TypeVar("W", bound="Watcher")
Logger = Any  # a logging.Logger or Prefect's run-logger adapter

#: How many flow runs up the subflow chain the cancellation watcher looks (a guard against cycles).
MAX_LINEAGE = 20


class Watcher:
    """Runs :meth:`check` every ``interval`` seconds in a background thread until it returns True, which
    sets ``fired``, or until the ``with`` block ends."""

    def __init__(self, interval: float, name: str) -> None:
        self.interval = interval
        self.fired = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._watch,), name=name, daemon=True
        )

    def __enter__(self: W) -> W:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def check(self) -> bool:
        """One look; True when the watched thing happened."""
        raise NotImplementedError

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if self.check():
                self.fired.set()
                return


class CancellationWatcher(Watcher):
    """Polls Prefect for cancellation of this flow run or any flow run above it, and calls ``on_cancel``
    once when it sees one.

    Runs started by a worker are stopped with a signal (the ``on_cancellation`` hook and the flow's own
    give-up path cover those); a flow run called in-process is only marked cancelled on the server, which
    this sees.
    """

    def __init__(self, flow_run_id: UUID, interval: float, on_cancel: Callable[[], object], logger: Logger) -> None:
        super().__init__(interval, f"openwop-cancel-watch-{flow_run_id}")
        self.flow_run_id = flow_run_id
        self.on_cancel = on_cancel
        self.logger = logger
        self._ids: list[UUID] | None = None

    def _lineage(self, client: Any) -> list[UUID]:
        """This flow run's id and those of the flow runs above it (parent first found, then its parent...)."""
        ids = [self.flow_run_id]
        flow_run = client.read_flow_run(self.flow_run_id)
        while flow_run.parent_task_run_id is not None and len(ids) < MAX_LINEAGE:
            parent_task_run = client.read_task_run(flow_run.parent_task_run_id)
            if parent_task_run.flow_run_id is None or parent_task_run.flow_run_id in ids:
                break
            ids.append(parent_task_run.flow_run_id)
            flow_run = client.read_flow_run(parent_task_run.flow_run_id)
        return ids

    def check(self) -> bool:
        """Is this flow run, or one above it, cancelling or cancelled? (Then cancel the remote run.)"""
        try:
            with get_client(sync_client=True) as client:
                self._ids = self._ids or self._lineage(client)
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=self._ids)))
        except Exception as exc:  # Prefect API hiccup: keep watching
            self.logger.debug("Could not read the flow run's state: %s", exc)
            return False
        if any(r.state is not None and (r.state.is_cancelling() or r.state.is_cancelled()) for r in runs):
            self.on_cancel()
            return True
        return False


class InterruptCloseWatcher(Watcher):
    """While a person is asked in Prefect, checks whether the run still waits on the interrupt; fires once
    it does not: answered elsewhere (the host's UI, another client, a signed token), timed out there, or
    the run ended. The pause then ends at once instead of at its timeout."""

    def __init__(
        self, client: OpenwopClient, interrupt: PendingInterrupt, last_sequence: int | None, interval: float
    ) -> None:
        super().__init__(interval, f"openwop-interrupt-watch-{interrupt.run_id}")
        self.client = client
        self.interrupt = interrupt
        self.last_sequence = last_sequence

    def check(self) -> bool:
        """Has the interrupt closed? (A host unreachable for now is not an answer: look again later.)"""
        try:
            return not interrupt_is_open(self.client, self.interrupt, self.last_sequence)
        except OpenwopError:
            return False


def run_unless(stops: Sequence[threading.Event], fn: Callable[[], T], poll: float) -> tuple[bool, T | None]:
    """Run ``fn`` in a helper thread (same context); return ``(True, result)`` when it finishes, or
    ``(False, None)`` as soon as one of ``stops`` is set (the thread is abandoned: ``pause_flow_run`` cannot
    be interrupted, and a cancelled flow must not sit out the pause's timeout)."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(target,), name="openwop-pause", daemon=True).start()
    while not done.wait(poll):
        if any(stop.is_set() for stop in stops):
            return False, None
    if "error" in outcome:
        raise outcome["error"]
    return True, cast(T, outcome.get("value"))
