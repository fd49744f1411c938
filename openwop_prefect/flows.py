"""``run_openwop_workflow``: run an OpenWOP workflow as one Prefect flow (usually a subflow of yours).

It starts the run with an idempotency key derived from the Prefect run (a retry reattaches instead of
duplicating), follows the run's event stream in-process (node progress goes to the flow run's logs),
hands interrupts to a person in the Prefect UI (``pause_flow_run(wait_for_input=...)``) or to your
code, returns the outputs, and publishes a markdown artifact summarising the run.

Ownership rule for the remote run: when the flow *gives up* on it (the Prefect flow run is cancelled,
the timeout passes, nobody answers an interrupt in time, ``on_interrupt="fail"``, the process is told
to stop), it cancels the remote run, best effort and logged. When the flow fails because the host could
not be reached (after the client's retries), it leaves the run alone so a Prefect retry reattaches.
"""

import contextvars
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar, cast
from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, State
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.flows import Flow
from prefect.input.actions import filter_flow_run_input
from prefect.input.run_input import keyset_from_base_key
from prefect.logging.loggers import flow_run_logger
from prefect.settings import get_current_settings
from prefect.states import Cancelled, Running
from prefect.utilities.callables import get_call_parameters
from prefect.utilities.urls import url_for

from openwop_core import (
    ConflictError,
    GoneError,
    InvalidArgumentError,
    InvalidRequestError,
    NotFoundError,
    OpenwopClient,
    OpenwopError,
    PendingInterrupt,
    WaitTimeoutError,
    interrupt_is_open,
)

# Absolute imports on purpose: a deployment's file-path entrypoint (``.../openwop_prefect/flows.py:...``, what
# ``to_deployment``/``serve`` write) makes Prefect execute this file as a new top-level module. Relative imports
# would then load a second copy of the package's modules, so a second ``OpenwopCredentials`` block class, and a
# block chosen by reference (``{"$ref": ...}``) would fail the flow's parameter validation.
from openwop_prefect.artifacts import RunProgress, publish_run_artifact
from openwop_prefect.credentials import OpenwopCredentials
from openwop_prefect.exceptions import OpenwopInterruptRequired, OpenwopInterruptTimeout, OpenwopWaitTimeout
from openwop_prefect.interrupts import (
    describe_interrupt,
    input_model_for,
    pause_key_for,
    responder_of,
    resume_value_for,
)
from openwop_prefect.runs import OpenwopRunResult, RunRequest, create_or_reattach, derive_idempotency_key

__all__ = ["InterruptHandler", "run_openwop_workflow"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")
W = TypeVar("W", bound="_Watcher")
Logger = Any  # a logging.Logger or Prefect's run-logger adapter
InterruptHandler = Literal["pause", "fail", "return"] | Callable[[PendingInterrupt], Any]

#: How often a re-asked interrupt may be asked again after the host rejected the answer.
MAX_ASK_ATTEMPTS = 3

# Remote runs being followed, by Prefect flow run id, for the on_cancellation hook.
_active: dict[UUID, tuple[OpenwopCredentials, str]] = {}
_active_lock = threading.Lock()


def _cancel_remote(credentials: OpenwopCredentials, run_id: str, reason: str, logger: Logger) -> bool:
    """Cancel the remote run, best effort: a failure is logged, never raised. True if the host agreed."""
    try:
        with credentials.get_client() as client:
            result = client.runs_cancel(run_id, reason=reason)
    except Exception as exc:
        logger.error("Could not cancel OpenWOP run %s (%s): %s", run_id, reason, exc)
        return False
    if result.already_terminal:
        logger.info("OpenWOP run %s had already ended (%s); nothing to cancel", run_id, result.status)
    else:
        logger.warning("Cancelled OpenWOP run %s (%s); it is %s", run_id, reason, result.status)
    with _active_lock:
        for flow_run_id, (_, active_run) in list(_active.items()):
            if active_run == run_id:
                del _active[flow_run_id]
    return True


def _cancel_on_flow_cancellation(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """``on_cancellation`` hook: cancel the remote run this flow run was following (best effort)."""
    with _active_lock:
        entry = _active.get(flow_run.id)
    if entry is not None:
        credentials, run_id = entry
        _cancel_remote(
            credentials, run_id, f"Prefect flow run {flow_run.name} was cancelled", flow_run_logger(flow_run, flow)
        )


class _Watcher:
    """Runs :meth:`check` every ``interval`` seconds in a background thread (sharing the caller's context:
    Prefect's settings live in context variables) until it returns True, which sets ``fired``, or until
    the ``with`` block ends."""

    def __init__(self, interval: float, name: str) -> None:
        self.interval = interval
        self.fired = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._watch,), name=name, daemon=True
        )

    def __enter__(self: W) -> W:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def check(self) -> bool:
        """One look; True when the watched thing happened."""
        raise NotImplementedError

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if self.check():
                self.fired.set()
                return


