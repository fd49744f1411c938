"""OpenLineage facets of an OpenWOP run (imported only when the OpenLineage provider is installed).

A :class:`~openwop_airflow.operators.lineage.RunLineage` becomes an ``OperatorLineage``: the standard
``externalQuery`` facet (the remote run's id and host), an ``openwopErrorMessage`` facet (the standard
``ErrorMessageRunFacet``: Airflow fills ``errorMessage`` itself with the task's Python exception), the
:class:`OpenwopRunFacet` for the rest, and one output dataset per artifact the run created.
"""

from __future__ import annotations

from airflow.providers.openlineage.extractors import OperatorLineage
from attrs import define
from openlineage.client.generated.base import OutputDataset, RunFacet
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.external_query_run import ExternalQueryRunFacet

from openwop_airflow.operators.lineage import RunLineage

#: Where :class:`OpenwopRunFacet`'s JSON schema is published (the same schema ships beside this module, as
#: ``openwop_run_facet.json``).
SCHEMA_URL = "https://openwop.dev/integrations/openlineage/1-0-0/OpenwopRunFacet.json#/$defs/OpenwopRunFacet"


@define
class OpenwopRunFacet(RunFacet):
    """The OpenWOP run an Airflow task started or followed (the ``openwopRun`` run facet)."""

    host: str
    workflowId: str | None = None
    workflowVersion: str | None = None
    runId: str | None = None
    sourceRunId: str | None = None
    status: str | None = None
    durationSeconds: float | None = None
    runUrl: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_URL


def operator_lineage(run: RunLineage) -> OperatorLineage[OutputDataset, RunFacet]:
    """The task's lineage for ``run``: its facets and, once known, the artifacts it created as outputs."""
    facets: dict[str, RunFacet] = {
        "openwopRun": OpenwopRunFacet(
            host=run.host,
            workflowId=run.workflow_id,
            workflowVersion=run.workflow_version,
            runId=run.run_id,
            sourceRunId=run.source_run_id,
            status=run.status,
            durationSeconds=run.duration_seconds,
            runUrl=run.run_url,
            errorCode=run.error_code,
            errorMessage=run.error_message,
        )
    }
    if run.run_id:
        facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=run.run_id, source=run.host)
    if run.error_code or run.error_message:
        message = f"{run.error_code}: {run.error_message}" if run.error_message else str(run.error_code)
        facets["openwopErrorMessage"] = ErrorMessageRunFacet(message=message, programmingLanguage="OpenWOP")
    outputs = [
        OutputDataset(namespace=run.host, name=f"runs/{run.run_id}/artifacts/{artifact_id}")
        for artifact_id, _kind in run.artifacts
    ]
    return OperatorLineage(outputs=outputs, run_facets=facets)
