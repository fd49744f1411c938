"""Node kinds the local host can execute (``core.*`` per the conformance contract, plus ``devhost.*``).

:mod:`.base` holds what every kind builds on (:class:`~.base.NodeContext`, :class:`~.base.NodeFailure`,
:class:`~.base.SuspendSpec`); one module per kind or family holds the handlers; :data:`NODE_TYPES`
maps each ``typeId`` to its handler.
"""

from __future__ import annotations

from .approval import run_approval_gate
from .base import NodeHandler
from .basic import run_delay, run_fail, run_identity, run_noop, run_requires_missing
from .clarification import run_clarification_gate
from .external import run_interrupt
from .extras import run_artifact, run_burst

NODE_TYPES: dict[str, NodeHandler] = {
    "core.noop": run_noop,
    "core.identity": run_identity,
    "core.delay": run_delay,
    "core.fail": run_fail,
    "core.approvalGate": run_approval_gate,
    "core.clarificationGate": run_clarification_gate,
    "core.interrupt": run_interrupt,
    "conformance.requiresMissing": run_requires_missing,
    "devhost.burst": run_burst,
    "devhost.artifact": run_artifact,
}

__all__ = ["NODE_TYPES"]
