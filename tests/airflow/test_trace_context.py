"""Trace context in Airflow: the create, the whole wait (in the worker or deferred to the triggerer) and the final
read of a run operator reach the host in one trace, whose id is in the task's XCom (``trace_id``) and log."""

from __future__ import annotations

import pytest
from airflow_support import run_dag, run_operator_dag
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from openwop_airflow.triggers.run import OpenwopRunTrigger


def host_trace_ids(host, run_id: str) -> set[str]:
    """The trace ids of the host's requests about ``run_id`` and of the run creates."""
    return {
        entry["headers"]["traceparent"].split("-")[1]
        for entry in host.requests
        if run_id in entry["path"] or entry["path"] == "/v1/runs"
    }


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_one_trace_id_in_xcom_log_and_host(devhost, capfd, deferrable):
    dag = run_operator_dag("trace", workflow_id="conformance-delay", inputs={"delayMs": 600}, deferrable=deferrable)
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    trace_id = result.xcom("run", "trace_id")
    assert isinstance(trace_id, str) and len(trace_id) == 32
    assert host_trace_ids(devhost, run_id) == {trace_id}
    assert f"OpenWOP run {run_id} (started)" in result.output and f"(trace {trace_id})" in result.output
    if deferrable:
        assert "[DAG TEST] running trigger in line" in result.output
        assert f"Waiting for OpenWOP run {run_id} at " in result.output  # the trigger, with the same trace:
        assert f"(from its first event); trace {trace_id}" in result.output


def test_the_active_span_is_continued(devhost, capfd):
    """A span around the task (the user's here; Airflow's task span when Airflow traces) is continued."""
    provider = TracerProvider()
    dag = run_operator_dag("trace_span", workflow_id="conformance-noop", deferrable=True)
    with provider.get_tracer("openwop-tests").start_as_current_span("around-the-dag") as span:
        result = run_dag(dag, capfd)
    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert result.xcom("run", "trace_id") == trace_id
    assert host_trace_ids(devhost, run_id) == {trace_id}


def test_each_task_try_has_a_trace_of_its_own(devhost, capfd):
    first = run_dag(run_operator_dag("trace_a", workflow_id="conformance-noop"), capfd)
    second = run_dag(run_operator_dag("trace_b", workflow_id="conformance-noop"), capfd)
    assert first.xcom("run", "trace_id") != second.xcom("run", "trace_id")


def test_a_trigger_refuses_a_malformed_trace_id():
    with pytest.raises(ValueError, match="W3C trace id"):
        OpenwopRunTrigger(run_id="run_1", trace_id="not-hex")
    assert trace.get_current_span().get_span_context().is_valid is False
