"""Trace context and Prefect events: the flow's requests share one trace, named in its result and artifact; the
run's lifecycle arrives on the Prefect server as ``openwop.run.*`` events related to the flow run, and an
automation triggered by one fires (the test harness's server runs Prefect's triggers and actions services)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prefect import flow, get_client
from prefect.automations import Automation
from prefect.events.actions import DoNothing
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.worker import EventsWorker
from prefect_support import SECRET_KEY, flow_run_artifacts, wait_until

from openwop_core.resume import approval
from openwop_prefect import (
    OpenwopRunResult,
    create_openwop_run,
    resolve_openwop_interrupt,
    run_openwop_workflow,
    wait_for_openwop_run,
)


def host_trace_ids(host, run_id: str) -> set[str]:
    """The trace ids of the host's requests about ``run_id`` and of the run creates."""
    return {
        entry["headers"]["traceparent"].split("-")[1]
        for entry in host.requests
        if run_id in entry["path"] or entry["path"] == "/v1/runs"
    }


def events_of(resource_id: str, count: int, names: list[str] | None = None) -> list[Any]:
    """The Prefect events about ``resource_id`` (oldest first), once at least ``count`` arrived."""
    EventsWorker.drain_all()
    event_filter = EventFilter(
        resource=EventResourceFilter(id=[resource_id]), event=EventNameFilter(name=names) if names else None
    )

    def read() -> list[Any] | None:
        with get_client(sync_client=True) as client:
            found = sorted(client.read_events(filter=event_filter, limit=50).events, key=lambda e: e.occurred)
        return found if len(found) >= count else None

    return wait_until(read, timeout=30)


def related_roles(event: Any) -> dict[str, str]:
    return {resource.role: resource.id for resource in event.related}


def test_flow_result_and_artifact_carry_the_trace_the_host_saw(credentials, host):
    result = run_openwop_workflow(credentials, "conformance-delay", {"delayMs": 300}, on_interrupt="return")
    assert isinstance(result, OpenwopRunResult) and result.trace_id
    assert host_trace_ids(host, result.run_id) == {result.trace_id}

    state = run_openwop_workflow(credentials, "conformance-noop", check_interval=1, return_state=True)
    run_id = host.run_ids()[-1]
    [trace_id] = host_trace_ids(host, run_id) - {result.trace_id}
    [artifact] = flow_run_artifacts(state.state_details.flow_run_id)
    assert f"| Trace id | `{trace_id}` |" in artifact.data


def test_a_span_around_the_flow_is_continued(credentials, host):
    with TracerProvider().get_tracer("openwop-tests").start_as_current_span("around-the-flow") as span:
        result = run_openwop_workflow(credentials, "conformance-noop", on_interrupt="return")
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert result.trace_id == trace_id
    assert host_trace_ids(host, result.run_id) == {trace_id}
    assert not trace.get_current_span().get_span_context().is_valid


def test_the_flow_emits_created_and_completed_related_to_its_flow_run(credentials, host):
    state = run_openwop_workflow(
        credentials, "conformance-identity", {"payload": {"secret": "do-not-emit"}}, check_interval=1, return_state=True
    )
    [run_id] = host.run_ids()
    created, completed = events_of(f"openwop.run.{run_id}", 2)
    assert (created.event, completed.event) == ("openwop.run.created", "openwop.run.completed")
    assert completed.resource.root == {
        "prefect.resource.id": f"openwop.run.{run_id}",
        "prefect.resource.name": "conformance-identity",
        "openwop.workflow-id": "conformance-identity",
        "openwop.host": host.base_url,
        "openwop.run-status": "completed",
    }
    assert related_roles(completed)["flow-run"] == f"prefect.flow-run.{state.state_details.flow_run_id}"
    assert completed.payload["trace_id"] == created.payload["trace_id"]
    assert completed.payload["run_url"] == f"{host.base_url}/v1/runs/{run_id}"
    text = created.model_dump_json() + completed.model_dump_json()
    assert "do-not-emit" not in text and SECRET_KEY not in text


