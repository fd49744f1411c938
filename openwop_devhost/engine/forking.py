"""``:fork``: a new run that inherits a prefix of another run's event log and continues from there.

The inherited events keep their sequences (``runId`` and ``eventId`` rewritten). The fork's graph
walk is rebuilt by replaying the recorded node outcomes of that prefix, so execution continues at
the node boundary: completed nodes are not run again, a node started but not finished in the
prefix runs again. ``replay`` reuses the source's recorded interrupt decisions; ``branch``
re-executes everything after ``fromSeq`` (a gate asks again).
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from ..errors import ApiError, dumps
from .events import VALUES_EVENT_TYPES
from .execution import Engine
from .runoptions import RunOptions
from .runs import Event, Run
from .walk import GraphWalk


def fork_run(engine: Engine, source: Run, mode: str, from_seq: int, options: RunOptions, base_url: str) -> Run:
    """Fork ``source``: inherit events ``< from_seq``, then re-execute from that node boundary."""
    if from_seq > source.last_sequence:
        raise ApiError(
            422,
            "from_seq_out_of_range",
            f"fromSeq {from_seq} is beyond the source run's event log (last sequence {source.last_sequence}).",
            {"sourceRunId": source.run_id, "fromSeq": from_seq, "lastSequence": source.last_sequence},
        )
    run = engine.new_run(
        source.workflow,
        source.inputs,
        options,
        tenant_id=source.tenant_id,
        base_url=base_url,
        callback_url=source.callback_url,
    )
    run.source_run_id = source.run_id
    run.fork_mode = mode
    run.forked_from = {"runId": source.run_id, "fromSeq": from_seq, "mode": mode}
    walk = run.walk
    assert walk is not None
    unfinished: str | None = None
    for event in source.events[:from_seq]:
        unfinished = _inherit(engine, run, walk, source, event, unfinished)
    if unfinished is not None:  # started but not finished in the prefix: run it again
        run.executions -= 1
        run.visits[unfinished] -= 1
        run.node_states[unfinished]["status"] = "pending"
        walk.push_front(unfinished)
    run.current_node_id = None
    if mode == "replay":
        run.recorded_resumes = _recorded_resumes(source)
    engine.start(run, announce=from_seq == 0)
    return run


def _inherit(
    engine: Engine, run: Run, walk: GraphWalk, source: Run, event: Event, unfinished: str | None
) -> str | None:
    doc = copy.deepcopy(event.doc)
    doc["runId"] = run.run_id
    doc["eventId"] = f"evt_{run.run_id[4:]}_{event.sequence}"
    node_id = doc.get("nodeId")
    raw_payload = doc.get("payload")
    payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
    if event.type == "node.started" and isinstance(node_id, str):
        run.executions += 1
        run.visits[node_id] += 1
        walk.discard(node_id)
        run.node_states[node_id].update({"status": "running", "startedAt": doc["timestamp"]})
        run.node_states[node_id]["executions"] = run.node_states[node_id].get("executions", 0) + 1
        run.current_node_id = node_id
        unfinished = node_id
    elif event.type == "node.completed" and isinstance(node_id, str):
        outputs = payload.get("outputs") or {}
        run.node_states[node_id].update({"status": "completed", "outputs": outputs, "completedAt": doc["timestamp"]})
        run.variables.update(copy.deepcopy(outputs))
        run.outputs.update(copy.deepcopy(outputs))
        walk.record(node_id, "success")
        run.current_node_id = None
        unfinished = None
    elif event.type == "node.failed" and isinstance(node_id, str):
        error = payload.get("error") or {"code": "unknown", "message": "inherited failure"}
        run.node_states[node_id].update({"status": "failed", "error": error, "completedAt": doc["timestamp"]})
        if not walk.record(node_id, "failed"):
            run.pending_failure = (error, node_id)
        run.current_node_id = None
        unfinished = None
    elif event.type == "node.skipped" and isinstance(node_id, str):
        run.node_states[node_id]["status"] = "skipped"
        run.skipped_reported.add(node_id)
    elif event.type == "artifact.created":
        artifact_id = payload.get("artifactId")
        if isinstance(artifact_id, str) and artifact_id in source.artifacts:
            run.artifacts[artifact_id] = {**copy.deepcopy(source.artifacts[artifact_id]), "runId": run.run_id}
    run.status = "running"
    inherited = Event(event.sequence, event.type, doc, dumps(doc))
    run.events.append(inherited)
    if event.type in VALUES_EVENT_TYPES:
        inherited.snapshot_json = dumps(engine.snapshot(run))
    return unfinished


def _recorded_resumes(source: Run) -> dict[tuple[str, int], Any]:
    """Final resume values of ``source`` keyed by ``(nodeId, visit)``, for replay forks."""
    visits: Counter[str] = Counter()
    recorded: dict[tuple[str, int], Any] = {}
    for event in source.events:
        node_id = event.doc.get("nodeId")
        if not isinstance(node_id, str):
            continue
        if event.type == "node.started":
            visits[node_id] += 1
        elif event.type == "interrupt.resolved":
            payload = event.doc.get("payload") or {}
            if "resumeValue" in payload and payload.get("resolvedBy") != "timeout":
                recorded[(node_id, visits[node_id] - 1)] = copy.deepcopy(payload["resumeValue"])
    return recorded
