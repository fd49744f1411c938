"""Prefect events for an OpenWOP run's lifecycle, so automations can react to it (notify when a run waits
for input, start a deployment when one completed).

Names: ``openwop.run.<what happened>``, the OpenWOP event type (``run.completed``) under the ``openwop``
namespace, lowercase like Prefect's own non-state events (``prefect.deployment.created``,
``prefect.asset.materialization.succeeded``); Prefect capitalises only the state events, which carry a Prefect
state's name (``prefect.flow-run.Completed``). The resource is ``openwop.run.<run id>``, named after the
workflow; Prefect's events worker relates it to the flow run (and task run) it was emitted from, with the
roles Prefect uses for its own events (``flow-run``, ``task-run``, ``flow``, ``deployment``, ``tag``).

The payload is small and holds no inputs, outputs, API key or interrupt token. Emitting never fails the flow:
a failure is logged at debug level.

The artifacts a completed run announced (``artifact.created``) become Prefect assets, with the event Prefect's
materializing tasks and prefect-dbt emit (``prefect.asset.materialization.succeeded``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from prefect.assets import Asset, AssetProperties
from prefect.context import AssetContext
from prefect.events import emit_event

from openwop_core import current_trace_id
from openwop_prefect.runs import OpenwopRunResult, StartedRun

__all__ = [
    "MATERIALIZATION_SUCCEEDED",
    "RUN_CANCELLED",
    "RUN_COMPLETED",
    "RUN_CREATED",
    "RUN_FAILED",
    "RUN_RESUMED",
    "RUN_WAITING_FOR_INPUT",
    "artifact_asset",
    "emit_created",
    "emit_materializations",
    "emit_outcome",
    "emit_run_event",
    "run_url",
]

RUN_CREATED = "openwop.run.created"
RUN_WAITING_FOR_INPUT = "openwop.run.waiting-for-input"
RUN_RESUMED = "openwop.run.resumed"
RUN_COMPLETED = "openwop.run.completed"
RUN_FAILED = "openwop.run.failed"
RUN_CANCELLED = "openwop.run.cancelled"
#: Prefect's own event for a materialized asset (``prefect.context.AssetContext.emit_events``).
MATERIALIZATION_SUCCEEDED = "prefect.asset.materialization.succeeded"
#: What an asset key may not contain (``prefect.types.names.RESTRICTED_ASSET_CHARACTERS``).
_RESTRICTED = re.compile(r"[\s#?&%\"'<>\[\]{}|\\^]")

#: The event for each outcome a wait ends with (a run still going emits nothing).
_OUTCOME_EVENTS = {
    "completed": RUN_COMPLETED,
    "failed": RUN_FAILED,
    "terminal-unknown": RUN_FAILED,
    "cancelled": RUN_CANCELLED,
    "interrupted": RUN_WAITING_FOR_INPUT,
}

log = logging.getLogger("openwop_prefect.events")


def run_url(base_url: str, run_id: str) -> str:
    """The run's address on the host (``<base url>/v1/runs/<run id>``)."""
    return f"{base_url.rstrip('/')}/v1/runs/{run_id}"


def emit_run_event(
    event: str,
    run_id: str,
    *,
    base_url: str,
    workflow_id: str | None,
    status: str | None,
    **details: Any,
) -> None:
    """Emit ``event`` about run ``run_id`` (best effort). ``details`` join the payload (None values are left
    out); the trace id of the current operation is added when there is one."""
    resource = {"prefect.resource.id": f"openwop.run.{run_id}", "openwop.host": base_url}
    if workflow_id:
        resource["prefect.resource.name"] = workflow_id
        resource["openwop.workflow-id"] = workflow_id
    if status:
        resource["openwop.run-status"] = status
    payload = {
        "run_id": run_id,
        "status": status,
        "workflow_id": workflow_id,
        "host": base_url,
        "run_url": run_url(base_url, run_id),
        "trace_id": current_trace_id(),
        **details,
    }
    try:
        emit_event(event, resource=resource, payload={k: v for k, v in payload.items() if v is not None})
    except Exception as exc:  # events are a courtesy: never fail the flow for one
        log.debug("Could not emit the Prefect event %s for OpenWOP run %s: %s", event, run_id, exc)