class CancellationWatcher(_Watcher):
    """Polls Prefect for cancellation of this flow run or any flow run above it, and calls ``on_cancel``
    once when it sees one.

    Runs started by a worker are stopped with a signal (the ``on_cancellation`` hook and the ``finally``
    cover those); a flow run called in-process is only marked cancelled on the server, which this sees.
    """

    def __init__(self, flow_run_id: UUID, interval: float, on_cancel: Callable[[], object], logger: Logger) -> None:
        super().__init__(interval, f"openwop-cancel-watch-{flow_run_id}")
        self.flow_run_id = flow_run_id
        self.on_cancel = on_cancel
        self.logger = logger
        self._ids: list[UUID] | None = None

    def _lineage(self, client: Any) -> list[UUID]:
        ids = [self.flow_run_id]
        flow_run = client.read_flow_run(self.flow_run_id)
        while flow_run.parent_task_run_id is not None and len(ids) < 20:
            parent_task_run = client.read_task_run(flow_run.parent_task_run_id)
            if parent_task_run.flow_run_id is None or parent_task_run.flow_run_id in ids:
                break
            ids.append(parent_task_run.flow_run_id)
            flow_run = client.read_flow_run(parent_task_run.flow_run_id)
        return ids

    def check(self) -> bool:
        """Is this flow run, or one above it, cancelling or cancelled? (Then cancel the remote run.)"""
        try:
            with get_client(sync_client=True) as client:
                self._ids = self._ids or self._lineage(client)
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=self._ids)))
        except Exception as exc:  # Prefect API hiccup: keep watching
            self.logger.debug("Could not read the flow run's state: %s", exc)
            return False
        if any(r.state is not None and (r.state.is_cancelling() or r.state.is_cancelled()) for r in runs):
            self.on_cancel()
            return True
        return False


def _run_unless(stops: Sequence[threading.Event], fn: Callable[[], T], poll: float) -> tuple[bool, T | None]:
    """Run ``fn`` in a helper thread (same context); return ``(True, result)`` when it finishes, or
    ``(False, None)`` as soon as one of ``stops`` is set (the thread is abandoned: ``pause_flow_run`` cannot
    be interrupted, and a cancelled flow must not sit out the pause's timeout)."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(target,), name="openwop-pause", daemon=True).start()
    while not done.wait(poll):
        if any(stop.is_set() for stop in stops):
            return False, None
    if "error" in outcome:
        raise outcome["error"]
    return True, cast(T, outcome.get("value"))


class InterruptCloseWatcher(_Watcher):
    """While a person is asked in Prefect, checks whether the run still waits on the interrupt; fires once
    it does not: answered elsewhere (the host's UI, another client, a signed token), timed out there, or
    the run ended. The pause then ends at once instead of at its timeout."""

    def __init__(
        self, client: OpenwopClient, interrupt: PendingInterrupt, last_sequence: int | None, interval: float
    ) -> None:
        super().__init__(interval, f"openwop-interrupt-watch-{interrupt.run_id}")
        self.client = client
        self.interrupt = interrupt
        self.last_sequence = last_sequence

    def check(self) -> bool:
        """Has the interrupt closed? (A host unreachable for now is not an answer: look again later.)"""
        try:
            return not interrupt_is_open(self.client, self.interrupt, self.last_sequence)
        except OpenwopError:
            return False


def _pause_whereabouts(flow_run_id: UUID) -> tuple[str | None, FlowRun | None, FlowRun | None]:
    """The flow run's UI link (None without a UI), the flow run, and the flow run above it (best effort)."""
    try:
        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(flow_run_id)
            parent = None
            if flow_run.parent_task_run_id is not None:
                parent_task_run = client.read_task_run(flow_run.parent_task_run_id)
                if parent_task_run.flow_run_id is not None:
                    parent = client.read_flow_run(parent_task_run.flow_run_id)
    except Exception:
        return None, None, None
    return url_for(flow_run), flow_run, parent


def _end_pause(flow_run_id: UUID) -> None:
    """Put a paused flow run back to Running without an answer (the question closed on the host)."""
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Running(), force=True)