def test_a_failed_run_emits_failed_with_the_error(credentials, host):
    state = run_openwop_workflow(credentials, "conformance-failure", check_interval=1, return_state=True)
    assert state.is_failed()
    [run_id] = host.run_ids()
    [failed] = events_of(f"openwop.run.{run_id}", 1, ["openwop.run.failed"])
    assert failed.payload["error"]["code"] == "conformance_test_failure"
    assert failed.payload["status"] == "failed"


def test_the_tasks_emit_waiting_for_input_resumed_and_completed(credentials, host):
    @flow
    def approve_in_tasks() -> str:
        run_id = create_openwop_run(credentials, "conformance-approval")
        waiting = wait_for_openwop_run(credentials, run_id, stop_on_interrupt=True)
        resolve_openwop_interrupt(credentials, run_id, waiting.interrupt.node_id, approval("accept"))
        wait_for_openwop_run(credentials, run_id)
        return run_id

    run_id = approve_in_tasks()
    names = [e.event for e in events_of(f"openwop.run.{run_id}", 4)]
    assert names == [
        "openwop.run.created",
        "openwop.run.waiting-for-input",
        "openwop.run.resumed",
        "openwop.run.completed",
    ]
    [waiting] = events_of(f"openwop.run.{run_id}", 1, ["openwop.run.waiting-for-input"])
    assert set(related_roles(waiting)) >= {"flow-run", "task-run"}
    assert waiting.payload["interrupt"]["kind"] == "approval" and "token" not in str(waiting.payload)


def test_an_automation_triggered_by_completed_fires(credentials, host):
    automation = Automation(
        name="openwop-completed-test",
        trigger=EventTrigger(
            expect={"openwop.run.completed"},
            match={"prefect.resource.id": "openwop.run.*", "openwop.workflow-id": "conformance-multi-node"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[DoNothing()],
    ).create()
    try:
        run_openwop_workflow(credentials, "conformance-multi-node", check_interval=1)
        [fired] = events_of(f"prefect.automation.{automation.id}", 1, ["prefect.automation.triggered"])
        [run_id] = host.run_ids()
        assert fired.payload["triggering_event"]["resource"]["prefect.resource.id"] == f"openwop.run.{run_id}"
    finally:
        automation.delete()


def test_artifacts_of_a_completed_run_are_materialized_assets(credentials, host):
    state = run_openwop_workflow(credentials, "devhost-artifact", check_interval=1, return_state=True)
    [run_id] = host.run_ids()
    [created] = [e for e in host.events(run_id) if e["type"] == "artifact.created"]
    artifact_id = created["payload"]["artifactId"]
    key = f"openwop://{host.base_url.split('://', 1)[1]}/workflows/devhost-artifact/artifacts/{artifact_id}"
    [event] = events_of(key, 1, ["prefect.asset.materialization.succeeded"])
    assert event.resource.root == {
        "prefect.resource.id": key,
        "prefect.resource.name": artifact_id,
        "prefect.asset.url": f"{host.base_url}/v1/runs/{run_id}/artifacts/{artifact_id}",
    }
    roles = related_roles(event)
    assert roles["asset-materialized-by"] == "openwop"
    assert roles["openwop-run"] == f"openwop.run.{run_id}"
    assert roles["flow-run"] == f"prefect.flow-run.{state.state_details.flow_run_id}"
    assert event.payload == {
        "run_id": run_id,
        "artifact_id": artifact_id,
        "artifact_type": "json",
        "trace_id": event.payload["trace_id"],
    }


def test_a_flow_that_gives_up_emits_cancelled(credentials, host):
    state = run_openwop_workflow(
        credentials, "conformance-cancellable", {"delayMs": 30000}, timeout=1, check_interval=1, return_state=True
    )
    assert state.is_failed()
    [run_id] = host.run_ids()
    [cancelled] = events_of(f"openwop.run.{run_id}", 1, ["openwop.run.cancelled"])
    assert cancelled.payload["reason"] == "the Prefect flow gave up: OpenwopWaitTimedOut"
    assert host.get_run(run_id)["status"] == "cancelled"
