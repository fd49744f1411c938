"""The Prefect integration under stream drops, crashes, throttling and an outage.

1. Stream drops, as a property over the core property's generated runs and stream faults: the
   ``wait_for_openwop_run`` task and the ``run_openwop_workflow`` flow hand every event exactly once, in
   order, to their progress reporter (which logs it and builds the artifact), and end with the run's real
   outcome (outputs, or ``OpenwopRunFailed`` with the remote code).
2. Process faults: a flow attempt "crashes" (an error that is not the integration's, raised once) just after
   the host made the run, mid-wait, or after the run completed; Prefect's retry reattaches to that run (one
   run on the host) and returns its outputs.
3. Throttling and an outage: 429/503 bursts with ``Retry-After`` on create, snapshot and events, and a host
   down for three seconds mid-wait; the flow succeeds, no retry comes sooner than ``Retry-After``, one run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given
from prefect_support import SECRET_KEY, flow_run_logs, read_flow_run
from pydantic import SecretStr
from reliability_support import (
    FAST_RETRY,
    PROPERTY_TIMEOUT,
    WORKFLOWS_DIR,
    StreamCase,
    as_triples,
    describe_mismatch,
    expected_events,
    property_settings,
    record,
    retry_gaps,
    stream_cases,
    stream_connections,
    wait_until,
)

from openwop_core import OpenwopClient, RunEvent
from openwop_devhost import DevHost, FailRule, Faults
from openwop_prefect import (
    OpenwopCredentials,
    OpenwopRunFailed,
    artifacts,
    flows,
    run_openwop_workflow,
    runs,
    wait_for_openwop_run,
)

pytestmark = pytest.mark.timeout(PROPERTY_TIMEOUT)

PAYLOAD = {"invoice": "INV-9", "amount": 12.5}


@dataclass
class Progress:
    """Every event the integration's progress reporter (``RunProgress``) received."""

    events: list[RunEvent] = field(default_factory=list)


@pytest.fixture(scope="module")
def module_host() -> Iterator[DevHost]:
    with DevHost(api_key=SECRET_KEY, workflows_dir=WORKFLOWS_DIR, keepalive_interval=0.2) as devhost:
        yield devhost


@pytest.fixture(scope="module")
def progress() -> Iterator[Progress]:
    seen = Progress()
    original = artifacts.RunProgress.__call__

    def spy(self: artifacts.RunProgress, event: RunEvent) -> None:
        seen.events.append(event)
        original(self, event)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(artifacts.RunProgress, "__call__", spy)
        yield seen


def fast_credentials(host: DevHost) -> OpenwopCredentials:
    return OpenwopCredentials(base_url=host.base_url, api_key=SecretStr(SECRET_KEY), timeout=10)