def _responder(pause_key: str, flow_run_id: UUID) -> str | None:
    """Who answered, where Prefect records it: the input's sender (a flow run or, on some servers, a user)."""
    try:
        response_key = keyset_from_base_key(f"paused-{pause_key}")["response"]
        found = cast(list[Any], filter_flow_run_input(key_prefix=response_key, limit=1, flow_run_id=flow_run_id))
    except Exception:
        return None
    return found[0].sender if found and found[0].sender else None


class _Follower:
    """Follows one run to its end: waits, answers interrupts as ``on_interrupt`` says, and keeps going."""

    def __init__(
        self,
        client: OpenwopClient,
        run_id: str,
        workflow_id: str,
        *,
        on_interrupt: InterruptHandler,
        timeout: float | None,
        interrupt_timeout: float,
        check_interval: float,
        progress: RunProgress,
        watcher: CancellationWatcher,
        flow_run_id: UUID,
        logger: Logger,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.on_interrupt = on_interrupt
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.interrupt_timeout = interrupt_timeout
        self.check_interval = check_interval
        self.progress = progress
        self.watcher = watcher
        self.flow_run_id = flow_run_id
        self.logger = logger
        self.last_sequence: int | None = None
        self.answered: set[str] = set()
        #: The nodes' states in the last snapshot read (the event stream does not carry every node's end).
        self.node_states: dict[str, Any] = {}

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no timeout)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def follow(self) -> OpenwopRunResult:
        """Wait until the run ends, the watcher fires, or (``on_interrupt="return"``) it waits on someone."""
        stale = 0
        while True:
            remaining = self.remaining()
            if remaining is not None and remaining <= 0:
                raise OpenwopWaitTimeout(self.run_id, self.timeout or 0.0, None, self.last_sequence)
            try:
                waited = self.client.wait_for_run(
                    self.run_id,
                    timeout=remaining,
                    stop_on_interrupt=True,
                    last_sequence=self.last_sequence,
                    on_event=self.progress,
                )
            except WaitTimeoutError as exc:
                raise OpenwopWaitTimeout(self.run_id, self.timeout or 0.0, exc.last_status, exc.last_sequence) from None
            if self.last_sequence is None and waited.events_seen == 0 and waited.snapshot.is_terminal:
                self.catch_up()  # it ended before we looked: log (and time) what happened
            self.last_sequence = waited.last_sequence
            self.node_states = waited.snapshot.node_states or {}
            result = OpenwopRunResult.from_wait(waited, self.workflow_id)
            interrupt = result.interrupt
            if interrupt is None or self.watcher.fired.is_set() or self.on_interrupt == "return":
                return result
            identity = pause_key_for(interrupt)
            if identity in self.answered:  # the host has not applied our answer yet: look again shortly
                stale += 1
                time.sleep(min(5.0, 0.25 * stale))
                continue
            stale = 0
            self.logger.info(
                "OpenWOP run %s waits for %s on node %s: %s",
                self.run_id,
                interrupt.kind,
                interrupt.node_id,
                interrupt.title,
            )
            if self.on_interrupt == "fail":
                raise OpenwopInterruptRequired(interrupt, cancelled=True)
            if self.answer(interrupt):
                self.answered.add(identity)
            if self.watcher.fired.is_set():
                continue  # the remote run is being cancelled; the next wait sees it end

    def catch_up(self) -> None:
        """Feed the run's event log to the progress reporter once (best effort)."""
        try:
            page = self.client.runs_poll_events(self.run_id, timeout_seconds=1)
        except OpenwopError as exc:
            self.logger.debug("Could not read OpenWOP run %s's events: %s", self.run_id, exc)
            return
        for event in page.events:
            self.progress(event)

    def answer(self, interrupt: PendingInterrupt) -> bool:
        """Get an answer (your callable, else a person through a Prefect pause) and send it to the host.
        True when the host took it; False when someone else had already answered."""
        note = ""
        for attempt in range(MAX_ASK_ATTEMPTS):
            value = self.on_interrupt(interrupt) if callable(self.on_interrupt) else None
            source = "on_interrupt callable"
            if value is None:
                value, source = self.ask_in_prefect(interrupt, attempt, note)
                if value is None:
                    return False  # cancelled while paused, or the interrupt closed on the host
            try:
                self.client.interrupts_resolve_by_run(self.run_id, interrupt.node_id, value)
            except (NotFoundError, ConflictError, GoneError) as exc:
                self.logger.warning(
                    "OpenWOP run %s's %s on node %s was no longer open (answered elsewhere or expired): %s",
                    self.run_id,
                    interrupt.kind,
                    interrupt.node_id,
                    exc.server_message or exc,
                )
                return False
            except InvalidRequestError as exc:
                if callable(self.on_interrupt) and source == "on_interrupt callable":
                    raise
                note = f"The host rejected the previous answer: {exc.server_message or exc}"
                self.logger.warning("%s; asking again", note)
                continue
            self.logger.info(
                "Answered OpenWOP run %s's %s on node %s (%s)", self.run_id, interrupt.kind, interrupt.node_id, source
            )
            return True
        raise InvalidArgumentError(
            f"The host rejected {MAX_ASK_ATTEMPTS} answers to OpenWOP run {self.run_id}'s {interrupt.kind} on node "
            f"{interrupt.node_id!r}. {note}"
        )

    def announce_pause(self, timeout: float, limit: str) -> None:
        """Say where to answer: the pause is on this flow run (usually the ``run-openwop-workflow`` subflow), not
        on the flow run the user started, so log this run's UI link here and in the flow run above it."""
        link, flow_run, parent = _pause_whereabouts(self.flow_run_id)
        where = f"open {link} and press Resume" if link else "press Resume on this flow run"
        self.logger.info(
            "Pausing until someone answers in the Prefect UI: %s. Waiting up to %.0fs (%s).", where, timeout, limit
        )
        if parent is not None and flow_run is not None:
            flow_run_logger(parent).info(
                "Subflow run %r (run-openwop-workflow) is paused until someone answers OpenWOP run %s: %s.",
                flow_run.name,
                self.run_id,
                where,
            )

    def warn_no_prefect_ui(self, interrupt: PendingInterrupt, timeout: float, limit: str) -> None:
        """Ephemeral mode (no ``PREFECT_API_URL``): Prefect's temporary server has no UI, so nobody can press
        Resume. The pause still ends by an answer on the OpenWOP host or through Prefect's API from this process:
        say so, and how to get a UI, instead of pointing to a UI that does not exist."""
        self.logger.warning(
            "OpenWOP run %s waits for %s on node %s, but this flow runs on Prefect's temporary server "
            "(PREFECT_API_URL is not set), which has no UI: nobody can press Resume. Answer on the OpenWOP host "
            "instead (the pause then ends within %gs), e.g. `openwop runs resolve %s %s --value '{...}'`, or through "
            "Prefect's API from this process (resume_flow_run). For a Resume form, stop this flow, start "
            "`prefect server start`, set PREFECT_API_URL=http://127.0.0.1:4200/api and run it again. Waiting up to "
            "%.0fs (%s).",
            self.run_id,
            interrupt.kind,
            interrupt.node_id,
            self.check_interval,
            self.run_id,
            interrupt.node_id,
            timeout,
            limit,
        )

    def ask_in_prefect(self, interrupt: PendingInterrupt, attempt: int, note: str) -> tuple[Any, str]:
        """Pause the flow run with a form built from the interrupt; the answer as a resume value."""
        model = input_model_for(interrupt)
        if note:
            model._description = f"{describe_interrupt(interrupt)}\n\n**{note}**"
        key = pause_key_for(interrupt, attempt)
        remaining = self.remaining()
        limit = "interrupt_timeout" if remaining is None or self.interrupt_timeout <= remaining else "timeout"
        timeout = self.interrupt_timeout if limit == "interrupt_timeout" else max(1.0, cast(float, remaining))
        if get_current_settings().api.url is None:
            self.warn_no_prefect_ui(interrupt, timeout, limit)
        else:
            self.announce_pause(timeout, limit)

        def pause() -> Any:
            return pause_flow_run(
                wait_for_input=model,
                timeout=math.ceil(timeout),
                poll_interval=max(1, math.ceil(self.check_interval)),
                key=key,
            )

        host_side = InterruptCloseWatcher(self.client, interrupt, self.last_sequence, self.check_interval)
        try:
            with host_side:
                finished, answer = _run_unless((self.watcher.fired, host_side.fired), pause, poll=0.2)
        except FlowPauseTimeout:
            raise OpenwopInterruptTimeout(interrupt, timeout, limit=limit) from None
        if not finished and host_side.fired.is_set() and not self.watcher.fired.is_set():
            self.logger.info(
                "OpenWOP run %s no longer waits on node %s (answered elsewhere, timed out there, or the run "
                "ended); ending the pause and following the run",
                self.run_id,
                interrupt.node_id,
            )
            _end_pause(self.flow_run_id)
            return None, "closed on the host"
        if not finished or answer is None:
            return None, "cancelled"
        decided_by = responder_of(answer) or _responder(key, self.flow_run_id) or "prefect-ui"
        return resume_value_for(answer, decided_by=decided_by), f"answered in Prefect by {decided_by}"


