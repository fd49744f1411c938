"""Workflow definitions: the built-in catalogue, the JSON folder loader and input validation.

Definitions use the OpenWOP ``WorkflowDefinition`` shape (the conformance-fixture format of the
reference hosts): ``{id, name?, nodes: [{id, typeId, config?, inputs?}], edges: [{source|sourceNodeId,
target|targetNodeId, triggerRule?}], variables?: [{name, type, required?, default?|defaultValue?,
minimum?, maximum?}]}``. A node's ``inputs`` binds its parameters to workflow variables
(``{"delayMs": {"type": "variable", "variableName": "delayMs"}}``) or to literal values; a variable's
``defaultValue`` (or ``default``) applies when the run's inputs do not set it. An ``inputsSchema``
(JSON Schema object with ``properties``/``required``) is accepted instead of ``variables``. Node
types are resolved at run time, so an unknown ``typeId`` fails the run, not the load.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ApiError

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
_INPUT_TYPES = ("string", "integer", "number", "boolean", "object", "array", "any")
MAX_ID_LENGTH = 128


class WorkflowLoadError(ValueError):
    """A workflow definition (file) is invalid; the message names the file/workflow and the problem."""


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


# ── parsing ─────────────────────────────────────────────────────────────────


def parse_workflow(document: Any, source: str = "built-in") -> WorkflowDef:
    """Validate one workflow document and build a :class:`WorkflowDef`.

    Raises :class:`WorkflowLoadError` with ``source`` and the problem in the message.
    """

    def fail(problem: str) -> WorkflowLoadError:
        return WorkflowLoadError(f"{source}: {problem}")

    if not isinstance(document, dict):
        raise fail("a workflow definition must be a JSON object")
    wf_id = document.get("id")
    if not isinstance(wf_id, str) or not (1 <= len(wf_id) <= MAX_ID_LENGTH):
        raise fail(f"'id' must be a string of 1..{MAX_ID_LENGTH} characters")
    raw_nodes = document.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise fail(f"workflow {wf_id!r}: 'nodes' must be a non-empty array")
    nodes: list[NodeDef] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_nodes):
        where = f"workflow {wf_id!r}: nodes[{index}]"
        if not isinstance(raw, dict):
            raise fail(f"{where} must be an object")
        node_id = raw.get("id")
        if not isinstance(node_id, str) or not node_id:
            raise fail(f"{where}.id must be a non-empty string")
        if node_id in seen:
            raise fail(f"{where}: duplicate node id {node_id!r}")
        seen.add(node_id)
        type_id = raw.get("typeId", raw.get("type"))
        if not isinstance(type_id, str) or not type_id:
            raise fail(f"{where} ({node_id!r}) needs a 'typeId' string such as 'core.noop'")
        config = raw.get("config", {})
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise fail(f"{where} ({node_id!r}): 'config' must be an object")
        nodes.append(
            NodeDef(node_id, type_id, config, _parse_bindings(raw.get("inputs"), f"{where} ({node_id!r})", fail))
        )
    raw_edges = document.get("edges", [])
    if raw_edges is None:
        raw_edges = []
    if not isinstance(raw_edges, list):
        raise fail(f"workflow {wf_id!r}: 'edges' must be an array")
    edges: list[EdgeDef] = []
    for index, raw in enumerate(raw_edges):
        where = f"workflow {wf_id!r}: edges[{index}]"
        if not isinstance(raw, dict):
            raise fail(f"{where} must be an object")
        source_id = raw.get("source", raw.get("sourceNodeId"))
        target_id = raw.get("target", raw.get("targetNodeId"))
        for label, ref in (("source", source_id), ("target", target_id)):
            if not isinstance(ref, str) or ref not in seen:
                raise fail(f"{where}.{label} ({label}NodeId) {ref!r} does not name a node of this workflow")
        rule = raw.get("triggerRule", "all_success")
        if rule not in TRIGGER_RULES:
            raise fail(f"{where}: unknown triggerRule {rule!r}; valid rules: {sorted(TRIGGER_RULES)}")
        edges.append(EdgeDef(str(source_id), str(target_id), str(rule)))
    inputs = _parse_inputs(document, wf_id, fail)
    workflow = WorkflowDef(
        id=wf_id, nodes=nodes, edges=edges, inputs=inputs, document=copy.deepcopy(document), source=source
    )
    if not workflow.entry_nodes:
        raise fail(f"workflow {wf_id!r} has no entry node: every node has an incoming edge")
    return workflow


def _parse_bindings(raw: Any, where: str, fail: Any) -> dict[str, Any]:
    """A node's ``inputs``: variable bindings become :class:`VariableBinding`, anything else is a literal."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail(f"{where}: 'inputs' must be an object mapping parameter names to bindings")
    bindings: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, dict) and value.get("type") == "variable":
            variable = value.get("variableName")
            if not isinstance(variable, str) or not variable:
                raise fail(
                    f"{where}: inputs.{name} is a variable binding without a 'variableName' string, "
                    "e.g. {'type': 'variable', 'variableName': 'delayMs'}"
                )
            bindings[name] = VariableBinding(variable)
        else:
            bindings[name] = copy.deepcopy(value)
    return bindings


