"""``run_openwop_workflow``: run an OpenWOP workflow as one Prefect flow (usually a subflow of yours).

It starts the run with an idempotency key derived from the Prefect run (a retry reattaches instead of
duplicating), follows the run's event stream in-process (node progress goes to the flow run's logs),
hands interrupts to a person in the Prefect UI (``pause_flow_run(wait_for_input=...)``) or to your
code, returns the outputs, and publishes a markdown artifact summarising the run. Every request about the run
is sent in one trace (continuing the flow run's span when one is active), and the run's lifecycle is emitted
as Prefect events (``events``).

Ownership rule for the remote run: when the flow *gives up* on it (the Prefect flow run is cancelled,
the timeout passes, nobody answers an interrupt in time, ``on_interrupt="fail"``, the process is told
to stop), it cancels the remote run, best effort and logged. When the flow fails because the host could
not be reached (after the client's retries), it leaves the run alone so a Prefect retry reattaches.

The parts live beside this module: ``arguments`` (checks made before anything starts), ``follower`` (the
wait and the answers), ``pauses`` (asking in the Prefect UI), ``watchers`` (background threads) and
``cancellation`` (the ownership rule).
"""

from typing import Any, cast

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.states import Cancelled

from openwop_core import trace_operation

# Absolute imports on purpose, here and in the modules imported here: a deployment's file-path entrypoint
# (``.../openwop_prefect/flows.py:...``, what ``to_deployment``/``serve`` write) makes Prefect execute this file as
# a new top-level module. Relative imports would then load a second copy of the package's modules, so a second
# ``OpenwopCredentials`` block class, and a block chosen by reference (``{"$ref": ...}``) would fail the flow's
# parameter validation.
from openwop_prefect.arguments import check_on_interrupt, check_seconds, size_checked_flow
from openwop_prefect.artifacts import RunProgress, publish_final_artifact, publish_run_artifact
from openwop_prefect.cancellation import cancel_on_flow_cancellation, cancel_remote, following, gives_up
from openwop_prefect.credentials import OpenwopCredentials
from openwop_prefect.events import RUN_CANCELLED, emit_created, emit_outcome, emit_run_event
from openwop_prefect.follower import InterruptHandler, RunFollower
from openwop_prefect.runs import OpenwopRunResult, RunRequest, create_or_reattach, derive_idempotency_key
from openwop_prefect.watchers import CancellationWatcher

__all__ = ["InterruptHandler", "run_openwop_workflow"]


@size_checked_flow(
    name="run-openwop-workflow",
    description="Run an OpenWOP workflow and return its outputs; interrupts are answered in the Prefect UI.",
    on_cancellation=[cancel_on_flow_cancellation],
)
def run_openwop_workflow(
    credentials: OpenwopCredentials,
    workflow_id: str,
    inputs: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    on_interrupt: InterruptHandler = "pause",
    interrupt_timeout: float = 3600,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    configurable: dict[str, Any] | None = None,
    scope_id: str | None = None,
    idempotency_key: str | None = None,
    check_interval: float = 5.0,
    publish_artifact: bool = True,
) -> dict[str, Any] | OpenwopRunResult:
    """Run ``workflow_id`` with ``inputs`` on the host in ``credentials`` and return the run's outputs.

    Args:
        credentials: The host (an ``OpenwopCredentials`` block).
        workflow_id: The workflow to run.
        inputs: The run's inputs (a JSON object).
        timeout: Longest wall time, in seconds, to wait for the run (None: as long as it takes). When it
            passes, the remote run is cancelled and ``OpenwopWaitTimedOut`` is raised.
        on_interrupt: What to do when the run waits on someone: ``"pause"`` (ask in the Prefect UI, then
            resume the run with the answer), ``"fail"`` (cancel the run, raise ``OpenwopInterruptRequired``),
            ``"return"`` (return an ``OpenwopRunResult`` with ``.interrupt`` set; the run keeps waiting), or
            a callable ``(PendingInterrupt) -> resume value`` (``None`` falls back to asking in the UI).
        interrupt_timeout: Longest time, in seconds, one Prefect pause waits for an answer.
        tags, metadata, configurable, scope_id: Passed to the host with the run.
        idempotency_key: Overrides the key derived from the Prefect run (same key, same run).
        check_interval: Seconds between checks of the Prefect flow run (resumed? cancelled?).
        publish_artifact: Publish a markdown artifact summarising the run.

    Returns:
        The run's outputs (a dict), or with ``on_interrupt="return"`` an ``OpenwopRunResult``.

    Raises:
        OpenwopRunFailed: the run ended failed or cancelled (with the host's error code and message).
    """
    handler = check_on_interrupt(on_interrupt)
    check_seconds("timeout", timeout, optional=True)
    check_seconds("interrupt_timeout", interrupt_timeout)
    check_seconds("check_interval", check_interval)
    request = RunRequest.build(
        workflow_id, inputs, tags=tags, metadata=metadata, configurable=configurable, scope_id=scope_id
    )
    logger = get_run_logger()
    flow_run_context = FlowRunContext.get()
    assert flow_run_context is not None
    assert flow_run_context.flow_run is not None
    flow_run_id = flow_run_context.flow_run.id
    key = derive_idempotency_key(request, idempotency_key)
    with trace_operation(), credentials.get_client() as client:  # one trace for everything sent about the run
        started = create_or_reattach(client, request, key)
        run_id = started.run_id
        started.log(logger, workflow_id, client.base_url)
        emit_created(started, base_url=client.base_url, workflow_id=workflow_id)
        progress = RunProgress(logger, run_id)

        def cancel_for_prefect() -> None:
            cancel_remote(credentials, run_id, "the Prefect flow run was cancelled", logger)

        with (
            following(flow_run_id, credentials, run_id),
            CancellationWatcher(flow_run_id, check_interval, cancel_for_prefect, logger) as watcher,
        ):
            follower = RunFollower(
                client,
                run_id,
                workflow_id,
                on_interrupt=handler,
                timeout=timeout,
                interrupt_timeout=interrupt_timeout,
                check_interval=check_interval,
                progress=progress,
                cancelled=watcher.fired,
                flow_run_id=flow_run_id,
                logger=logger,
            )
            try:
                result = follower.follow()
            except BaseException as exc:
                if gives_up(exc) and not watcher.fired.is_set():
                    reason = f"the Prefect flow gave up: {type(exc).__name__}"
                    if cancel_remote(credentials, run_id, reason, logger):
                        emit_run_event(
                            RUN_CANCELLED,
                            run_id,
                            base_url=client.base_url,
                            workflow_id=workflow_id,
                            status=None,
                            reason=reason,
                        )
                    if publish_artifact:
                        publish_final_artifact(client, workflow_id, progress)
                else:
                    logger.warning(
                        "Stopped following OpenWOP run %s (%s); it was left running so a retry of this flow run "
                        "reattaches to it",
                        run_id,
                        exc,
                    )
                raise
        emit_outcome(result, base_url=client.base_url, artifacts=progress.created)
        if publish_artifact:
            progress.settle(follower.node_states)
            publish_run_artifact(result, progress, base_url=client.base_url)
    if watcher.fired.is_set():
        cancelled: Any = Cancelled(message=f"Prefect flow run cancelled; OpenWOP run {run_id} was cancelled")
        return cast(dict[str, Any], cancelled)  # a returned State becomes the flow run's final state
    if handler == "return":
        return result.raise_for_status()
    logger.info("OpenWOP run %s ended %s", run_id, result.status)
    result.raise_for_status()
    return result.outputs