@pytest.fixture
def reconnect_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocks build clients with ``retry=RetryPolicy(max_attempts=...)``; for the stream properties,
    reconnect at once instead (the drops are the point, not the backoff)."""
    original = OpenwopCredentials._client_options

    def options(self: OpenwopCredentials, overrides: dict[str, Any]) -> dict[str, Any]:
        return original(self, {"retry": FAST_RETRY, **overrides})

    monkeypatch.setattr(OpenwopCredentials, "_client_options", options)


def check(host: DevHost, run_id: str, case: StreamCase, seen: list[RunEvent]) -> None:
    host.wait_for_status(run_id)
    assert host.get_run(run_id)["status"] == case.outcome
    triples = as_triples(seen)
    expected = expected_events(host.events(run_id), case)
    assert triples == expected, describe_mismatch(triples, expected)


@pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs:UserWarning")
@given(case=stream_cases())
@property_settings(ci_examples=14, soak_examples=100)
def test_the_wait_task_reports_every_event_once_and_the_real_end(
    module_host: DevHost, progress: Progress, reconnect_at_once: None, case: StreamCase
) -> None:
    began = time.monotonic()
    module_host.set_faults(Faults(seed=case.seed))
    with OpenwopClient(module_host.base_url, api_key=SECRET_KEY) as client:
        run_id = client.runs_create(case.workflow_id, case.inputs).run_id
        module_host.set_run_faults(run_id, case.faults)
        if case.cancel:
            client.runs_cancel(run_id, reason="generated case")
    progress.events = []

    result = wait_for_openwop_run(fast_credentials(module_host), run_id, timeout=60, raise_on_failure=False)

    assert result.status == case.outcome
    assert result.last_sequence == progress.events[-1].sequence
    check(module_host, run_id, case, progress.events)
    record(
        "stream/prefect wait task",
        len(progress.events),
        time.monotonic() - began,
        stream_connections(module_host, run_id),
    )


@given(case=stream_cases().filter(lambda c: not c.cancel))
@property_settings(ci_examples=6, soak_examples=50)
def test_the_flow_reports_every_event_once_and_the_real_end(
    module_host: DevHost, progress: Progress, reconnect_at_once: None, case: StreamCase
) -> None:
    began = time.monotonic()
    module_host.set_faults(Faults(seed=case.seed))
    module_host.set_run_faults(case.workflow_id, case.faults)  # the flow creates the run itself
    progress.events = []
    try:
        state = run_openwop_workflow(
            fast_credentials(module_host),
            case.workflow_id,
            case.inputs,
            check_interval=0.2,
            publish_artifact=False,
            return_state=True,
        )
    finally:
        module_host.set_run_faults(case.workflow_id)
    run_id = module_host.run_ids()[-1]

    if case.outcome == "completed":
        assert state.is_completed(), state.message
    else:
        assert state.is_failed()
        with pytest.raises(OpenwopRunFailed):
            state.result()
    check(module_host, run_id, case, progress.events)
    record(
        "stream/prefect flow", len(progress.events), time.monotonic() - began, stream_connections(module_host, run_id)
    )


# -- process faults -----------------------------------------------------------------------------------


class WorkerCrash(Exception):
    """Stands for the process running the flow dying at this point (Prefect retries the flow run)."""


def crash_after_create(patch: pytest.MonkeyPatch) -> list[str]:
    original = runs.create_or_reattach  # what flows.py imported
    crashed: list[str] = []

    def once(*args: Any, **kwargs: Any) -> Any:
        started = original(*args, **kwargs)
        if not crashed:
            crashed.append("after create")
            raise WorkerCrash("simulated crash: the host made the run, the answer was lost")
        return started

    patch.setattr(flows, "create_or_reattach", once)
    return crashed


def crash_mid_wait(patch: pytest.MonkeyPatch) -> list[str]:
    original = artifacts.RunProgress.__call__
    crashed: list[str] = []
    seen: list[int] = []

    def on_event(self: artifacts.RunProgress, event: RunEvent) -> None:
        original(self, event)
        seen.append(event.sequence)
        if not crashed and len(seen) == 2:
            crashed.append("mid-wait")
            raise WorkerCrash("simulated crash mid-wait")

    patch.setattr(artifacts.RunProgress, "__call__", on_event)
    return crashed


def crash_after_the_run_completed(patch: pytest.MonkeyPatch) -> list[str]:
    original = artifacts.publish_run_artifact  # what flows.py imported
    crashed: list[str] = []

    def once(*args: Any, **kwargs: Any) -> None:
        if not crashed:
            crashed.append("after completion")
            raise WorkerCrash("simulated crash after the run completed")
        original(*args, **kwargs)

    patch.setattr(flows, "publish_run_artifact", once)
    return crashed


CRASHES: dict[str, Callable[[pytest.MonkeyPatch], list[str]]] = {
    "after the host made the run (answer lost)": crash_after_create,
    "mid-wait": crash_mid_wait,
    "after the run completed, before returning": crash_after_the_run_completed,
}


@pytest.mark.parametrize("where", list(CRASHES))
def test_a_flow_retried_after_a_crash_reattaches_to_its_run(
    host: DevHost, credentials: OpenwopCredentials, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    crashed = CRASHES[where](monkeypatch)
    retrying = run_openwop_workflow.with_options(retries=1, retry_delay_seconds=0)

    state = retrying(
        credentials, "rel-slow-echo", {"payload": PAYLOAD, "delayMs": 1200}, check_interval=0.5, return_state=True
    )

    assert crashed, "the crash point was never reached"
    assert state.is_completed(), state.message
    assert cast(dict[str, Any], state.result())["payload"] == PAYLOAD
    assert host.runs_created() == 1  # the retry reattached: one remote run
    (run_id,) = host.run_ids()
    assert host.get_run(run_id)["status"] == "completed"
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    assert read_flow_run(flow_run_id).run_count == 2
    assert f"Reattached to OpenWOP run {run_id}" in "\n".join(flow_run_logs(flow_run_id))


def test_a_flow_run_process_that_dies_mid_wait_leaves_its_run_going(
    host: DevHost, credentials: OpenwopCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SystemExit`` mid-wait (a flow-run process whose worker was killed exits when its console pipe breaks) is
    a crash, not a decision to stop: the remote run goes on, for the flow run's retry to reattach to."""
    original = artifacts.RunProgress.__call__
    exited: list[int] = []

    def on_event(self: artifacts.RunProgress, event: RunEvent) -> None:
        original(self, event)
        if not exited:
            exited.append(event.sequence)
            raise SystemExit(1)

    monkeypatch.setattr(artifacts.RunProgress, "__call__", on_event)
    with pytest.raises(SystemExit):
        run_openwop_workflow(credentials, "rel-slow-echo", {"payload": PAYLOAD, "delayMs": 3000}, check_interval=0.5)

    assert exited, "the flow never followed the run"
    (run_id,) = host.run_ids()
    assert host.get_run(run_id)["status"] in {"pending", "running", "completed"}
    assert not [e for e in host.events(run_id) if e["type"] == "run.cancelled"]