def _parse_inputs(document: dict[str, Any], wf_id: str, fail: Any) -> list[InputSpec]:
    specs: list[InputSpec] = []
    variables = document.get("variables", [])
    schema = document.get("inputsSchema")
    if variables is None:
        variables = []
    if not isinstance(variables, list):
        raise fail(f"workflow {wf_id!r}: 'variables' must be an array of {{name, type, required}} objects")
    for index, raw in enumerate(variables):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise fail(f"workflow {wf_id!r}: variables[{index}] needs a non-empty 'name'")
        specs.append(_input_spec(raw["name"], raw, bool(raw.get("required", False)), wf_id, fail))
    if schema is not None:
        if not isinstance(schema, dict) or not isinstance(schema.get("properties", {}), dict):
            raise fail(f"workflow {wf_id!r}: 'inputsSchema' must be a JSON Schema object with 'properties'")
        required = schema.get("required", [])
        if not isinstance(required, list):
            raise fail(f"workflow {wf_id!r}: 'inputsSchema.required' must be an array of names")
        names = {spec.name for spec in specs}
        for name, prop in schema.get("properties", {}).items():
            if name not in names:
                specs.append(_input_spec(name, prop if isinstance(prop, dict) else {}, name in required, wf_id, fail))
        for name in required:
            if name not in {spec.name for spec in specs}:
                specs.append(InputSpec(name=str(name), required=True))
    return specs


