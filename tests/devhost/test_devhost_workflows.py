"""Loading workflows from a folder: good definitions run, bad files fail naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from devhost_helpers import assert_error, cli_host, create, wait_status

from openwop_devhost import DevHost, WorkflowLoadError, create_app

TERMINAL = {"completed", "failed", "cancelled"}


def _write(folder: Path, name: str, document: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document, encoding="utf-8")
    return path


def test_folder_workflows_run(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "diamond.json",
        {
            "id": "my-diamond",
            "nodes": [
                {"id": "start", "typeId": "core.noop"},
                {"id": "left", "typeId": "core.identity", "config": {"payload": {"side": "left"}}},
                {"id": "right", "type": "core.delay", "config": {"delayMs": 10}},
                {"id": "join", "typeId": "core.noop"},
            ],
            "edges": [
                {"source": "start", "target": "left"},
                {"sourceNodeId": "start", "targetNodeId": "right"},
                {"source": "left", "target": "join"},
                {"source": "right", "target": "join"},
            ],
            "inputsSchema": {"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]},
        },
    )
    _write(tmp_path, "unknown.json", {"id": "uses-unknown", "nodes": [{"id": "x", "typeId": "acme.magic"}]})
    _write(tmp_path, "notes.txt", "not a workflow")
    with (
        DevHost(workflows_dir=tmp_path) as host,
        httpx.Client(base_url=host.base_url, headers={"Authorization": f"Bearer {host.api_key}"}) as c,
    ):
        assert c.get("/v1/workflows/my-diamond").json()["id"] == "my-diamond"
        missing = c.post("/v1/runs", json={"workflowId": "my-diamond"})
        assert assert_error(missing, 400, "validation_error")["details"]["input"] == "who"
        run_id = create(c, "my-diamond", inputs={"who": "me"})
        snapshot = wait_status(c, run_id, TERMINAL)
        assert snapshot["status"] == "completed"
        assert snapshot["variables"] == {"who": "me", "payload": {"side": "left"}, "delayMs": 10}
        started = [e["nodeId"] for e in host.events(run_id) if e["type"] == "node.started"]
        assert started == ["start", "left", "right", "join"]
        failing = create(c, "uses-unknown")
        error = wait_status(c, failing, TERMINAL)["error"]
        assert error["code"] == "unknown_node_type" and "acme.magic" in error["message"]
        assert "conformance-noop" in c.get("/.well-known/openwop").json()["fixtures"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{oops", "invalid JSON at line 1"),
        ({"nodes": [{"id": "a", "typeId": "core.noop"}]}, "'id' must be a string"),
        ({"id": "w", "nodes": []}, "'nodes' must be a non-empty array"),
        ({"id": "w", "nodes": [{"id": "a"}]}, "needs a 'typeId'"),
        (
            {"id": "w", "nodes": [{"id": "a", "typeId": "core.noop"}, {"id": "a", "typeId": "core.noop"}]},
            "duplicate node id",
        ),
        (
            {"id": "w", "nodes": [{"id": "a", "typeId": "core.noop"}], "edges": [{"source": "a", "target": "b"}]},
            "'b' does not name a node",
        ),
        (
            {
                "id": "w",
                "nodes": [{"id": "a", "typeId": "core.noop"}],
                "edges": [{"source": "a", "target": "a", "triggerRule": "maybe"}],
            },
            "unknown triggerRule 'maybe'",
        ),
        (
            {"id": "w", "nodes": [{"id": "a", "typeId": "core.noop"}], "edges": [{"source": "a", "target": "a"}]},
            "no entry node",
        ),
        (
            {"id": "w", "nodes": [{"id": "a", "typeId": "core.noop"}], "variables": [{"name": "x", "type": "date"}]},
            "unknown type 'date'",
        ),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path: Path, content: object, problem: str) -> None:
    path = _write(tmp_path, "broken.json", content)
    with pytest.raises(WorkflowLoadError) as caught:
        create_app("k", workflows_dir=tmp_path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_duplicate_ids_and_missing_folder(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", {"id": "dup", "nodes": [{"id": "n", "typeId": "core.noop"}]})
    _write(tmp_path, "b.json", {"id": "dup", "nodes": [{"id": "n", "typeId": "core.noop"}]})
    with pytest.raises(WorkflowLoadError, match="duplicate workflow id 'dup'"):
        DevHost(workflows_dir=tmp_path)
    with pytest.raises(WorkflowLoadError, match="does not exist"):
        create_app("k", workflows_dir=tmp_path / "nope")


#: A workflow file as the reference hosts write them (conformance-fixture format): node inputs bound to
#: workflow variables, variables with a ``defaultValue``, plus the fields this host only serves back.
REFERENCE_FORMAT = {
    "id": "reference-format-delay",
    "name": "Reference format: delay bound to a variable",
    "version": "1.0",
    "description": "start -> wait (core.delay, delayMs bound to a variable) -> echo (core.identity).",
    "nodes": [
        {
            "id": "start",
            "typeId": "core.noop",
            "name": "Start",
            "position": {"x": 0, "y": 0},
            "config": {},
            "inputs": {},
        },
        {
            "id": "wait",
            "typeId": "core.delay",
            "name": "Wait",
            "position": {"x": 200, "y": 0},
            "config": {},
            "inputs": {"delayMs": {"type": "variable", "variableName": "delayMs"}},
        },
        {
            "id": "echo",
            "typeId": "core.identity",
            "name": "Echo",
            "position": {"x": 400, "y": 0},
            "config": {},
            "inputs": {"payload": {"type": "variable", "variableName": "order"}},
        },
    ],
    "edges": [
        {"id": "start-wait", "sourceNodeId": "start", "targetNodeId": "wait"},
        {"id": "wait-echo", "sourceNodeId": "wait", "targetNodeId": "echo", "triggerRule": "all_success"},
    ],
    "triggers": [{"id": "manual", "type": "manual", "enabled": True}],
    "variables": [
        {"name": "delayMs", "type": "number", "required": False, "defaultValue": 1200},
        {"name": "order", "type": "object", "defaultValue": {"sku": "A-1"}},
    ],
    "metadata": {"tags": ["example"]},
    "settings": {"timeout": 0},
}


def test_reference_format_file_resolves_bindings_against_variable_defaults(tmp_path: Path) -> None:
    """Loaded with ``--workflows``: a binding whose variable the run's inputs do not set takes the variable's
    ``defaultValue`` (the delay really waits), and the run's inputs override the defaults."""
    _write(tmp_path, "reference.json", REFERENCE_FORMAT)
    with (
        cli_host("--api-key", "k-ref", "--workflows", str(tmp_path)) as (url, _),
        httpx.Client(base_url=url, headers={"Authorization": "Bearer k-ref"}, timeout=15) as c,
    ):
        defaults = wait_status(c, create(c, "reference-format-delay"), TERMINAL)
        overridden = wait_status(
            c, create(c, "reference-format-delay", inputs={"delayMs": 5, "order": {"sku": "B-2"}}), TERMINAL
        )
        events = c.get(f"/v1/runs/{defaults['runId']}/events/poll").json()["events"]
    assert defaults["status"] == "completed", defaults
    assert defaults["nodeStates"]["wait"]["outputs"] == {"delayMs": 1200}
    assert defaults["variables"]["payload"] == {"sku": "A-1"}
    (wait_done,) = [e for e in events if e["type"] == "node.completed" and e["nodeId"] == "wait"]
    assert wait_done["payload"]["durationMs"] >= 1000  # it slept the default (1200 ms), not 0
    assert overridden["status"] == "completed", overridden
    assert overridden["nodeStates"]["wait"]["outputs"] == {"delayMs": 5}
    assert overridden["variables"]["payload"] == {"sku": "B-2"}


