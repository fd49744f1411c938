"""Progress of a run for people: one log line per meaningful event as it arrives, and a Prefect markdown
artifact summarising the run (status, duration, node timeline, link) when the flow is done with it.

:class:`RunProgress` is the ``on_event`` callback every wait in this package uses, so logs and the
artifact are built from the same events.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from prefect.artifacts import create_markdown_artifact

from openwop_core import OpenwopClient, OpenwopError, ProgressLines, RunEvent
from openwop_prefect.events import run_url
from openwop_prefect.runs import OpenwopRunResult

__all__ = [
    "NodeTiming",
    "RunProgress",
    "artifact_key",
    "publish_final_artifact",
    "publish_run_artifact",
    "render_run_markdown",
]

_NODE_STATES = {
    "node.started": "running",
    "node.completed": "completed",
    "node.failed": "failed",
    "node.skipped": "skipped",
    "node.cancelled": "cancelled",
    "node.suspended": "waiting",
    "interrupt.requested": "waiting",
    "approval.requested": "waiting",
    "clarification.requested": "waiting",
    "node.resumed": "running",
    "interrupt.resolved": "running",
    "approval.received": "running",
    "clarification.resolved": "running",
}
_FINAL_NODE_STATES = ("completed", "failed", "skipped", "cancelled")


@dataclass
class NodeTiming:
    """What the events said about one node: its latest state and when it started and ended."""

    node_id: str
    state: str = "pending"
    started: str | None = None
    ended: str | None = None
    duration_ms: Any = None

    @property
    def started_at(self) -> str | None:
        """When the node started: its ``node.started`` event, else its end minus ``durationMs``. (A
        ``node.started`` event is not in the default ``updates`` stream mode, so most waits never see it.)"""
        if self.started is not None or self.ended is None or not isinstance(self.duration_ms, int | float):
            return self.started
        try:
            ended = datetime.fromisoformat(self.ended.replace("Z", "+00:00"))
        except ValueError:
            return None
        started = ended - timedelta(milliseconds=self.duration_ms)
        return started.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class RunProgress:
    """Logs each event worth a line (``describe_event``) and keeps the node timeline for the artifact."""

    logger: logging.Logger | logging.LoggerAdapter[Any]
    run_id: str = ""
    nodes: dict[str, NodeTiming] = field(default_factory=dict)
    events_seen: int = 0
    #: The artifacts the run announced (``artifact.created``): type by artifact id.
    created: dict[str, str | None] = field(default_factory=dict)
    _lines: ProgressLines = field(default_factory=ProgressLines, repr=False)

    def __call__(self, event: RunEvent) -> None:
        """The ``on_event`` callback: log, then record."""
        self.events_seen += 1
        line = self._lines(event)
        node_id = event.node_id
        if line:
            self.logger.info("OpenWOP run %s: %s", self.run_id or event.run_id, line)
        if event.type == "artifact.created":
            self._artifact_created(event.payload_dict)
        state = _NODE_STATES.get(event.type)
        if not node_id or state is None:
            return
        timing = self.nodes.setdefault(node_id, NodeTiming(node_id))
        timing.state = state
        if event.type == "node.started" and timing.started is None:
            timing.started = event.timestamp
        if state in _FINAL_NODE_STATES:
            timing.ended = event.timestamp
            timing.duration_ms = event.payload_dict.get("durationMs", timing.duration_ms)

    def _artifact_created(self, payload: dict[str, Any]) -> None:
        artifact_id, kind = payload.get("artifactId"), payload.get("artifactType")
        if isinstance(artifact_id, str) and artifact_id:
            self.created[artifact_id] = kind if isinstance(kind, str) else None

    def settle(self, node_states: dict[str, Any]) -> None:
        """Take the nodes' final states from the run's snapshot (``nodeStates``): after the flow stops following
        a run (it gave up and cancelled it) the events that ended its nodes are never seen, and the artifact
        would still show a cancelled run's gate as waiting."""
        for node_id, reported in node_states.items():
            status = reported.get("status") if isinstance(reported, dict) else None
            timing = self.nodes.get(node_id)
            if timing is not None and status in _FINAL_NODE_STATES and timing.state not in _FINAL_NODE_STATES:
                timing.state = status
                ended = reported.get("endedAt") or reported.get("completedAt")
                timing.ended = timing.ended or (ended if isinstance(ended, str) else None)


