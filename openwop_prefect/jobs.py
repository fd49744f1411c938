"""``OpenwopWorkflow`` (a Prefect ``JobBlock``) and ``OpenwopWorkflowRun`` (its ``JobRun``).

The uniform "remote job" shape Prefect integrations share: save a configured workflow as a block,
``trigger()`` it to get a run handle, ``wait_for_completion()``, ``fetch_result()``. Each method has an
``a``-prefixed async twin and dispatches on the calling context (``async_dispatch``): in a sync flow it
runs synchronously, in an async flow it returns an awaitable.

Interrupts are not answered here (the run handle waits through them, logging what the run waits for);
use ``run_openwop_workflow`` to answer them in the Prefect UI.
"""

from __future__ import annotations

from typing import Any

# private, but the sync/async dispatch prefect-aws (s3, batch) and prefect-gcp (bigquery) blocks use as well
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.blocks.abstract import JobBlock, JobRun
from pydantic import Field

from .artifacts import RunProgress
from .credentials import OpenwopBlockLook, OpenwopCredentials
from .runs import OpenwopRunResult, RunRequest, StartedRun, acreate_or_reattach, create_or_reattach
from .runs import derive_idempotency_key as _derive_key

__all__ = ["OpenwopWorkflow", "OpenwopWorkflowRun"]


class OpenwopWorkflowRun(JobRun[dict[str, Any]]):
    """A handle on one started run (not a block): wait for it, then fetch its outputs."""

    def __init__(self, workflow: OpenwopWorkflow, started: StartedRun) -> None:
        self.workflow = workflow
        self.run_id = started.run_id
        self.reattached = started.reattached
        self.result: OpenwopRunResult | None = None

    def __repr__(self) -> str:
        return f"OpenwopWorkflowRun(workflow_id={self.workflow.workflow_id!r}, run_id={self.run_id!r})"

    def _finish(self, result: OpenwopRunResult) -> None:
        self.result = result
        self.logger.info("OpenWOP run %s ended %s", self.run_id, result.status)
        result.raise_for_status()

    async def await_for_completion(self) -> None:
        """Async twin of :meth:`wait_for_completion`."""
        progress = RunProgress(self.logger, self.run_id)
        async with self.workflow.credentials.get_async_client() as client:
            waited = await client.wait_for_run(self.run_id, timeout=self.workflow.timeout_seconds, on_event=progress)
        self._finish(OpenwopRunResult.from_wait(waited, self.workflow.workflow_id))

    @async_dispatch(await_for_completion)
    def wait_for_completion(self) -> None:  # type: ignore[override]
        """Follow the run's events until it ends (logging progress); raise ``OpenwopRunFailed`` if it
        failed or was cancelled, ``WaitTimeoutError`` after the block's ``timeout_seconds``."""
        progress = RunProgress(self.logger, self.run_id)
        with self.workflow.credentials.get_client() as client:
            waited = client.wait_for_run(self.run_id, timeout=self.workflow.timeout_seconds, on_event=progress)
        self._finish(OpenwopRunResult.from_wait(waited, self.workflow.workflow_id))

    async def afetch_result(self) -> dict[str, Any]:
        """Async twin of :meth:`fetch_result`."""
        if self.result is None:
            async with self.workflow.credentials.get_async_client() as client:
                snapshot = await client.runs_get(self.run_id)
            return OpenwopRunResult.from_snapshot(snapshot, self.workflow.workflow_id).outputs_or_raise()
        return self.result.outputs_or_raise()

    @async_dispatch(afetch_result)
    def fetch_result(self) -> dict[str, Any]:  # type: ignore[override]
        """The run's outputs; raises ``OpenwopRunFailed`` for a failed run, ``RuntimeError`` if it is still
        going."""
        if self.result is None:
            with self.workflow.credentials.get_client() as client:
                snapshot = client.runs_get(self.run_id)
            return OpenwopRunResult.from_snapshot(snapshot, self.workflow.workflow_id).outputs_or_raise()
        return self.result.outputs_or_raise()


class OpenwopWorkflow(OpenwopBlockLook, JobBlock[dict[str, Any]]):
    """A workflow on an OpenWOP host, with default inputs and run options, that can be triggered.

    Example:
        ```python
        from openwop_prefect import OpenwopCredentials, OpenwopWorkflow

        workflow = OpenwopWorkflow(
            credentials=OpenwopCredentials.load("prod"), workflow_id="nightly-report", inputs={"day": "mon"}
        )
        run = workflow.trigger()
        run.wait_for_completion()
        outputs = run.fetch_result()
        ```
    """

    _block_type_name = "OpenWOP Workflow"
    _block_type_slug = "openwop-workflow"
    _description = "A workflow on an OpenWOP host with default inputs and options; trigger it and wait for it."

    credentials: OpenwopCredentials = Field(default=..., title="Credentials", description="The host to run on.")
    workflow_id: str = Field(default=..., title="Workflow id", description="The workflow to run.")
    inputs: dict[str, Any] = Field(
        default_factory=dict, title="Default inputs", description="Inputs for each run (trigger() can add more)."
    )
    tags: list[str] = Field(default_factory=list, title="Tags", description="Tags attached to each run.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, title="Metadata", description="Metadata attached to each run."
    )
    configurable: dict[str, Any] = Field(
        default_factory=dict, title="Configurable", description="Runtime configuration (e.g. recursionLimit)."
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        title="Wait timeout (seconds)",
        description="Longest wall time wait_for_completion() waits; empty: as long as the run takes.",
    )

    def _request(self, inputs: dict[str, Any] | None) -> RunRequest:
        return RunRequest.build(
            self.workflow_id,
            {**self.inputs, **(inputs or {})},
            tags=self.tags or None,
            metadata=self.metadata or None,
            configurable=self.configurable or None,
        )

    async def atrigger(
        self, inputs: dict[str, Any] | None = None, *, idempotency_key: str | None = None
    ) -> OpenwopWorkflowRun:
        """Async twin of :meth:`trigger`."""
        request = self._request(inputs)
        async with self.credentials.get_async_client() as client:
            started = await acreate_or_reattach(client, request, _derive_key(request, idempotency_key))
            started.log(self.logger, self.workflow_id, client.base_url)
        return OpenwopWorkflowRun(self, started)

    @async_dispatch(atrigger)
    def trigger(  # type: ignore[override]
        self, inputs: dict[str, Any] | None = None, *, idempotency_key: str | None = None
    ) -> OpenwopWorkflowRun:
        """Start a run (``inputs`` are merged over the block's defaults) and return its handle.

        Inside a Prefect run the idempotency key is derived from it, so a retry reattaches to the run
        the first attempt started (a run that already failed is not reattached: a fresh one starts).
        """
        request = self._request(inputs)
        with self.credentials.get_client() as client:
            started = create_or_reattach(client, request, _derive_key(request, idempotency_key))
            started.log(self.logger, self.workflow_id, client.base_url)
        return OpenwopWorkflowRun(self, started)
