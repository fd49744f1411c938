"""Exceptions the Prefect integration raises on top of ``openwop_core``'s hierarchy.

Each one says what happened to the remote run and what the caller can do; all are ``OpenwopError``s,
so ``except OpenwopError`` still catches everything this package raises.
"""

from __future__ import annotations

from openwop_core import OpenwopError, PendingInterrupt, RunFailedError, WaitTimeoutError

__all__ = ["OpenwopInterruptRequired", "OpenwopInterruptTimedOut", "OpenwopRunFailed", "OpenwopWaitTimedOut"]


class OpenwopRunFailed(RunFailedError):
    """The remote run ended ``failed`` or ``cancelled``; carries the host's error code and message.

    A subclass of :class:`openwop_core.RunFailedError`, so the attributes are the same: ``run_id``,
    ``status``, ``error_code``, ``error_message``, ``failed_node_id``, plus ``workflow_id``.
    """

    def __init__(
        self,
        run_id: str,
        status: str,
        error_code: str | None = None,
        error_message: str | None = None,
        *,
        failed_node_id: str | None = None,
        workflow_id: str | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        super().__init__(run_id, status, error_code, error_message, failed_node_id=failed_node_id)
        if workflow_id:
            self.message = self.message.replace(f"OpenWOP run {run_id}", f"OpenWOP run {run_id} ({workflow_id})", 1)
            self.args = (self.message,)

    @classmethod
    def from_run_failed(cls, error: RunFailedError, workflow_id: str | None = None) -> OpenwopRunFailed:
        """Wrap the core error (raised by ``WaitResult.raise_for_status``) with the workflow id."""
        return cls(
            error.run_id,
            error.status,
            error.error_code,
            error.error_message,
            failed_node_id=error.failed_node_id,
            workflow_id=workflow_id,
        )


class OpenwopInterruptRequired(OpenwopError):
    """The run waits on a person (or an external event) and the caller chose ``on_interrupt="fail"``."""

    def __init__(self, interrupt: PendingInterrupt, *, cancelled: bool = False) -> None:
        self.interrupt = interrupt
        text = (
            f"OpenWOP run {interrupt.run_id} waits for {interrupt.kind} on node {interrupt.node_id!r}: "
            f"{interrupt.title}"
        )
        if cancelled:
            text += " (the remote run was cancelled because on_interrupt='fail')"
        super().__init__(
            text,
            hint="Use on_interrupt='pause' to answer it in the Prefect UI, 'return' to handle it yourself, "
            "or a callable that returns the resume value.",
        )


class OpenwopInterruptTimedOut(OpenwopError, TimeoutError):
    """Nobody answered the Prefect pause for an OpenWOP interrupt in time."""

    def __init__(self, interrupt: PendingInterrupt, timeout: float, *, limit: str = "interrupt_timeout") -> None:
        self.interrupt = interrupt
        self.timeout = timeout
        #: The setting that ran out: ``"interrupt_timeout"`` (one pause) or ``"timeout"`` (the whole flow).
        self.limit = limit
        if limit == "timeout":
            what = "the flow's timeout ran out during the pause"
            fix = "Raise the flow's timeout (it bounds the whole run, pauses included)"
        else:
            what = "interrupt_timeout ran out"
            fix = "Raise interrupt_timeout"
        super().__init__(
            f"Nobody answered OpenWOP run {interrupt.run_id}'s {interrupt.kind} on node {interrupt.node_id!r} "
            f"within {timeout:g}s ({what}); the remote run was cancelled.",
            hint=f"{fix}, or answer sooner in the Prefect UI (Resume on the paused run-openwop-workflow flow run).",
        )


class OpenwopWaitTimedOut(WaitTimeoutError):
    """The flow's ``timeout`` (elapsed wall time) passed before the run ended; the flow cancelled the run."""

    def __init__(self, run_id: str, timeout: float, last_status: str | None, last_sequence: int | None) -> None:
        super().__init__(run_id, timeout, last_status, last_sequence)
        self.hint = "The remote run was cancelled; raise the flow's timeout if the workflow legitimately takes longer."
