"""The built-in workflow catalogue: the conformance fixtures of the reference hosts plus devhost extras.

Every host starts with these; a ``workflows_dir`` adds (or replaces, by id) definitions from files.
"""

from __future__ import annotations

import itertools
from typing import Any

from .loading import parse_workflow
from .model import WorkflowDef


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


def _one_delay(wf_id: str, name: str, node_id: str, low: int, high: int, note: str = "") -> dict[str, Any]:
    """One ``core.delay`` node sleeping the required input ``delayMs`` (``low..high``)."""
    return _doc(
        wf_id,
        name,
        f"One core.delay node sleeping inputs.delayMs ({low}..{high}){note}.",
        [_node(node_id, "core.delay")],
        variables=[{"name": "delayMs", "type": "integer", "required": True, "minimum": low, "maximum": high}],
    )


def builtin_documents() -> list[dict[str, Any]]:
    """The raw documents of the built-in catalogue (conformance fixtures + devhost extras)."""
    ten = [f"n{i}" for i in range(1, 11)]
    return [
        _doc("conformance-noop", "Conformance: noop", "One core.noop node.", [_node("noop", "core.noop")]),
        _one_delay("conformance-delay", "Conformance: delay", "delay", 0, 30000),
        _one_delay(
            "conformance-cancellable", "Conformance: cancellable", "wait", 1, 60000, "; cancel it while it runs"
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
