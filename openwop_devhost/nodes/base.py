"""What every node kind builds on: the context a handler gets, how it fails, and how it suspends.

A node handler is ``async def handler(ctx) -> outputs``; it fails by raising :class:`NodeFailure`
and waits for a human or an external system through ``ctx.suspend(SuspendSpec(...))``. Outputs are
merged into the run's ``variables`` and ``run.completed.payload.outputs``.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.events import now_iso
from ..workflows.model import NodeDef, VariableBinding

if TYPE_CHECKING:
    from ..engine.execution import Engine
    from ..engine.runs import Event, Run


class NodeFailure(Exception):
    """A node ended in failure with an OpenWOP error ``{code, message, details?}``."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details

    def error(self) -> dict[str, Any]:
        """The error object used in ``node.failed``/``run.failed`` and the snapshot."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InterruptTimeout(Exception):
    """An interrupt's ``timeoutMs`` elapsed before anyone resolved it."""

    def __init__(self, interrupt_id: str, timeout_ms: int) -> None:
        super().__init__(f"interrupt {interrupt_id} timed out after {timeout_ms} ms")
        self.interrupt_id = interrupt_id
        self.timeout_ms = timeout_ms


def _always_final(_value: Any) -> bool:
    return True


@dataclass
class SuspendSpec:
    """What a node asks for when it suspends, and how a resume value is checked and recorded.

    ``validate`` turns the caller's ``resumeValue`` into the normalised value (raising ``ApiError``
    400/422 for bad input, which leaves the run suspended); ``resolution_events`` lists the
    node-specific events to append on resolution (e.g. ``approval.received``); ``is_final``
    says whether the value ends the wait (``ask`` on an approval does not).
    """

    kind: str
    status: str
    data: dict[str, Any]
    validate: Callable[[Any], Any]
    resolution_events: Callable[[Any, str], list[tuple[str, dict[str, Any]]]]
    resume_schema: dict[str, Any] | None = None
    timeout_ms: int | None = None
    legacy_event: tuple[str, dict[str, Any]] | None = None
    is_final: Callable[[Any], bool] = field(default=_always_final)


NodeHandler = Callable[["NodeContext"], Awaitable[dict[str, Any]]]


def timeout_of(ctx: NodeContext, from_inputs: bool) -> int | None:
    """``timeoutMs`` from the node config (and, if ``from_inputs``, else from the run inputs)."""
    value = ctx.param("timeoutMs") if from_inputs else ctx.node.config.get("timeoutMs")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise NodeFailure(
            "invalid_node_config",
            f"Node {ctx.node.id!r} ({ctx.node.type_id}): timeoutMs must be a positive integer, got {value!r}",
        )
    return value


class NodeContext:
    """What a node handler may do: read its config and the run's variables, emit, suspend, store."""

    def __init__(self, engine: Engine, run: Run, node: NodeDef, visit: int) -> None:
        self.engine = engine
        self.run = run
        self.node = node
        self.visit = visit

    def param(self, key: str, default: Any = None) -> Any:
        """``config[key]`` if set, else the node's input binding ``key`` (a literal, or the bound run variable), else
        the run variable ``key``; ``default`` when unset. Run variables start as the declared defaults overlaid
        with the run's inputs, as on the reference hosts."""
        if key in self.node.config:
            return self.node.config[key]
        if key in self.node.inputs:
            binding = self.node.inputs[key]
            if not isinstance(binding, VariableBinding):
                return binding
            return self.run.variables.get(binding.variable_name, default)
        return self.run.variables.get(key, default)

    def emit(self, event_type: str, payload: dict[str, Any]) -> Event:
        """Append a node-scoped event."""
        return self.engine.append(self.run, event_type, payload, self.node.id)

    def store_artifact(self, artifact_id: str, artifact_type: str, data: Any, announce: bool) -> None:
        """Store an artifact for ``GET /v1/runs/{runId}/artifacts/{id}``; ``announce`` emits ``artifact.created``."""
        self.run.artifacts[artifact_id] = {
            "artifactId": artifact_id,
            "artifactType": artifact_type,
            "runId": self.run.run_id,
            "nodeId": self.node.id,
            "version": 1,
            "createdAt": now_iso(),
            "data": copy.deepcopy(data),
        }
        if announce:
            self.emit(
                "artifact.created",
                {"artifactId": artifact_id, "artifactType": artifact_type, "nodeId": self.node.id, "version": 1},
            )

    async def suspend(self, spec: SuspendSpec) -> Any:
        """Suspend this node until resolved; return the normalised resume value.

        Raises :class:`InterruptTimeout` when ``spec.timeout_ms`` elapses first.
        """
        return await self.engine.interrupts.suspend(self, spec)

    async def suspend_or_fail(
        self, spec: SuspendSpec, code: str, unanswered: str, details: dict[str, Any] | None = None
    ) -> Any:
        """:meth:`suspend`, where a timeout fails the node with ``code`` and "``unanswered`` within N ms"."""
        try:
            return await self.suspend(spec)
        except InterruptTimeout as timeout:
            raise NodeFailure(
                code,
                f"{unanswered} within {timeout.timeout_ms} ms",
                {"timeoutMs": timeout.timeout_ms, **(details or {})},
            ) from None
