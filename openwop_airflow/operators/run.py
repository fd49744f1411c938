"""``OpenwopRunOperator``: start an OpenWOP workflow run and wait for its outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openwop_airflow.operators.base import BaseOpenwopRunOperator
from openwop_airflow.utils.arguments import json_object_argument, string_list_argument
from openwop_core import OpenwopClient


class OpenwopRunOperator(BaseOpenwopRunOperator):
    """Run an OpenWOP workflow: start it, push ``run_id`` and ``run_url`` to XCom, wait, and return its
    outputs. A retry of the task reattaches to the run it started (or returns the outputs of the run that
    already completed) and starts a new run only after a failed or cancelled one.

    :param workflow_id: The workflow to run (templated).
    :param inputs: The run's inputs: a dict, or a path to a ``.json`` template file, or JSON text
        (templated).
    :param configurable: Per-run configuration (templated).
    :param tags: Tags attached to the run (templated).
    :param metadata: Metadata attached to the run (templated).
    :param scope_id: Scope id of the run (templated).

    The waiting and retry behaviour is described on
    :class:`~openwop_airflow.operators.base.BaseOpenwopRunOperator`.
    """

    template_fields: Sequence[str] = (
        *BaseOpenwopRunOperator.template_fields,
        "workflow_id",
        "inputs",
        "configurable",
        "tags",
        "metadata",
        "scope_id",
    )
    template_ext: Sequence[str] = (".json",)
    _request: dict[str, Any]
    template_fields_renderers = {"inputs": "json", "configurable": "json", "metadata": "json"}

    def __init__(
        self,
        *,
        workflow_id: str,
        inputs: dict[str, Any] | str | None = None,
        configurable: dict[str, Any] | str | None = None,
        tags: Sequence[str] | str | None = None,
        metadata: dict[str, Any] | str | None = None,
        scope_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id
        self.inputs = inputs
        self.configurable = configurable
        self.tags = tags
        self.metadata = metadata
        self.scope_id = scope_id

    def prepare(self, context: Any) -> None:
        """Check and normalise the rendered arguments (JSON text becomes a dict)."""
        self._request = {
            "inputs": json_object_argument("inputs", self.inputs),
            "configurable": json_object_argument("configurable", self.configurable),
            "metadata": json_object_argument("metadata", self.metadata),
            "tags": string_list_argument("tags", self.tags),
            "scope_id": self.scope_id or None,
        }

    def start_run(self, client: OpenwopClient, idempotency_key: str) -> tuple[str, bool]:
        """``POST /v1/runs`` with the task instance's idempotency key."""
        request = self._request
        created = client.runs_create(
            self.workflow_id,
            request["inputs"],
            idempotency_key=idempotency_key,
            tags=request["tags"],
            metadata=request["metadata"],
            configurable=request["configurable"],
            scope_id=request["scope_id"],
        )
        return created.run_id, created.replayed

    def describe_start(self) -> str:
        """Names the workflow in messages."""
        return f"OpenWOP workflow {self.workflow_id!r}"
