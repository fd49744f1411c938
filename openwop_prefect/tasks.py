"""Prefect tasks for single OpenWOP operations, each with an ``a``-prefixed async twin.

``create_openwop_run`` / ``acreate_openwop_run`` and so on are both real Prefect tasks (``.submit()``,
``.map()`` and ``.with_options()`` work on either): use the plain name in sync flows and the ``a`` name
in async flows. Their bodies are one client call each; the protocol logic lives in ``openwop_core``.

Safe retries: every task retries only transient failures (connection errors, 429, 5xx, after the
client's own retries), never a 4xx or a failed run; creating or forking a run sends an idempotency key
derived from the task run, so a retry reattaches instead of starting a second run. Status reads are
never cached.

Creating a run and each wait are sent in one trace (``openwop_core.tracing``; the task run's span is continued
when Prefect traces), and emit the run's lifecycle as Prefect events (``events``): created, waiting for input,
resumed (after ``resolve_openwop_interrupt``), completed, failed, cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task

from openwop_core import CancelResult, ForkResult, InterruptResolution, RunSnapshot, trace_operation
from openwop_core.reattach import Attachment, astart_or_reattach, start_or_reattach
from openwop_core.retry import is_retryable_error

from .artifacts import RunProgress
from .credentials import OpenwopCredentials
from .events import RUN_RESUMED, emit_created, emit_outcome, emit_run_event
from .runs import OpenwopRunResult, RunRequest, acreate_or_reattach, create_or_reattach, log_attachment
from .runs import derive_idempotency_key as _derive_key

__all__ = [
    "acancel_openwop_run",
    "acreate_openwop_run",
    "afork_openwop_run",
    "aget_openwop_run",
    "aresolve_openwop_interrupt",
    "cancel_openwop_run",
    "create_openwop_run",
    "fork_openwop_run",
    "get_openwop_run",
    "resolve_openwop_interrupt",
    "retry_if_transient",
    "wait_for_openwop_run",
    "wait_for_openwop_run_async",
]


def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """``retry_condition_fn``: retry a task only when it failed on a transient error (host down, 5xx)."""
    error = state.data
    return isinstance(error, BaseException) and is_retryable_error(error)


_OPTIONS: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": [10, 30],
    "retry_condition_fn": retry_if_transient,
}


# -- create -----------------------------------------------------------------------------------------


@task(name="create-openwop-run", description="Start an OpenWOP workflow run; returns the run id.", **_OPTIONS)
def create_openwop_run(
    credentials: OpenwopCredentials,
    workflow_id: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    configurable: Mapping[str, Any] | None = None,
    scope_id: str | None = None,
) -> str:
    """Start a run of ``workflow_id`` with ``inputs`` and return its run id (without waiting).

    The idempotency key defaults to one derived from this task run, so a retry returns the run the first
    attempt started (unless that run already failed; then a fresh run is started).
    """
    request = RunRequest.build(
        workflow_id, inputs, tags=tags, metadata=metadata, configurable=configurable, scope_id=scope_id
    )
    with trace_operation(), credentials.get_client() as client:
        started = create_or_reattach(client, request, _derive_key(request, idempotency_key))
        started.log(get_run_logger(), workflow_id, client.base_url)
        emit_created(started, base_url=client.base_url, workflow_id=workflow_id)
    return started.run_id


@task(name="create-openwop-run", description="Start an OpenWOP workflow run; returns the run id.", **_OPTIONS)
async def acreate_openwop_run(
    credentials: OpenwopCredentials,
    workflow_id: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    configurable: Mapping[str, Any] | None = None,
    scope_id: str | None = None,
) -> str:
    """Async twin of :func:`create_openwop_run`."""
    request = RunRequest.build(
        workflow_id, inputs, tags=tags, metadata=metadata, configurable=configurable, scope_id=scope_id
    )
    async with trace_operation(), credentials.get_async_client() as client:
        started = await acreate_or_reattach(client, request, _derive_key(request, idempotency_key))
        started.log(get_run_logger(), workflow_id, client.base_url)
        emit_created(started, base_url=client.base_url, workflow_id=workflow_id)
    return started.run_id


# -- read -------------------------------------------------------------------------------------------


@task(name="get-openwop-run", description="Read an OpenWOP run's current snapshot (never cached).", **_OPTIONS)
def get_openwop_run(credentials: OpenwopCredentials, run_id: str) -> RunSnapshot:
    """The run's current snapshot: status, outputs (``.outputs``), error, current node."""
    with credentials.get_client() as client:
        return client.runs_get(run_id)


