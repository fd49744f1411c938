"""Workflow definitions as the engine sees them: nodes, edges, trigger rules, declared inputs.

:class:`WorkflowDef` also checks a run's ``inputs`` against the declared inputs (types, ranges,
required, defaults), so ``POST /v1/runs`` refuses bad inputs before a run exists.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError

#: Edge trigger rules: which source outcome makes the edge fire, and whether the target waits
#: for all such incoming edges (``all_*``) or starts on the first one (``any_*``).
TRIGGER_RULES: dict[str, tuple[frozenset[str], bool]] = {
    "all_success": (frozenset({"success"}), True),
    "any_success": (frozenset({"success"}), False),
    "none_failed": (frozenset({"success"}), True),
    "all_failed": (frozenset({"failed"}), True),
    "any_failed": (frozenset({"failed"}), False),
    "all_done": (frozenset({"success", "failed"}), True),
    "always": (frozenset({"success", "failed"}), False),
}
INPUT_TYPES = ("string", "integer", "number", "boolean", "object", "array", "any")
MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class NodeDef:
    """One node: its id, node type, static configuration and input bindings (``inputs``: parameter name to
    a literal value or a :class:`VariableBinding`)."""

    id: str
    type_id: str
    config: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VariableBinding:
    """A node input bound to a workflow variable (``{"type": "variable", "variableName": ...}``)."""

    variable_name: str


@dataclass(frozen=True)
class EdgeDef:
    """One edge from ``source`` to ``target`` with its trigger rule."""

    source: str
    target: str
    trigger_rule: str = "all_success"


@dataclass(frozen=True)
class InputSpec:
    """A declared workflow input (``variables[]`` entry)."""

    name: str
    type: str = "any"
    required: bool = False
    default: Any = None
    has_default: bool = False
    minimum: float | None = None
    maximum: float | None = None


@dataclass
class WorkflowDef:
    """A validated workflow plus the raw document served by ``GET /v1/workflows/{id}``."""

    id: str
    nodes: list[NodeDef]
    edges: list[EdgeDef]
    inputs: list[InputSpec]
    document: dict[str, Any]
    source: str = "built-in"
    node_index: dict[str, NodeDef] = field(init=False)
    entry_nodes: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.node_index = {node.id: node for node in self.nodes}
        targets = {edge.target for edge in self.edges}
        #: Nodes without incoming edges, in declaration order: where execution starts.
        self.entry_nodes = [node.id for node in self.nodes if node.id not in targets]

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check ``inputs`` against the declared inputs; return them with defaults filled in.

        Raises ``400 validation_error`` naming the offending input.
        """
        result = dict(inputs)
        for spec in self.inputs:
            if spec.name not in result:
                if spec.has_default:
                    result[spec.name] = copy.deepcopy(spec.default)
                    continue
                if spec.required:
                    raise ApiError(
                        400,
                        "validation_error",
                        f"Input {spec.name!r} is required by workflow {self.id!r}"
                        f"{_type_hint(spec)}; pass it in 'inputs'.",
                        {"input": spec.name, "workflowId": self.id, "reason": "required"},
                    )
                continue
            _check_input(self.id, spec, result[spec.name])
        return result


def _type_hint(spec: InputSpec) -> str:
    if spec.type == "any":
        return ""
    bounds = ""
    if spec.minimum is not None or spec.maximum is not None:
        low = "" if spec.minimum is None else f"{spec.minimum:g}"
        high = "" if spec.maximum is None else f"{spec.maximum:g}"
        bounds = f" in {low}..{high}"
    return f" (type {spec.type}{bounds})"


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    checks: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "boolean": bool,
        "object": dict,
        "array": list,
    }
    return isinstance(value, checks[kind])


def _check_input(workflow_id: str, spec: InputSpec, value: Any) -> None:
    if not _type_ok(spec.type, value):
        raise ApiError(
            400,
            "validation_error",
            f"Input {spec.name!r} of workflow {workflow_id!r} must be of type {spec.type}, got {type(value).__name__}.",
            {"input": spec.name, "workflowId": workflow_id, "expectedType": spec.type},
        )
    if spec.type in ("integer", "number"):
        low, high = spec.minimum, spec.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            details: dict[str, Any] = {"input": spec.name, "workflowId": workflow_id, "value": value}
            if low is not None:
                details["min"] = low
            if high is not None:
                details["max"] = high
            raise ApiError(
                400,
                "validation_error",
                f"Input {spec.name!r} of workflow {workflow_id!r} is out of range{_type_hint(spec)}: {value!r}.",
                details,
            )
