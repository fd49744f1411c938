"""OpenLineage for the run operators: the methods Airflow's OpenLineage provider calls on a task.

:class:`OpenLineageMixin` gathers what names the OpenWOP run (host, workflow and version, run id, fork
source, status, duration, link, the remote error, the artifacts it created) into a :class:`RunLineage`;
:mod:`openwop_airflow.operators.lineage_facets` turns that into OpenLineage facets. The provider
(``apache-airflow-providers-openlineage``, extra ``[openlineage]``) is imported only inside these methods,
which only its listener calls: without it nothing is imported or read. Nothing about the connection other
than its base URL (which never holds credentials) goes into the facets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from openwop_core import OpenwopClient, OpenwopError, RunSnapshot

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

T = TypeVar("T")

#: At most this many pages of the run's events are read for its ``artifact.created`` events.
ARTIFACT_PAGES = 20


@dataclass(frozen=True)
class RunLineage:
    """What a lineage event says about one OpenWOP run (None where it is not known yet, e.g. at START)."""

    host: str
    workflow_id: str | None = None
    workflow_version: str | None = None
    run_id: str | None = None
    source_run_id: str | None = None
    status: str | None = None
    duration_seconds: float | None = None
    run_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: ``(artifact id, artifact type)`` of each artifact the host announced (``artifact.created``).
    artifacts: tuple[tuple[str, str | None], ...] = ()


def artifacts_of(client: OpenwopClient, run_id: str) -> tuple[tuple[str, str | None], ...]:
    """The artifacts the run announced with ``artifact.created`` events, read from its event log (at most
    :data:`ARTIFACT_PAGES` pages); a host that cannot list them yields none."""
    found: dict[str, str | None] = {}
    cursor: int | None = None
    for _ in range(ARTIFACT_PAGES):
        page = client.runs_poll_events(run_id, last_sequence=cursor, timeout_seconds=1)
        for event in page.events:
            artifact_id = event.payload.get("artifactId") if event.type == "artifact.created" else None
            if isinstance(artifact_id, str):
                kind = event.payload.get("artifactType")
                found[artifact_id] = kind if isinstance(kind, str) else None
        if not page.events or page.finished or page.next_cursor == cursor:
            break
        cursor = page.next_cursor
    return tuple(found.items())


class OpenLineageMixin:
    """``get_openlineage_facets_on_start/complete/failure`` for an operator that starts one OpenWOP run (as
    the dbt Cloud operator reports its job run). The operator provides ``hook``, ``_run_id`` and ``log``, and
    sets ``_final_snapshot``; its ``workflow_id`` or ``source_run_id`` attribute is reported when it has one."""

    hook: Any
    log: Any
    _run_id: str | None
    #: The last state of the run read by the operator (the one its outcome was decided on).
    _final_snapshot: RunSnapshot | None = None

    def get_openlineage_facets_on_start(self) -> OperatorLineage[Any, Any] | None:
        """START: the host and what is being run (the run id is not known before ``execute``)."""
        return self._openlineage(ended=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any] | None:
        """COMPLETE: the run, its status, duration and link, and the artifacts it created as outputs."""
        return self._openlineage(ended=True)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage[Any, Any] | None:
        """FAIL: as COMPLETE, plus the remote error's code and message."""
        return self._openlineage(ended=True)

    def _openlineage(self, *, ended: bool) -> OperatorLineage[Any, Any] | None:
        try:
            from openwop_airflow.operators.lineage_facets import operator_lineage
        except ImportError:  # the provider is not installed: no lineage (its listener would not call us)
            return None
        return operator_lineage(self.run_lineage(ended=ended))

    def run_lineage(self, *, ended: bool) -> RunLineage:
        """The run as known now; once the task ``ended``, the run's last state, workflow version and
        artifacts are read from the host (best effort: what cannot be read is left out, and logged)."""
        run_id = self._run_id
        named: dict[str, Any] = {
            "host": self.hook.get_connection_settings().base_url,
            "workflow_id": getattr(self, "workflow_id", None),
            "source_run_id": getattr(self, "source_run_id", None),
            "run_id": run_id,
            "run_url": self.hook.run_url(run_id) if run_id else None,
        }
        if not ended or not run_id:
            return RunLineage(**named)
        client = self.hook.get_conn()
        snapshot = self._final_snapshot if self._final_snapshot and self._final_snapshot.run_id == run_id else None
        snapshot = snapshot or self._read(run_id, "its state", lambda: client.runs_get(run_id))
        if snapshot is not None:
            error = snapshot.error
            named["workflow_id"] = named["workflow_id"] or snapshot.workflow_id
            named["source_run_id"] = named["source_run_id"] or snapshot.source_run_id
            named.update(
                status=snapshot.status,
                duration_seconds=snapshot.duration_seconds,
                error_code=error.code if error else None,
                error_message=error.message if error else None,
            )
        workflow_id = named["workflow_id"]
        if workflow_id:
            named["workflow_version"] = self._read(
                run_id, "its workflow's version", lambda: client.workflows_get(workflow_id).version
            )
        named["artifacts"] = self._read(run_id, "its artifacts", lambda: artifacts_of(client, run_id)) or ()
        return RunLineage(**named)

    def _read(self, run_id: str, what: str, read: Callable[[], T]) -> T | None:
        """``read()``, or None (logged) when the host cannot answer: lineage never fails the task."""
        try:
            return read()
        except OpenwopError as exc:
            self.log.warning("OpenLineage: could not read %s of OpenWOP run %s: %s", what, run_id, exc)
            return None