def artifact_key(workflow_id: str) -> str:
    """A valid Prefect artifact key (lowercase letters, digits, dashes) derived from the workflow id."""
    slug = re.sub(r"[^a-z0-9]+", "-", workflow_id.lower()).strip("-")
    return f"openwop-{slug}"[:100].rstrip("-") if slug else "openwop-run"


def _duration(result: OpenwopRunResult) -> str:
    seconds = result.duration_seconds
    return "unknown" if seconds is None else f"{seconds:.1f} s"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_run_markdown(result: OpenwopRunResult, progress: RunProgress, *, base_url: str) -> str:
    """The artifact's markdown: a status table, the error or pending interrupt, and the node timeline."""
    link = run_url(base_url, result.run_id)
    lines = [
        f"# OpenWOP run `{result.run_id}`",
        "",
        "| | |",
        "|---|---|",
        f"| Workflow | `{_cell(result.workflow_id)}` |",
        f"| Status | **{_cell(result.status)}** |",
        f"| Duration | {_duration(result)} |",
        f"| Events seen | {progress.events_seen} |",
        f"| Run | [{_cell(link)}]({link}) |",
    ]
    if result.trace_id:
        lines.append(f"| Trace id | `{_cell(result.trace_id)}` |")
    if result.error is not None:
        lines.append(f"| Error | `{_cell(result.error.code)}`: {_cell(result.error.message)} |")
    if result.interrupt is not None:
        pending = result.interrupt
        lines.append(
            f"| Waiting on | {_cell(pending.kind)} at node `{_cell(pending.node_id)}`: {_cell(pending.title)} |"
        )
    if progress.nodes:
        lines += ["", "## Nodes", "", "| Node | State | Started | Ended | Duration (ms) |", "|---|---|---|---|---|"]
        for timing in progress.nodes.values():
            lines.append(
                f"| `{_cell(timing.node_id)}` | {_cell(timing.state)} | {_cell(timing.started_at)} | "
                f"{_cell(timing.ended)} | {_cell(timing.duration_ms)} |"
            )
    if result.outcome == "completed" and result.outputs:
        lines += ["", f"Outputs: {', '.join(f'`{_cell(k)}`' for k in sorted(result.outputs))}"]
    return "\n".join(lines) + "\n"


def publish_run_artifact(result: OpenwopRunResult, progress: RunProgress, *, base_url: str) -> None:
    """Create the markdown artifact (keyed by workflow); best effort: a failure is logged, not raised."""
    markdown = render_run_markdown(result, progress, base_url=base_url)
    try:
        create_markdown_artifact(
            markdown=markdown,
            key=artifact_key(result.workflow_id or "run"),
            description=f"OpenWOP run {result.run_id} ({result.status})",
        )
    except Exception as exc:
        progress.logger.warning("Could not publish the OpenWOP run artifact: %s", exc)


def publish_final_artifact(client: OpenwopClient, workflow_id: str, progress: RunProgress) -> None:
    """The artifact for a run the flow gave up on, from the run's snapshot after the cancel (best effort)."""
    try:
        snapshot = client.runs_get(progress.run_id)
    except OpenwopError as exc:
        progress.logger.debug("Could not read OpenWOP run %s for its artifact: %s", progress.run_id, exc)
        return
    progress.settle(snapshot.node_states or {})
    publish_run_artifact(OpenwopRunResult.from_snapshot(snapshot, workflow_id), progress, base_url=client.base_url)