@task(name="get-openwop-run", description="Read an OpenWOP run's current snapshot (never cached).", **_OPTIONS)
async def aget_openwop_run(credentials: OpenwopCredentials, run_id: str) -> RunSnapshot:
    """Async twin of :func:`get_openwop_run`."""
    async with credentials.get_async_client() as client:
        return await client.runs_get(run_id)


# -- wait -------------------------------------------------------------------------------------------


def _finish_wait(
    result: OpenwopRunResult, raise_on_failure: bool, base_url: str, progress: RunProgress
) -> OpenwopRunResult:
    """Log and emit (``events``) how the wait ended; raise for a failed run when asked to."""
    emit_outcome(result, base_url=base_url, artifacts=progress.created)
    logger = get_run_logger()
    if result.interrupt is not None:
        logger.info(
            "OpenWOP run %s waits for %s on node %s", result.run_id, result.interrupt.kind, result.interrupt.node_id
        )
    else:
        logger.info("OpenWOP run %s ended %s (trace %s)", result.run_id, result.status, result.trace_id)
    return result.raise_for_status() if raise_on_failure else result


@task(
    name="wait-for-openwop-run",
    description="Follow an OpenWOP run's events until it ends (or waits on someone).",
    **_OPTIONS,
)
def wait_for_openwop_run(
    credentials: OpenwopCredentials,
    run_id: str,
    *,
    timeout: float | None = None,
    stop_on_interrupt: bool = False,
    last_sequence: int | None = None,
    raise_on_failure: bool = True,
) -> OpenwopRunResult:
    """Wait for the run in ONE task run, following its event stream (no task run per poll).

    Logs node progress as it arrives. ``timeout`` is elapsed wall time in seconds (None: no limit;
    raises ``WaitTimeoutError``). With ``stop_on_interrupt`` the wait also ends when the run waits on
    someone (see ``result.interrupt``). A failed or cancelled run raises :class:`OpenwopRunFailed`
    unless ``raise_on_failure=False``. Transient errors are retried inside the wait.
    """
    progress = RunProgress(get_run_logger(), run_id)
    with credentials.get_client() as client:
        waited = client.wait_for_run(
            run_id, timeout=timeout, stop_on_interrupt=stop_on_interrupt, last_sequence=last_sequence, on_event=progress
        )
    return _finish_wait(OpenwopRunResult.from_wait(waited), raise_on_failure, client.base_url, progress)


@task(
    name="wait-for-openwop-run",
    description="Follow an OpenWOP run's events until it ends (or waits on someone).",
    **_OPTIONS,
)
async def wait_for_openwop_run_async(
    credentials: OpenwopCredentials,
    run_id: str,
    *,
    timeout: float | None = None,
    stop_on_interrupt: bool = False,
    last_sequence: int | None = None,
    raise_on_failure: bool = True,
) -> OpenwopRunResult:
    """Async twin of :func:`wait_for_openwop_run`."""
    progress = RunProgress(get_run_logger(), run_id)
    async with credentials.get_async_client() as client:
        waited = await client.wait_for_run(
            run_id, timeout=timeout, stop_on_interrupt=stop_on_interrupt, last_sequence=last_sequence, on_event=progress
        )
    return _finish_wait(OpenwopRunResult.from_wait(waited), raise_on_failure, client.base_url, progress)


# -- cancel -----------------------------------------------------------------------------------------


@task(name="cancel-openwop-run", description="Cancel an OpenWOP run.", **_OPTIONS)
def cancel_openwop_run(credentials: OpenwopCredentials, run_id: str, reason: str | None = None) -> CancelResult:
    """Cancel the run; a run that already ended answers with its terminal status (``already_terminal``)."""
    with credentials.get_client() as client:
        result = client.runs_cancel(run_id, reason=reason)
    get_run_logger().info("Cancel of OpenWOP run %s: %s", run_id, result.status)
    return result


@task(name="cancel-openwop-run", description="Cancel an OpenWOP run.", **_OPTIONS)
async def acancel_openwop_run(credentials: OpenwopCredentials, run_id: str, reason: str | None = None) -> CancelResult:
    """Async twin of :func:`cancel_openwop_run`."""
    async with credentials.get_async_client() as client:
        result = await client.runs_cancel(run_id, reason=reason)
    get_run_logger().info("Cancel of OpenWOP run %s: %s", run_id, result.status)
    return result


# -- interrupts -------------------------------------------------------------------------------------