def emit_created(started: StartedRun, *, base_url: str, workflow_id: str | None) -> None:
    """Emit ``openwop.run.created`` for a run just started (not for one a retry reattached to)."""
    if not started.reattached:
        emit_run_event(
            RUN_CREATED, started.run_id, base_url=base_url, workflow_id=workflow_id, status=started.answer.status
        )


def emit_outcome(result: OpenwopRunResult, *, base_url: str, artifacts: Mapping[str, str | None] | None = None) -> None:
    """Emit the event of how a wait ended: completed, failed, cancelled, or waiting for input (nothing for a
    run still going); for a completed run, also the materialization of each of ``artifacts`` (type by id, those
    the run announced)."""
    if result.outcome == "completed" and artifacts:
        emit_materializations(result, artifacts, base_url=base_url)
    event = _OUTCOME_EVENTS.get(result.outcome)
    if event is None:
        return
    details: dict[str, Any] = {"trace_id": result.trace_id} if result.trace_id else {}
    if result.error is not None:
        details["error"] = {"code": result.error.code, "message": result.error.message}
    if result.failed_node_id:
        details["failed_node_id"] = result.failed_node_id
    if result.interrupt is not None:
        details["interrupt"] = {"node_id": result.interrupt.node_id, "kind": result.interrupt.kind}
    emit_run_event(
        event, result.run_id, base_url=base_url, workflow_id=result.workflow_id, status=result.status, **details
    )


def artifact_asset(base_url: str, workflow_id: str | None, artifact_id: str, run_id: str) -> Asset:
    """The Prefect asset of an artifact: ``openwop://<host>/workflows/<workflow>/artifacts/<artifact>``, one per
    workflow and artifact id (each run that creates it is one materialization), linking to the run's copy."""
    parts = urlsplit(base_url)
    path = f"{parts.path.rstrip('/')}/workflows/{workflow_id or 'unknown'}/artifacts/{artifact_id}"
    key = _RESTRICTED.sub("-", f"openwop://{parts.netloc}{path}")
    url = f"{run_url(base_url, run_id)}/artifacts/{quote(artifact_id, safe='')}"
    return Asset(key=key, properties=AssetProperties(name=artifact_id, url=url))


def emit_materializations(result: OpenwopRunResult, artifacts: Mapping[str, str | None], *, base_url: str) -> None:
    """``prefect.asset.materialization.succeeded`` for each artifact a completed run created, as Prefect's own
    materializing tasks and prefect-dbt emit them: the asset as the resource; related, the upstream assets of
    the task (if it declared some), the tool (``asset-materialized-by``: ``openwop``) and the run. Best effort."""
    try:
        context = AssetContext.get()
        upstream = (context.upstream_assets | context.direct_asset_dependencies) if context else set()
        related = [AssetContext.asset_as_related(asset) for asset in upstream]
        related += [
            AssetContext.related_materialized_by("openwop"),
            {"prefect.resource.id": f"openwop.run.{result.run_id}", "prefect.resource.role": "openwop-run"},
        ]
        for artifact_id, kind in artifacts.items():
            asset = artifact_asset(base_url, result.workflow_id, artifact_id, result.run_id)
            payload = {"run_id": result.run_id, "artifact_id": artifact_id, "artifact_type": kind}
            if result.trace_id:
                payload["trace_id"] = result.trace_id
            emit_event(
                MATERIALIZATION_SUCCEEDED,
                resource=AssetContext.asset_as_resource(asset),
                related=related,
                payload={k: v for k, v in payload.items() if v is not None},
            )
    except Exception as exc:  # never fail the flow for an event
        log.debug("Could not emit the asset events of OpenWOP run %s: %s", result.run_id, exc)