# -- throttling and outages -------------------------------------------------------------------------


def test_throttled_requests_are_retried_no_sooner_than_retry_after(host: DevHost) -> None:
    routes = ["POST /v1/runs", "GET /v1/runs/{runId}", "GET /v1/runs/{runId}/events"]
    host.set_faults(
        fail_requests=[FailRule(route=r, status=s, count=1, retry_after=1) for r in routes for s in (429, 503)]
    )
    credentials = OpenwopCredentials(base_url=host.base_url, api_key=SecretStr(SECRET_KEY))  # default attempts

    outputs = run_openwop_workflow(credentials, "rel-slow-echo", {"payload": PAYLOAD}, check_interval=0.5)

    assert cast(dict[str, Any], outputs)["payload"] == PAYLOAD
    assert host.runs_created() == 1
    # A run's events are one resource over SSE (/events) and long-poll (/events/poll): once a snapshot read
    # during the stream's backoff shows the run ended, the flow reads the missed events from the poll endpoint,
    # and that read must honour the stream's Retry-After as well (nothing else runs against the host meanwhile).
    requests = [{**r, "path": r["path"].removesuffix("/poll")} for r in host.requests]
    gaps = retry_gaps(requests)
    assert len(gaps) >= 6, [(r["method"], r["path"], r["status"], r.get("injected")) for r in requests]
    assert min(g.seconds for g in gaps) >= 1.0, min(gaps, key=lambda g: g.seconds)


def test_the_flow_rides_out_a_host_outage(host: DevHost) -> None:
    credentials = OpenwopCredentials(base_url=host.base_url, api_key=SecretStr(SECRET_KEY))
    outage: list[float] = []

    def take_the_host_down() -> None:
        wait_until(lambda: host.run_ids() and host.get_run(host.run_ids()[0])["status"] == "running")
        time.sleep(0.3)
        host.stop()
        started = time.monotonic()
        time.sleep(3.0)
        host.start()
        outage.append(time.monotonic() - started)

    helper = threading.Thread(target=take_the_host_down, daemon=True)
    helper.start()
    state = run_openwop_workflow(
        credentials, "rel-slow-echo", {"payload": PAYLOAD, "delayMs": 2500}, check_interval=0.5, return_state=True
    )
    helper.join(timeout=30)

    assert outage  # the host was down for a while mid-wait
    assert state.is_completed(), state.message
    assert cast(dict[str, Any], state.result())["payload"] == PAYLOAD
    assert host.runs_created() == 1
