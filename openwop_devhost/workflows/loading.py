"""Reading workflow documents: validation of one document and the loader of a folder of ``*.json`` files.

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
import json
from pathlib import Path
from typing import Any

from .model import INPUT_TYPES, MAX_ID_LENGTH, TRIGGER_RULES, EdgeDef, InputSpec, NodeDef, VariableBinding, WorkflowDef


class WorkflowLoadError(ValueError):
    """A workflow definition (file) is invalid; the message names the file/workflow and the problem."""


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
    if kind not in INPUT_TYPES:
        raise fail(f"workflow {wf_id!r}: input {name!r} has unknown type {kind!r}; use one of {list(INPUT_TYPES)}")
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