@task(name="resolve-openwop-interrupt", description="Answer an OpenWOP run's open interrupt.", **_OPTIONS)
def resolve_openwop_interrupt(
    credentials: OpenwopCredentials,
    run_id: str,
    node_id: str,
    resume_value: Any,
    *,
    idempotency_key: str | None = None,
) -> InterruptResolution:
    """Answer the interrupt open on ``node_id`` (build values with ``openwop_core.resume.approval(...)``,
    ``.clarification({...})``); then wait again with ``wait_for_openwop_run``."""
    with credentials.get_client() as client:
        resolution = client.interrupts_resolve_by_run(
            run_id, node_id, resume_value, idempotency_key=_resolve_key(run_id, node_id, resume_value, idempotency_key)
        )
    get_run_logger().info("Answered OpenWOP run %s's interrupt on node %s", run_id, node_id)
    _emit_resumed(run_id, node_id, client.base_url)
    return resolution


@task(name="resolve-openwop-interrupt", description="Answer an OpenWOP run's open interrupt.", **_OPTIONS)
async def aresolve_openwop_interrupt(
    credentials: OpenwopCredentials,
    run_id: str,
    node_id: str,
    resume_value: Any,
    *,
    idempotency_key: str | None = None,
) -> InterruptResolution:
    """Async twin of :func:`resolve_openwop_interrupt`."""
    async with credentials.get_async_client() as client:
        resolution = await client.interrupts_resolve_by_run(
            run_id, node_id, resume_value, idempotency_key=_resolve_key(run_id, node_id, resume_value, idempotency_key)
        )
    get_run_logger().info("Answered OpenWOP run %s's interrupt on node %s", run_id, node_id)
    _emit_resumed(run_id, node_id, client.base_url)
    return resolution


def _emit_resumed(run_id: str, node_id: str, base_url: str) -> None:
    """``openwop.run.resumed`` after an answer the host took."""
    emit_run_event(
        RUN_RESUMED, run_id, base_url=base_url, workflow_id=None, status=None, interrupt={"node_id": node_id}
    )


def _resolve_key(run_id: str, node_id: str, resume_value: Any, explicit: str | None) -> str | None:
    """A resolve key derived from the task run, so a retried answer replays instead of conflicting."""
    return _derive_key({"resolve": run_id, "node": node_id, "value": resume_value}, explicit)


# -- fork -------------------------------------------------------------------------------------------


@task(name="fork-openwop-run", description="Fork an OpenWOP run into a new run; returns its id.", **_OPTIONS)
def fork_openwop_run(
    credentials: OpenwopCredentials,
    run_id: str,
    *,
    mode: Literal["replay", "branch"] = "replay",
    from_seq: int | None = None,
    configurable: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> str:
    """Fork ``run_id`` (``replay``, or ``branch`` from event ``from_seq``) and return the new run's id.

    The idempotency key defaults to one derived from this task run, so a retry returns the fork the first
    attempt made (unless that fork already failed; then a fresh fork is made). Raises
    ``UnsupportedFeatureError`` on hosts whose discovery document offers no fork.
    """
    options, key = _fork_request(run_id, mode, from_seq, configurable, tags, metadata, idempotency_key)
    with credentials.get_client() as client:
        forked = start_or_reattach(
            lambda chained: client.runs_fork(run_id, **options, idempotency_key=chained), client.runs_get, key
        )
    return _forked(forked, run_id, mode)


@task(name="fork-openwop-run", description="Fork an OpenWOP run into a new run; returns its id.", **_OPTIONS)
async def afork_openwop_run(
    credentials: OpenwopCredentials,
    run_id: str,
    *,
    mode: Literal["replay", "branch"] = "replay",
    from_seq: int | None = None,
    configurable: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> str:
    """Async twin of :func:`fork_openwop_run`."""
    options, key = _fork_request(run_id, mode, from_seq, configurable, tags, metadata, idempotency_key)
    async with credentials.get_async_client() as client:
        forked = await astart_or_reattach(
            lambda chained: client.runs_fork(run_id, **options, idempotency_key=chained), client.runs_get, key
        )
    return _forked(forked, run_id, mode)


def _fork_request(
    run_id: str,
    mode: str,
    from_seq: int | None,
    configurable: Mapping[str, Any] | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
    explicit_key: str | None,
) -> tuple[dict[str, Any], str | None]:
    """The ``runs_fork`` arguments (key aside) and the key: ``explicit_key``, else one derived from the task
    run, so a retried fork finds the first one."""
    options = {"mode": mode, "from_seq": from_seq, "configurable": configurable, "tags": tags, "metadata": metadata}
    document = {"fork": run_id, "fromSeq": from_seq, **{k: v for k, v in options.items() if k != "from_seq"}}
    return options, _derive_key(document, explicit_key or None)


def _forked(forked: Attachment[ForkResult], run_id: str, mode: str) -> str:
    """Log how the fork was settled on (fresh or reattached) and return its run id."""
    log_attachment(get_run_logger(), forked, f"Forked OpenWOP run {run_id} into {forked.run_id} ({mode})")
    return forked.run_id
