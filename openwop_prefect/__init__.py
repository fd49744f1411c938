"""Prefect 3 integration for OpenWOP: run OpenWOP workflows from Prefect flows.

- :class:`OpenwopCredentials`: a block holding the host's URL and API key.
- :func:`run_openwop_workflow`: a flow that runs a workflow, logs its progress, lets people answer its
  interrupts in the Prefect UI, cancels it when the flow is cancelled, and returns its outputs.
- Tasks for single operations (``create_openwop_run``, ``wait_for_openwop_run``, ...; async twins
  prefixed with ``a``), and the ``OpenwopWorkflow`` job block with its ``OpenwopWorkflowRun`` handle.

Importing this package registers nothing by itself; ``prefect block register -m openwop_prefect`` finds
the blocks imported here (the ``prefect.collections`` entry point names this package).
"""

from __future__ import annotations

from openwop_core import PendingInterrupt, __version__

from .credentials import OpenwopCredentials
from .exceptions import OpenwopInterruptRequired, OpenwopInterruptTimeout, OpenwopRunFailed, OpenwopWaitTimeout
from .flows import run_openwop_workflow
from .jobs import OpenwopWorkflow, OpenwopWorkflowRun
from .runs import OpenwopRunResult
from .tasks import (
    acancel_openwop_run,
    acreate_openwop_run,
    afork_openwop_run,
    aget_openwop_run,
    aresolve_openwop_interrupt,
    await_for_openwop_run,
    cancel_openwop_run,
    create_openwop_run,
    fork_openwop_run,
    get_openwop_run,
    resolve_openwop_interrupt,
    wait_for_openwop_run,
)

__all__ = [
    "OpenwopCredentials",
    "OpenwopInterruptRequired",
    "OpenwopInterruptTimeout",
    "OpenwopRunFailed",
    "OpenwopRunResult",
    "OpenwopWaitTimeout",
    "OpenwopWorkflow",
    "OpenwopWorkflowRun",
    "PendingInterrupt",
    "__version__",
    "acancel_openwop_run",
    "acreate_openwop_run",
    "afork_openwop_run",
    "aget_openwop_run",
    "aresolve_openwop_interrupt",
    "await_for_openwop_run",
    "cancel_openwop_run",
    "create_openwop_run",
    "fork_openwop_run",
    "get_openwop_run",
    "resolve_openwop_interrupt",
    "run_openwop_workflow",
    "wait_for_openwop_run",
]
