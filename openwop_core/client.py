"""``OpenwopClient``: the synchronous OpenWOP v1 client (transport only; the logic lives in
``operations``, ``endpoints``, ``streaming`` and ``waiting``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from typing_extensions import Unpack

from . import models
from . import operations as ops
from ._base import ClientBase, ClientOptions
from .endpoints import Call
from .errors import OpenwopError, WaitTimeoutError
from .sse import SSEError, iter_sse_batches
from .stream_transport import OWN_CONNECTION, StreamingHTTPClient
from .streaming import IDLE, STALLED, STALLED_TICK, EventStreamState, Idle, Stalled, past, pauses
from .tracing import in_trace_operation
from .waiting import WaitPlan, WaitResult

T = TypeVar("T")

__all__ = ["OpenwopClient"]


class OpenwopClient(ClientBase):
    """Synchronous client for one OpenWOP v1 host: one connection pool, retries, resumable streams.

    Use it as a context manager (or call :meth:`close`)::

        with OpenwopClient("https://host", api_key=key) as client:
            run = client.runs_create("conformance-noop")
            result = client.wait_for_run(run.run_id, timeout=600)

    Options (keywords): ``api_key``, ``timeout`` (30 s), ``connect_timeout`` (10 s), ``stream_idle_timeout``
    (90 s), ``verify`` (True, False, a CA bundle path or an SSLContext), ``retry`` (a :class:`RetryPolicy`
    or a dict of its fields), ``headers``, ``user_agent``, ``traceparent``; ``transport`` for tests.
    """

    def __init__(
        self, base_url: str, *, transport: httpx.BaseTransport | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        super().__init__(base_url, options)
        self._http = StreamingHTTPClient(transport=transport, **self.settings.httpx_options())

    # -- plumbing -----------------------------------------------------------------------------------

    def __enter__(self) -> OpenwopClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send_once(self, call: Call[T]) -> T:
        try:
            response = self._http.request(**self.settings.request_options(call))
        except httpx.HTTPError as exc:
            raise self.settings.transport_error(call, exc) from None
        return self.settings.finish(call, response)

    def _execute(self, call: Call[T], *, retries: bool = True) -> T:
        for attempt in self.retry.retrying(call.describe, repeatable=retries):
            with attempt:
                return self._send_once(call)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    @contextmanager
    def _open_stream(self, call: Call[None], read_timeout: float) -> Iterator[httpx.Response]:
        options = self.settings.request_options(call, stream_read_timeout=read_timeout)
        try:
            with self._http.stream(**options, extensions=OWN_CONNECTION) as response:
                if not 200 <= response.status_code < 300:
                    response.read()
                    raise self.settings.http_error(call, response)
                yield response
        except httpx.HTTPError as exc:
            raise self.settings.transport_error(call, exc, streaming=True) from None

    # -- discovery and workflows --------------------------------------------------------------------

    def discovery_capabilities(self) -> models.Discovery:
        """``GET /.well-known/openwop``: what the host supports (cached for :meth:`runs_fork` checks)."""
        self._discovery = self._execute(ops.discovery_capabilities())
        return self._discovery

    def discovery_openapi(self) -> dict[str, Any]:
        """``GET /v1/openapi.json``: the host's own OpenAPI document."""
        return self._execute(ops.discovery_openapi())

    def workflows_get(self, workflow_id: str) -> models.WorkflowDefinition:
        """``GET /v1/workflows/{workflowId}``."""
        return self._execute(ops.workflows_get(workflow_id))

    # -- runs ---------------------------------------------------------------------------------------

    def runs_create(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        dedup: bool = False,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        configurable: Mapping[str, Any] | None = None,
        scope_id: str | None = None,
        tenant_id: str | None = None,
        callback_url: str | None = None,
    ) -> models.RunCreated:
        """Start a run. Retries reuse one Idempotency-Key (``idempotency_key`` or a generated one), so a
        retried create never starts two runs; ``.replayed`` tells when the host had seen the key."""
        return self._execute(
            ops.runs_create(
                workflow_id,
                inputs,
                idempotency_key=idempotency_key,
                dedup=dedup,
                tags=tags,
                metadata=metadata,
                configurable=configurable,
                scope_id=scope_id,
                tenant_id=tenant_id,
                callback_url=callback_url,
            )
        )

    def runs_get(self, run_id: str) -> models.RunSnapshot:
        """``GET /v1/runs/{runId}``: the run's current snapshot."""
        return self._execute(ops.runs_get(run_id))

    def runs_cancel(
        self, run_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> models.CancelResult:
        """Cancel a run (a finished run answers with its terminal status and ``already_terminal``)."""
        return self._execute(ops.runs_cancel(run_id, reason=reason, idempotency_key=idempotency_key))

    def runs_bulk_cancel(
        self, run_ids: Sequence[str], *, reason: str | None = None, idempotency_key: str | None = None
    ) -> models.BulkCancelResult:
        """Cancel up to 100 runs in one request; per-run results in request order."""
        return self._execute(ops.runs_bulk_cancel(run_ids, reason=reason, idempotency_key=idempotency_key))

    def runs_pause(
        self,
        run_id: str,
        *,
        reason: str | None = None,
        drain_policy: ops.DrainPolicy | None = None,
        idempotency_key: str | None = None,
    ) -> models.RunStateChange:
        """Ask the host to pause a run (``run.paused`` confirms it)."""
        return self._execute(
            ops.runs_pause(run_id, reason=reason, drain_policy=drain_policy, idempotency_key=idempotency_key)
        )

    def runs_resume(
        self, run_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> models.RunStateChange:
        """Resume a paused run (``run.resumed`` confirms it)."""
        return self._execute(ops.runs_resume(run_id, reason=reason, idempotency_key=idempotency_key))

    def runs_fork(
        self,
        run_id: str,
        *,
        mode: ops.ForkMode,
        from_seq: int | None = None,
        configurable: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> models.ForkResult:
        """Fork a run (``replay`` or ``branch`` from ``from_seq``) into a new run; raises
        :class:`UnsupportedFeatureError` on hosts whose discovery says they cannot."""
        call = ops.runs_fork(
            run_id,
            mode=mode,
            from_seq=from_seq,
            configurable=configurable,
            tags=tags,
            metadata=metadata,
            idempotency_key=idempotency_key,
        )
        discovery = self._discovery or self.discovery_capabilities()
        self._require_fork(discovery, mode)
        return self._execute(call)

    # -- events -------------------------------------------------------------------------------------

    def runs_poll_events(
        self, run_id: str, *, last_sequence: int | None = None, timeout_seconds: int | None = None
    ) -> models.EventPage:
        """One long-poll of the run's events after ``last_sequence`` (only newer events are returned,
        whatever cursor name the host understands)."""
        page = self._execute(ops.runs_poll_events(run_id, last_sequence=last_sequence, timeout_seconds=timeout_seconds))
        if last_sequence is not None:
            page.events = [e for e in page.events if e.sequence > last_sequence]
        return page

    def runs_events(
        self,
        run_id: str,
        *,
        last_event_id: str | int | None = None,
        stream_mode: str | Sequence[str] | None = None,
        buffer_ms: int | None = None,
        reconnect: bool = True,
        poll_fallback: bool = True,
    ) -> Iterator[models.RunEvent]:
        """Every event of the run after ``last_event_id``, exactly once and in order, until the terminal
        event. Reconnects with ``Last-Event-ID`` after drops and silences, falls back to the poll
        endpoint where the host has no SSE."""
        state = EventStreamState(
            run_id,
            last_event_id=last_event_id,
            stream_mode=stream_mode,
            buffer_ms=buffer_ms,
            policy=self.retry,
            reconnect=reconnect,
            poll_fallback=poll_fallback,
        )
        for item in self._follow(state, deadline=None):
            if isinstance(item, list):
                yield from item

    def _follow(
        self, state: EventStreamState, deadline: float | None, stall_check: float | None = None
    ) -> Iterator[list[models.RunEvent] | Idle | Stalled]:
        """Drive ``state`` over the wire; yields the new events of each chunk or page (never an empty list),
        an :data:`IDLE` marker after silences and, with ``stall_check``, a :data:`STALLED` marker after a
        failed connection and every ``stall_check`` seconds of the reconnect backoff."""
        while not state.done:
            stalled = False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            delay = 0.0
            try:
                if state.use_poll:
                    wait = 30 if remaining is None else int(min(30, max(1, remaining)))
                    page = self._execute(state.poll_call(wait), retries=False)
                    if events := state.feed_page(page):
                        yield events
                    delay = state.on_poll_page(page)
                else:
                    idle = self.settings.stream_idle_timeout
                    read_timeout = idle if remaining is None else max(0.05, min(idle, remaining))
                    with self._open_stream(state.sse_call(read_timeout), read_timeout) as response:
                        try:
                            for frames in iter_sse_batches(response):
                                if events := state.feed_frames(frames):
                                    yield events
                                if state.done or past(deadline):
                                    return  # keepalives reset the read timeout: the deadline is checked here
                        except (httpx.HTTPError, SSEError) as exc:
                            raise self.settings.transport_error(
                                state.sse_call(read_timeout), exc, streaming=True
                            ) from None
                    decision = state.on_stream_end()
                    if decision is None:
                        return
                    delay = decision.delay
            except OpenwopError as error:
                reconnect = state.on_error(error)
                if reconnect.idle:
                    yield IDLE
                delay = reconnect.delay
                stalled = stall_check is not None and not reconnect.idle
            if stalled:
                yield STALLED
            if delay > 0 and not state.done:
                for pause in pauses(delay, deadline, stall_check if stalled else None):
                    time.sleep(pause)
                    if stalled:
                        yield STALLED_TICK

    # -- waiting ------------------------------------------------------------------------------------

    @in_trace_operation
    def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        stop_on_interrupt: bool = False,
        last_sequence: int | None = None,
        on_event: Callable[[models.RunEvent], None] | None = None,
    ) -> WaitResult:
        """Wait until the run is terminal (or, with ``stop_on_interrupt``, waits on someone). Follows SSE
        from ``last_sequence``; ``on_event`` sees each new event. Raises :class:`WaitTimeoutError` after
        ``timeout`` seconds; a failed run is a result, not an error (see ``WaitResult.raise_for_status``)."""
        plan = WaitPlan(run_id, timeout, stop_on_interrupt, last_sequence, on_event)
        snapshot = self.runs_get(run_id)
        if plan.needs_history(snapshot):
            for event in self.runs_poll_events(run_id, timeout_seconds=1).events:
                # before the cursor: quietly; after it (the run moved on, e.g. asked again): as new events
                plan.observe(event, notify=last_sequence is None or event.sequence > last_sequence)
        if not plan.on_snapshot(snapshot):
            state = EventStreamState(run_id, last_event_id=plan.tracker.last_sequence, policy=self.retry)
            for item in self._follow(state, plan.deadline, plan.stall_check):
                if isinstance(item, Stalled):
                    if item.fresh or plan.stall_check_due():
                        try:
                            snapshot = self._execute(ops.runs_get(run_id), retries=False)
                        except OpenwopError as error:
                            plan.stall_read_failed(error)
                            continue
                        state.host_answered()
                        if plan.on_stall_snapshot(snapshot, state.not_before):
                            break
                elif isinstance(item, list):
                    if any(plan.observe(event) for event in item):
                        break
                else:
                    snapshot = self.runs_get(run_id)
                    if plan.on_snapshot(snapshot) or (stop_on_interrupt and snapshot.is_waiting):
                        break
            if not plan.finished and not state.done:
                raise WaitTimeoutError(
                    run_id,
                    timeout or 0.0,
                    snapshot.status,
                    plan.tracker.last_sequence,
                    unreachable_since=plan.unreachable_since(),
                    last_error=plan.last_error,
                )
            pause = (
                state.catch_up_wait(plan.stall_check, backoff_too=not plan.catch_up_now)
                if plan.needs_catch_up
                else None
            )
            if pause is not None:  # the events the stream could not deliver, read once (best effort)
                time.sleep(pause)
                cursor = plan.tracker.last_sequence
                try:
                    page = self.runs_poll_events(run_id, last_sequence=cursor, timeout_seconds=1)
                except OpenwopError as error:
                    plan.catch_up_failed(error)
                else:
                    for event in page.events:
                        plan.observe(event)
            snapshot = self.runs_get(run_id)
        return plan.result(snapshot)

    # -- interrupts ---------------------------------------------------------------------------------

    def interrupts_resolve_by_run(
        self, run_id: str, node_id: str, resume_value: Any, *, idempotency_key: str | None = None
    ) -> models.InterruptResolution:
        """Answer the interrupt open on ``node_id`` (API key route)."""
        return self._execute(
            ops.interrupts_resolve_by_run(run_id, node_id, resume_value, idempotency_key=idempotency_key)
        )

    def interrupts_inspect_by_token(self, token: str) -> models.InterruptInfo:
        """What a signed interrupt token asks (no API key is sent)."""
        return self._execute(ops.interrupts_inspect_by_token(token))

    def interrupts_resolve_by_token(
        self, token: str, resume_value: Any, *, idempotency_key: str | None = None
    ) -> models.InterruptResolution:
        """Answer an interrupt with its signed token (no API key is sent)."""
        return self._execute(ops.interrupts_resolve_by_token(token, resume_value, idempotency_key=idempotency_key))

    # -- artifacts and webhooks ---------------------------------------------------------------------

    def artifacts_get(self, run_id: str, artifact_id: str) -> models.Artifact:
        """``GET /v1/runs/{runId}/artifacts/{artifactId}``."""
        return self._execute(ops.artifacts_get(run_id, artifact_id))

    def webhooks_register(
        self,
        url: str,
        events: Sequence[str],
        *,
        tags: Sequence[str] | None = None,
        tenant_id: str | None = None,
        secret: str | None = None,
        idempotency_key: str | None = None,
    ) -> models.WebhookRegistration:
        """Subscribe ``url`` to run events; the returned secret signs deliveries (shown once)."""
        return self._execute(
            ops.webhooks_register(
                url, events, tags=tags, tenant_id=tenant_id, secret=secret, idempotency_key=idempotency_key
            )
        )

    def webhooks_unregister(self, webhook_id: str, *, tenant_id: str | None = None) -> None:
        """Remove a webhook subscription."""
        self._execute(ops.webhooks_unregister(webhook_id, tenant_id=tenant_id))