def _publish_final(client: OpenwopClient, run_id: str, workflow_id: str, progress: RunProgress, logger: Logger) -> None:
    """The artifact for a run the flow gave up on, from the run's snapshot after the cancel (best effort)."""
    try:
        snapshot = client.runs_get(run_id)
    except OpenwopError as exc:
        logger.debug("Could not read OpenWOP run %s for its artifact: %s", run_id, exc)
        return
    progress.settle(snapshot.node_states or {})
    publish_run_artifact(OpenwopRunResult.from_snapshot(snapshot, workflow_id), progress, base_url=client.base_url)


def _gives_up(error: BaseException) -> bool:
    """Exits after which the flow no longer follows the run, so the run should not go on alone."""
    if isinstance(error, (TimeoutError, OpenwopInterruptRequired)):
        return True  # includes WaitTimeoutError, OpenwopInterruptTimeout and Prefect's flow timeouts
    return not isinstance(error, Exception)  # a termination signal (Prefect cancellation), Ctrl-C, exit


def _check_seconds(name: str, value: Any, *, optional: bool = False) -> None:
    """Durations must be positive numbers of seconds: a zero or negative ``timeout`` would start the run and
    give it up at once, and a non-positive ``check_interval`` would poll Prefect in a busy loop."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        allowed = " (or None: as long as the run takes)" if optional else ""
        raise InvalidArgumentError(f"{name} must be a positive number of seconds{allowed}, got {value!r}.")


def _check_on_interrupt(on_interrupt: Any) -> InterruptHandler:
    if callable(on_interrupt) or on_interrupt in ("pause", "fail", "return"):
        return cast(InterruptHandler, on_interrupt)
    raise InvalidArgumentError(
        "on_interrupt must be 'pause', 'fail', 'return' or a callable taking the PendingInterrupt, "
        f"got {on_interrupt!r}."
    )


def _check_parameter_size(flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call whose parameters the Prefect API would refuse (``max_parameter_size``, 512 KiB by
    default), before any flow run or OpenWOP run exists. Prefect's own refusal comes later, as an HTTP 422
    that echoes every parameter (the whole ``inputs``); this message gives only sizes."""
    limit = get_current_settings().server.api.max_parameter_size
    if limit <= 0:
        return
    call_kwargs = {k: v for k, v in kwargs.items() if k not in ("return_state", "wait_for")}
    try:
        parameters = flow.serialize_parameters(get_call_parameters(flow.fn, args, call_kwargs))
        size = len(json.dumps(parameters, separators=(",", ":"), default=str).encode())
    except Exception:
        return  # arguments that do not bind or encode: Prefect and the flow report those
    if size > limit:
        raise InvalidArgumentError(
            f"run_openwop_workflow's parameters are {size:,} bytes as JSON (mostly inputs), over Prefect's limit "
            f"of {limit:,} bytes for a flow run's parameters (PREFECT_SERVER_API_MAX_PARAMETER_SIZE); nothing was "
            "started. For larger inputs (up to the OpenWOP host's request limit), start the run with the "
            "create_openwop_run task and wait for it with wait_for_openwop_run: task arguments are not stored as "
            "flow-run parameters."
        )


