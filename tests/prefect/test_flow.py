"""The ``run_openwop_workflow`` flow against a real local host: outputs, failures, retries that reattach
(and a retry after a failed run that does not), cancellation, transient errors, the artifact."""

from __future__ import annotations

from datetime import datetime

import pytest
from prefect import flow, get_client
from prefect.states import Cancelling
from prefect_support import (
    active_flow_run_ids,
    flow_run_artifacts,
    flow_run_logs,
    in_thread,
    new_running_flow_runs,
    read_flow_run,
    wait_until,
)

from openwop_prefect import OpenwopCredentials, OpenwopRunFailed, run_openwop_workflow


def test_success_returns_outputs_logs_progress_and_publishes_artifact(credentials, host):
    state = run_openwop_workflow(
        credentials, "conformance-identity", {"payload": {"answer": 42}}, check_interval=1, return_state=True
    )

    assert state.is_completed()
    assert state.result() == {"payload": {"answer": 42}}
    [run_id] = host.run_ids()
    logs = "\n".join(flow_run_logs(state.state_details.flow_run_id))
    assert f"Started OpenWOP run {run_id}" in logs
    assert "node identity completed" in logs
    [artifact] = flow_run_artifacts(state.state_details.flow_run_id)
    assert artifact.key == "openwop-conformance-identity"
    assert "**completed**" in artifact.data
    assert "| `identity` | completed |" in artifact.data
    assert f"{host.base_url}/v1/runs/{run_id}" in artifact.data


def test_artifact_timeline_has_each_nodes_start_and_end(credentials, host):
    """The default stream mode carries no ``node.started``: the start is the end minus ``durationMs``."""
    state = run_openwop_workflow(
        credentials, "conformance-delay", {"delayMs": 300}, check_interval=1, return_state=True
    )

    [artifact] = flow_run_artifacts(state.state_details.flow_run_id)
    [row] = [line for line in artifact.data.splitlines() if line.startswith("| `delay` |")]
    _, node, status, started, ended, duration, _ = (cell.strip() for cell in row.split("|"))
    assert (node, status) == ("`delay`", "completed")
    [completed] = [e for e in host.events(host.run_ids()[0]) if e["type"] == "node.completed"]
    assert ended == completed["timestamp"]
    elapsed = datetime.fromisoformat(ended.replace("Z", "+00:00")) - datetime.fromisoformat(
        started.replace("Z", "+00:00")
    )
    assert elapsed.total_seconds() * 1000 == pytest.approx(float(duration), abs=1)
    assert float(duration) >= 300


def test_multi_node_run_logs_each_node_as_it_arrives(credentials, host):
    state = run_openwop_workflow(credentials, "conformance-multi-node", check_interval=1, return_state=True)

    assert state.is_completed()
    logs = flow_run_logs(state.state_details.flow_run_id)
    completed = [line for line in logs if "completed" in line and "node " in line]
    assert [line.split("node ")[1].split()[0] for line in completed] == ["a", "b", "c"]


def test_failed_run_raises_with_the_remote_code_and_message(credentials, host):
    with pytest.raises(OpenwopRunFailed) as caught:
        run_openwop_workflow(credentials, "conformance-failure", check_interval=1)

    error = caught.value
    assert error.status == "failed"
    assert error.error_code == "conformance_test_failure"
    assert "conformance_test_failure" in str(error)
    assert error.error_message
    assert error.error_message in str(error)
    assert error.workflow_id == "conformance-failure"


def test_flow_retry_after_a_crash_mid_wait_reattaches_instead_of_duplicating(credentials, host):
    # The first attempt creates the run, then its first status read fails (more 503s than the client
    # retries): the flow attempt fails after creation. Prefect's retry must reattach to the same run.
    host.set_faults(fail_requests=[{"route": "GET /v1/runs/{runId}", "status": 503, "count": 2}])
    retrying = run_openwop_workflow.with_options(retries=1, retry_delay_seconds=0)

    state = retrying(credentials, "conformance-delay", {"delayMs": 300}, check_interval=1, return_state=True)

    assert state.is_completed(), state.message
    assert host.runs_created("conformance-delay") == 1
    flow_run_id = state.state_details.flow_run_id
    assert read_flow_run(flow_run_id).run_count == 2
    logs = "\n".join(flow_run_logs(flow_run_id))
    assert "left running so a retry of this flow run reattaches" in logs
    assert f"Reattached to OpenWOP run {host.run_ids()[0]}" in logs


def test_retry_of_a_parent_flow_reattaches_its_subflow_to_the_same_run(credentials, host):
    # The subflow gets a fresh flow run on the parent's retry; the key comes from the parent's task run.
    host.set_faults(fail_requests=[{"route": "GET /v1/runs/{runId}", "status": 503, "count": 2}])

    @flow(retries=1, retry_delay_seconds=0)
    def parent() -> dict:
        return run_openwop_workflow(credentials, "conformance-noop", check_interval=1)

    state = parent(return_state=True)

    assert state.is_completed(), state.message
    assert host.runs_created("conformance-noop") == 1


def test_retry_after_the_remote_run_failed_starts_a_fresh_run(credentials, host):
    retrying = run_openwop_workflow.with_options(retries=2, retry_delay_seconds=0)

    state = retrying(credentials, "conformance-failure", check_interval=1, return_state=True)

    assert state.is_failed()
    # one run per attempt: a retry never reattaches to a run that already failed
    assert host.runs_created("conformance-failure") == 3
    logs = "\n".join(flow_run_logs(state.state_details.flow_run_id))
    first, second, _ = host.run_ids()
    assert f"earlier attempt's OpenWOP run {first} ended failed; starting a fresh run" in logs
    assert f"earlier attempt's OpenWOP run {second} ended failed; starting a fresh run" in logs