def _input_spec(name: str, raw: dict[str, Any], required: bool, wf_id: str, fail: Any) -> InputSpec:
    kind = raw.get("type", "any")
    if kind not in _INPUT_TYPES:
        raise fail(f"workflow {wf_id!r}: input {name!r} has unknown type {kind!r}; use one of {list(_INPUT_TYPES)}")
    low = raw.get("minimum", raw.get("min"))
    high = raw.get("maximum", raw.get("max"))
    for label, bound in (("minimum", low), ("maximum", high)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
            raise fail(f"workflow {wf_id!r}: input {name!r} {label} must be a number")
    return InputSpec(
        name=name,
        type=str(kind),
        required=required,
        default=raw["default"] if "default" in raw else raw.get("defaultValue"),
        has_default="default" in raw or "defaultValue" in raw,
        minimum=low,
        maximum=high,
    )


def load_workflows_dir(directory: str | Path) -> dict[str, WorkflowDef]:
    """Load every ``*.json`` file in ``directory`` (not recursive) as one workflow definition.

    Raises :class:`WorkflowLoadError` naming the file for unreadable JSON, invalid definitions
    and duplicate workflow ids.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise WorkflowLoadError(f"{folder}: workflows directory does not exist or is not a directory")
    loaded: dict[str, WorkflowDef] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise WorkflowLoadError(f"{path}: cannot read file: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise WorkflowLoadError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
        workflow = parse_workflow(document, source=str(path))
        if workflow.id in loaded:
            raise WorkflowLoadError(
                f"{path}: duplicate workflow id {workflow.id!r} (also defined in {loaded[workflow.id].source})"
            )
        loaded[workflow.id] = workflow
    return loaded


# ── built-in catalogue ───────────────────────────────────────────────────────


def _node(node_id: str, type_id: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "typeId": type_id,
        "name": node_id,
        "position": {"x": 0, "y": 0},
        "config": config,
        "inputs": {},
    }


def _edge(source: str, target: str, rule: str = "all_success") -> dict[str, Any]:
    return {"id": f"{source}-{target}", "sourceNodeId": source, "targetNodeId": target, "triggerRule": rule}


def _chain(ids: list[str]) -> list[dict[str, Any]]:
    return [_edge(a, b) for a, b in itertools.pairwise(ids)]


def _doc(
    wf_id: str,
    name: str,
    description: str,
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]] | None = None,
    variables: list[dict[str, Any]] | None = None,
    tags: tuple[str, ...] = ("conformance",),
) -> dict[str, Any]:
    return {
        "id": wf_id,
        "name": name,
        "version": "1.0",
        "description": description,
        "nodes": nodes,
        "edges": edges or [],
        "triggers": [{"id": "manual", "type": "manual", "enabled": True}],
        "variables": variables or [],
        "metadata": {"tags": list(tags)},
        "settings": {"timeout": 0},
        "configurableSchema": {"type": "object"},
    }


def _gate(node_id: str, title: str, **extra: Any) -> dict[str, Any]:
    return _node(
        node_id,
        "core.approvalGate",
        title=title,
        description=f"{title} — resolve with {{'action': 'accept'}} or {{'action': 'reject'}}.",
        actions=["accept", "reject"],
        **extra,
    )


def builtin_documents() -> list[dict[str, Any]]:
    """The raw documents of the built-in catalogue (conformance fixtures + devhost extras)."""
    ten = [f"n{i}" for i in range(1, 11)]
    return [
        _doc("conformance-noop", "Conformance: noop", "One core.noop node.", [_node("noop", "core.noop")]),
        _doc(
            "conformance-delay",
            "Conformance: delay",
            "One core.delay node sleeping inputs.delayMs (0..30000).",
            [_node("delay", "core.delay")],
            variables=[{"name": "delayMs", "type": "integer", "required": True, "minimum": 0, "maximum": 30000}],
        ),
        _doc(
            "conformance-cancellable",
            "Conformance: cancellable",
            "One core.delay node sleeping inputs.delayMs (1..60000); cancel it while it runs.",
            [_node("wait", "core.delay")],
            variables=[{"name": "delayMs", "type": "integer", "required": True, "minimum": 1, "maximum": 60000}],
        ),
        _doc(
            "conformance-failure",
            "Conformance: failure",
            "One core.fail node: run.failed with conformance_test_failure.",
            [_node("fail", "core.fail")],
        ),
        _doc(
            "conformance-multi-node",
            "Conformance: multi-node",
            "A noop chain a -> b -> c.",
            [_node("a", "core.noop"), _node("b", "core.noop"), _node("c", "core.noop")],
            _chain(["a", "b", "c"]),
        ),
        _doc(
            "conformance-identity",
            "Conformance: identity",
            "Echoes inputs.payload into the outputs/variables.",
            [_node("identity", "core.identity")],
            variables=[{"name": "payload", "type": "object", "required": True}],
        ),
        _doc(
            "conformance-approval",
            "Conformance: approval",
            "Approval gate 'gate'; accept completes the run, reject fails it (approval_rejected).",
            [_gate("gate", "Conformance approval")],
            tags=("conformance", "hitl"),
        ),
        _doc(
            "conformance-approval-timeout",
            "Conformance: approval (timeout)",
            "Approval gate with timeoutMs 1500; unresolved it is rejected (timeout) and the run fails.",
            [_gate("gate", "Conformance approval (timeout)", timeoutMs=1500)],
            tags=("conformance", "hitl"),
        ),
        _doc(
            "conformance-approval-timeout-approve",
            "Conformance: approval (timeout, onTimeout approve)",
            "Like conformance-approval-timeout with onTimeout 'approve': timeouts never grant, the run fails.",
            [_gate("gate", "Conformance approval (timeout approve)", timeoutMs=1500, onTimeout="approve")],
            tags=("conformance", "hitl"),
        ),
        _doc(
            "conformance-approval-reject-routed",
            "Conformance: approval (reject routed)",
            "Reject routes over an any_failed edge to on-reject; on-accept is skipped; the run completes.",
            [
                _gate("gate", "Conformance approval (reject routed)"),
                _node("on-reject", "core.noop"),
                _node("on-accept", "core.noop"),
            ],
            [_edge("gate", "on-reject", "any_failed"), _edge("gate", "on-accept", "all_success")],
            tags=("conformance", "hitl"),
        ),
        _doc(
            "conformance-approval-reject-loopback",
            "Conformance: approval (reject loops back)",
            "start -> gate; reject goes to revise and back to gate, which asks again with a new key.",
            [
                _node("start", "core.noop"),
                _gate("gate", "Conformance approval (reject loops back)"),
                _node("revise", "core.noop"),
            ],
            [
                _edge("start", "gate", "any_success"),
                _edge("gate", "revise", "any_failed"),
                _edge("revise", "gate", "any_success"),
            ],
            tags=("conformance", "hitl"),
        ),
        _doc(
            "conformance-clarification",
            "Conformance: clarification",
            "Clarification gate asking q1 'What is your favorite color?'.",
            [
                _node(
                    "clarify",
                    "core.clarificationGate",
                    questions=[{"id": "q1", "question": "What is your favorite color?"}],
                )
            ],
            tags=("conformance", "hitl"),
        ),
        _doc(
            "conformance-idempotent",
            "Conformance: idempotent",
            "One noop; inputs.nonce (string) is required so bodies can differ.",
            [_node("noop", "core.noop")],
            variables=[{"name": "nonce", "type": "string", "required": True}],
        ),
        _doc(
            "conformance-cap-breach",
            "Conformance: cap breach",
            "Ten noops; with configurable.recursionLimit 5 the run fails with recursion_limit_exceeded.",
            [_node(node_id, "core.noop") for node_id in ten],
            _chain(ten),
        ),
        _doc(
            "conformance-capability-missing",
            "Conformance: capability missing",
            "A node requiring conformance.never-provided: fails with capability_not_provided.",
            [_node("requires", "conformance.requiresMissing", requires=["conformance.never-provided"])],
        ),
        _doc(
            "conformance-interrupt-external-event",
            "Conformance: external event",
            "Waits (waiting-external) for an external event resolved with {'eventPayload': ...}; "
            "inputs.timeoutMs (default 60000) makes it fail when nothing arrives.",
            [
                _node(
                    "wait-event",
                    "core.interrupt",
                    kind="external-event",
                    eventType="conformance.external.event",
                    correlation={"correlationId": "conformance-external-1"},
                )
            ],
            variables=[{"name": "timeoutMs", "type": "integer", "default": 60000, "minimum": 1, "maximum": 3600000}],
            tags=("conformance", "hitl"),
        ),
        _doc(
            "devhost-burst",
            "Devhost: event burst",
            "Emits inputs.count log.appended events (debug-only) of about inputs.payloadBytes each.",
            [_node("burst", "devhost.burst")],
            variables=[
                {"name": "count", "type": "integer", "default": 1000, "minimum": 0, "maximum": 10_000_000},
                {"name": "payloadBytes", "type": "integer", "default": 250, "minimum": 0, "maximum": 1_000_000},
            ],
            tags=("devhost",),
        ),
        _doc(
            "devhost-artifact",
            "Devhost: artifact",
            "Creates one JSON artifact (artifact.created) holding inputs.data.",
            [_node("make-artifact", "devhost.artifact", artifactType="json")],
            variables=[{"name": "data", "type": "any", "default": {"hello": "world"}}],
            tags=("devhost",),
        ),
        _doc(
            "example-report",
            "Example: a report that takes a few seconds",
            "fetch and review (core.delay, inputs.workMs each, default 1500) then echo (core.identity): echoes "
            "inputs.payload after about 3 s, so a waiting scheduler task defers and logs node progress.",
            [
                {**_node("fetch", "core.delay"), "inputs": {"delayMs": {"type": "variable", "variableName": "workMs"}}},
                {
                    **_node("review", "core.delay"),
                    "inputs": {"delayMs": {"type": "variable", "variableName": "workMs"}},
                },
                _node("echo", "core.identity"),
            ],
            _chain(["fetch", "review", "echo"]),
            variables=[
                {"name": "payload", "type": "object", "required": True},
                {"name": "workMs", "type": "integer", "defaultValue": 1500, "minimum": 0, "maximum": 30000},
            ],
            tags=("example",),
        ),
    ]


def builtin_workflows() -> dict[str, WorkflowDef]:
    """The built-in catalogue, parsed."""
    return {doc["id"]: parse_workflow(doc) for doc in builtin_documents()}