def test_literal_and_unbound_node_inputs(tmp_path: Path) -> None:
    """A literal node input is the parameter's value; a binding to a variable that is neither declared nor
    given leaves the node's own default (core.delay: 0 ms); a binding without ``variableName`` fails the load."""
    nodes = [
        {"id": "literal", "typeId": "core.delay", "inputs": {"delayMs": 7}},
        {"id": "unbound", "typeId": "core.delay", "inputs": {"delayMs": {"type": "variable", "variableName": "nope"}}},
    ]
    _write(
        tmp_path,
        "w.json",
        {"id": "inputs-kinds", "nodes": nodes, "edges": [{"source": "literal", "target": "unbound"}]},
    )
    with (
        DevHost(workflows_dir=tmp_path) as host,
        httpx.Client(base_url=host.base_url, headers={"Authorization": f"Bearer {host.api_key}"}) as c,
    ):
        snapshot = wait_status(c, create(c, "inputs-kinds"), TERMINAL)
    assert snapshot["nodeStates"]["literal"]["outputs"] == {"delayMs": 7}
    assert snapshot["nodeStates"]["unbound"]["outputs"] == {"delayMs": 0}
    bad = tmp_path / "bad"
    bad.mkdir()
    _write(
        bad,
        "b.json",
        {"id": "b", "nodes": [{"id": "n", "typeId": "core.delay", "inputs": {"delayMs": {"type": "variable"}}}]},
    )
    with pytest.raises(WorkflowLoadError, match=r"inputs.delayMs is a variable binding without a 'variableName'"):
        create_app("k", workflows_dir=bad)