class _OpenwopFlow(Flow[P, R]):
    """The class of ``run_openwop_workflow``: a Prefect flow that checks its parameters' size when called."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Check the size of the parameters, then run the flow as Prefect does."""
        _check_parameter_size(self, args, kwargs)
        return super().__call__(*args, **kwargs)

    def with_options(self, *args: Any, **kwargs: Any) -> "_OpenwopFlow[P, R]":
        """Prefect's ``with_options``, keeping this class (and so the size check) on the copy."""
        copy = super().with_options(*args, **kwargs)
        copy.__class__ = _OpenwopFlow
        return cast("_OpenwopFlow[P, R]", copy)


def _openwop_flow(**options: Any) -> Callable[[Callable[P, R]], _OpenwopFlow[P, R]]:
    """Like ``@flow(...)``, building an :class:`_OpenwopFlow`."""
    return lambda fn: _OpenwopFlow(fn, **options)


@_openwop_flow(
    name="run-openwop-workflow",
    description="Run an OpenWOP workflow and return its outputs; interrupts are answered in the Prefect UI.",
    on_cancellation=[_cancel_on_flow_cancellation],
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
            passes, the remote run is cancelled and ``OpenwopWaitTimeout`` is raised.
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
    handler = _check_on_interrupt(on_interrupt)
    _check_seconds("timeout", timeout, optional=True)
    _check_seconds("interrupt_timeout", interrupt_timeout)
    _check_seconds("check_interval", check_interval)
    request = RunRequest.build(
        workflow_id, inputs, tags=tags, metadata=metadata, configurable=configurable, scope_id=scope_id
    )
    logger = get_run_logger()
    flow_run_context = FlowRunContext.get()
    assert flow_run_context is not None
    assert flow_run_context.flow_run is not None
    flow_run_id = flow_run_context.flow_run.id
    key = derive_idempotency_key(request, idempotency_key)
    with credentials.get_client() as client:
        started = create_or_reattach(client, request, key)
        run_id = started.run_id
        started.log(logger, workflow_id, client.base_url)
        with _active_lock:
            _active[flow_run_id] = (credentials, run_id)

        progress = RunProgress(logger, run_id)

        def cancel_for_prefect() -> None:
            _cancel_remote(credentials, run_id, "the Prefect flow run was cancelled", logger)

        with CancellationWatcher(flow_run_id, check_interval, cancel_for_prefect, logger) as watcher:
            follower = _Follower(
                client,
                run_id,
                workflow_id,
                on_interrupt=handler,
                timeout=timeout,
                interrupt_timeout=interrupt_timeout,
                check_interval=check_interval,
                progress=progress,
                watcher=watcher,
                flow_run_id=flow_run_id,
                logger=logger,
            )
            exit_error: BaseException | None = None
            try:
                result = follower.follow()
            except BaseException as exc:
                exit_error = exc
                raise
            finally:
                if exit_error is not None and _gives_up(exit_error) and not watcher.fired.is_set():
                    _cancel_remote(
                        credentials, run_id, f"the Prefect flow gave up: {type(exit_error).__name__}", logger
                    )
                    if publish_artifact:
                        _publish_final(client, run_id, workflow_id, progress, logger)
                elif exit_error is not None:
                    logger.warning(
                        "Stopped following OpenWOP run %s (%s); it was left running so a retry of this flow run "
                        "reattaches to it",
                        run_id,
                        exit_error,
                    )
                with _active_lock:
                    _active.pop(flow_run_id, None)
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
