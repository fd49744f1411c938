"""The flow's ownership of its remote run: cancel the run when the flow gives up on it.

The flow gives up when the Prefect flow run is cancelled, its timeout passes, nobody answers an interrupt
in time, ``on_interrupt="fail"``, or the process is told to stop (a termination signal, Ctrl-C); the run
must not go on alone then. When the flow fails because the host could not be reached, or its process dies
(``SystemExit``: a crash), the run is left alone so a retry reattaches.

A worker stops a cancelled flow run with a signal, and Prefect then calls the ``on_cancellation`` hook in
the same process: the runs being followed are registered here, by flow run, for that hook.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, State
from prefect.flows import Flow
from prefect.logging.loggers import flow_run_logger

from openwop_prefect.credentials import OpenwopCredentials
from openwop_prefect.exceptions import OpenwopInterruptRequired

__all__ = ["cancel_on_flow_cancellation", "cancel_remote", "following", "gives_up"]

Logger = Any  # a logging.Logger or Prefect's run-logger adapter

# Remote runs being followed, by Prefect flow run id, for the on_cancellation hook.
_active: dict[UUID, tuple[OpenwopCredentials, str]] = {}
_active_lock = threading.Lock()


@contextmanager
def following(flow_run_id: UUID, credentials: OpenwopCredentials, run_id: str) -> Iterator[None]:
    """Register ``run_id`` as the remote run this flow run follows, for the ``with`` block."""
    with _active_lock:
        _active[flow_run_id] = (credentials, run_id)
    try:
        yield
    finally:
        with _active_lock:
            _active.pop(flow_run_id, None)


def gives_up(error: BaseException) -> bool:
    """Exits after which the flow no longer follows the run, so the run should not go on alone.

    ``SystemExit`` is not one: it is the flow-run process dying (e.g. its worker was killed, so its console
    pipe broke), not a decision to stop; Prefect marks the flow run crashed, and its retry reattaches."""
    if isinstance(error, (TimeoutError, OpenwopInterruptRequired)):
        return True  # includes WaitTimeoutError, OpenwopInterruptTimedOut and Prefect's flow timeouts
    return not isinstance(error, (Exception, SystemExit))  # a termination signal (Prefect cancellation), Ctrl-C


def cancel_remote(credentials: OpenwopCredentials, run_id: str, reason: str, logger: Logger) -> bool:
    """Cancel the remote run, best effort: a failure is logged, never raised. True if the host agreed."""
    try:
        with credentials.get_client() as client:
            result = client.runs_cancel(run_id, reason=reason)
    except Exception as exc:
        logger.error("Could not cancel OpenWOP run %s (%s): %s", run_id, reason, exc)
        return False
    if result.already_terminal:
        logger.info("OpenWOP run %s had already ended (%s); nothing to cancel", run_id, result.status)
    else:
        logger.warning("Cancelled OpenWOP run %s (%s); it is %s", run_id, reason, result.status)
    with _active_lock:
        for flow_run_id, (_, active_run) in list(_active.items()):
            if active_run == run_id:
                del _active[flow_run_id]
    return True


def cancel_on_flow_cancellation(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """``on_cancellation`` hook: cancel the remote run this flow run was following (best effort)."""
    with _active_lock:
        entry = _active.get(flow_run.id)
    if entry is not None:
        credentials, run_id = entry
        cancel_remote(
            credentials, run_id, f"Prefect flow run {flow_run.name} was cancelled", flow_run_logger(flow_run, flow)
        )
