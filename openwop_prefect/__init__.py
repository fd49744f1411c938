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

from . import tasks
from .credentials import OpenwopCredentials
from .exceptions import OpenwopInterruptRequired, OpenwopInterruptTimedOut, OpenwopRunFailed, OpenwopWaitTimedOut
from .flows import run_openwop_workflow
from .jobs import OpenwopWorkflow, OpenwopWorkflowRun
from .runs import OpenwopRunResult
from .tasks import *  # noqa: F403  (the tasks and their async twins, as tasks.__all__ lists them)

__all__ = [
    "OpenwopCredentials",
    "OpenwopInterruptRequired",
    "OpenwopInterruptTimedOut",
    "OpenwopRunFailed",
    "OpenwopRunResult",
    "OpenwopWaitTimedOut",
    "OpenwopWorkflow",
    "OpenwopWorkflowRun",
    "PendingInterrupt",
    "__version__",
    "run_openwop_workflow",
]
__all__ += tasks.__all__
