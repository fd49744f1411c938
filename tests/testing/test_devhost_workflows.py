"""Loading workflows from a folder: good definitions run, bad files fail naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from devhost_helpers import assert_error, create, wait_status

from openwop_core.testing import DevHost, WorkflowLoadError, create_app

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