def test_transient_errors_during_the_wait_are_retried_not_reported_as_failure(credentials, host):
    host.set_faults(
        drop_sse_after_events=1,
        fail_requests=[{"route": "GET /v1/runs/{runId}/events*", "status": 503, "count": 1}],
    )
    sturdy = OpenwopCredentials(base_url=host.base_url, api_key=host.api_key)  # default retries

    outputs = run_openwop_workflow(sturdy, "conformance-identity", {"payload": {"k": "v"}}, check_interval=1)

    assert outputs == {"payload": {"k": "v"}}
    assert host.runs_created() == 1


def test_cancelling_the_flow_run_cancels_the_remote_run(credentials, host):
    before = active_flow_run_ids()
    thread, box = in_thread(
        lambda: run_openwop_workflow(
            credentials, "conformance-cancellable", {"delayMs": 30000}, check_interval=0.5, return_state=True
        )
    )
    run_id = wait_until(lambda: host.run_ids() and host.run_ids()[0], what="the remote run")
    host.wait_for_status(run_id, {"running"})
    [flow_run] = wait_until(lambda: new_running_flow_runs(before), what="the running flow run")
    with get_client(sync_client=True) as client:  # what the UI's Cancel button does
        client.set_flow_run_state(flow_run.id, Cancelling(), force=True)

    thread.join(60)
    assert not thread.is_alive()
    state = box["result"]
    assert state.is_cancelled(), state
    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"
    assert "Cancelled OpenWOP run" in "\n".join(flow_run_logs(flow_run.id))


def test_timeout_is_wall_time_and_cancels_the_remote_run(credentials, host):
    state = run_openwop_workflow(
        credentials, "conformance-cancellable", {"delayMs": 30000}, timeout=1.5, check_interval=1, return_state=True
    )

    assert state.is_failed()
    assert "Timed out after 1.5s" in state.message
    assert "remote run was cancelled" in str(state.result(raise_on_failure=False))
    [run_id] = host.run_ids()
    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"
    [artifact] = flow_run_artifacts(state.state_details.flow_run_id)
    assert "**cancel" in artifact.data  # cancelling or cancelled, as the host said right after the cancel


def test_explicit_idempotency_key_starts_one_run_for_two_flow_runs(credentials, host):
    first = run_openwop_workflow(
        credentials, "conformance-noop", idempotency_key="nightly-2026-11-01", check_interval=1
    )
    second = run_openwop_workflow(
        credentials, "conformance-noop", idempotency_key="nightly-2026-11-01", check_interval=1
    )

    assert first == second
    assert host.runs_created() == 1


def test_cancelling_the_parent_flow_run_cancels_the_remote_run_of_its_subflow(credentials, host):
    @flow
    def parent():
        return run_openwop_workflow(credentials, "conformance-cancellable", {"delayMs": 30000}, check_interval=0.5)

    before = active_flow_run_ids()
    thread, _ = in_thread(lambda: parent(return_state=True))
    run_id = wait_until(lambda: host.run_ids() and host.run_ids()[0], what="the remote run")
    host.wait_for_status(run_id, {"running"})
    running = wait_until(lambda: len(new_running_flow_runs(before)) == 2 and new_running_flow_runs(before))
    [parent_run] = [r for r in running if r.parent_task_run_id is None]
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(parent_run.id, Cancelling(), force=True)

    thread.join(60)
    assert not thread.is_alive()
    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"


def test_on_cancellation_hook_cancels_the_remote_run(credentials, host):
    # What runs when a worker-managed flow run is cancelled (the process gets a signal, Prefect calls the hook).
    before = active_flow_run_ids()
    thread, box = in_thread(
        lambda: run_openwop_workflow(
            credentials, "conformance-cancellable", {"delayMs": 30000}, check_interval=30, return_state=True
        )
    )
    run_id = wait_until(lambda: host.run_ids() and host.run_ids()[0], what="the remote run")
    host.wait_for_status(run_id, {"running"})
    [flow_run] = wait_until(lambda: new_running_flow_runs(before), what="the running flow run")

    for hook in run_openwop_workflow.on_cancellation_hooks:
        hook(run_openwop_workflow, flow_run, Cancelling())

    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"
    thread.join(60)
    assert box["result"].is_failed()  # not cancelled through Prefect here: the run ended cancelled remotely
    assert "ended cancelled" in box["result"].message


class ProcessStopping(BaseException):
    """Stands in for Prefect's TerminationSignal (raising the real one makes Prefect re-send SIGTERM)."""


def test_being_stopped_while_following_cancels_the_remote_run(credentials, host):
    # The `finally` around the wait: a worker stopping the process raises a BaseException in the flow.
    def stop_the_process(interrupt):
        raise ProcessStopping

    with pytest.raises(ProcessStopping):
        run_openwop_workflow(credentials, "conformance-approval", on_interrupt=stop_the_process, check_interval=1)

    [run_id] = host.run_ids()
    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"


async def test_an_async_parent_flow_can_run_it_as_a_subflow(credentials, host):
    @flow
    async def parent():
        return run_openwop_workflow(credentials, "conformance-identity", {"payload": {"async": True}}, check_interval=1)

    assert await parent() == {"payload": {"async": True}}
