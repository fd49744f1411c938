"""The tasks, sync and async twins, inside real flows against the local host."""

from __future__ import annotations

import pytest
from prefect import flow, get_client, task
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
from prefect.context import get_run_context
from prefect.states import Failed

from openwop_core import NotFoundError, ServerError, resume
from openwop_prefect import (
    OpenwopRunFailed,
    acancel_openwop_run,
    acreate_openwop_run,
    afork_openwop_run,
    aget_openwop_run,
    aresolve_openwop_interrupt,
    cancel_openwop_run,
    create_openwop_run,
    fork_openwop_run,
    get_openwop_run,
    resolve_openwop_interrupt,
    wait_for_openwop_run,
    wait_for_openwop_run_async,
)
from openwop_prefect.tasks import retry_if_transient


def _task_run_names(flow_run_id):
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
        )
    return sorted(run.name.rsplit("-", 1)[0] for run in runs)


def test_sync_tasks_create_wait_and_read_in_one_task_run_each(credentials, host):
    @flow
    def pipeline():
        run_id = create_openwop_run(credentials, "conformance-multi-node")
        result = wait_for_openwop_run(credentials, run_id, timeout=60)
        snapshot = get_openwop_run(credentials, run_id)
        return run_id, result, snapshot, get_run_context().flow_run.id

    run_id, result, snapshot, flow_run_id = pipeline()

    assert result.outcome == "completed"
    assert result.run_id == run_id
    assert snapshot.status == "completed"
    # one task run for the whole wait, never one per poll
    assert _task_run_names(flow_run_id) == ["create-openwop-run", "get-openwop-run", "wait-for-openwop-run"]


async def test_async_twins_in_an_async_flow(credentials, host):
    @flow
    async def pipeline():
        run_id = await acreate_openwop_run(credentials, "conformance-identity", {"payload": {"n": 1}})
        result = await wait_for_openwop_run_async(credentials, run_id)
        snapshot = await aget_openwop_run(credentials, run_id)
        cancel = await acancel_openwop_run(credentials, run_id, reason="already done")
        return result, snapshot, cancel

    result, snapshot, cancel = await pipeline()

    assert result.outputs == {"payload": {"n": 1}}
    assert snapshot.outputs == {"payload": {"n": 1}}
    assert cancel.already_terminal


def test_answering_an_interrupt_with_tasks(credentials, host):
    @flow
    def pipeline():
        run_id = create_openwop_run(credentials, "conformance-approval")
        waiting = wait_for_openwop_run(credentials, run_id, stop_on_interrupt=True)
        interrupt = waiting.interrupt
        resolve_openwop_interrupt(credentials, run_id, interrupt.node_id, resume.approval("accept", decided_by="t"))
        return wait_for_openwop_run(credentials, run_id, last_sequence=waiting.last_sequence)

    result = pipeline()

    assert result.outcome == "completed"
    assert result.outputs["approval"]["action"] == "accept"


async def test_answering_an_interrupt_with_async_tasks(credentials, host):
    @flow
    async def pipeline():
        run_id = await acreate_openwop_run(credentials, "conformance-clarification")
        waiting = await wait_for_openwop_run_async(credentials, run_id, stop_on_interrupt=True)
        await aresolve_openwop_interrupt(
            credentials, run_id, waiting.interrupt.node_id, resume.clarification({"q1": "red"})
        )
        return await wait_for_openwop_run_async(credentials, run_id, last_sequence=waiting.last_sequence)

    result = await pipeline()

    assert result.outputs["answers"] == {"q1": "red"}


def test_cancel_task_cancels_and_the_wait_reports_it(credentials, host):
    @flow
    def pipeline():
        run_id = create_openwop_run(credentials, "conformance-cancellable", {"delayMs": 30000})
        cancel_openwop_run(credentials, run_id, reason="no longer needed")
        return wait_for_openwop_run(credentials, run_id, raise_on_failure=False)

    result = pipeline()

    assert result.outcome == "cancelled"
    with pytest.raises(OpenwopRunFailed, match="ended cancelled"):
        result.raise_for_status()


def test_fork_tasks_replay_a_run_into_a_new_one(credentials, host):
    @flow
    def pipeline():
        run_id = create_openwop_run(credentials, "conformance-identity", {"payload": {"v": 2}})
        wait_for_openwop_run(credentials, run_id)
        fork_id = fork_openwop_run(credentials, run_id, mode="replay")
        return run_id, fork_id, wait_for_openwop_run(credentials, fork_id)

    run_id, fork_id, forked = pipeline()

    assert fork_id != run_id
    assert forked.outputs == {"payload": {"v": 2}}
    assert host.runs_created() == 2


async def test_async_fork_task(credentials, host):
    @flow
    async def pipeline():
        run_id = await acreate_openwop_run(credentials, "conformance-noop")
        await wait_for_openwop_run_async(credentials, run_id)
        return await afork_openwop_run(credentials, run_id)

    fork_id = await pipeline()

    assert fork_id in host.run_ids()


def test_a_retried_task_reattaches_to_the_run_its_first_attempt_started(credentials, host):
    attempts = []

    @task(retries=1, retry_delay_seconds=0)
    def start_then_crash():
        run_id = create_openwop_run.fn(credentials, "conformance-noop")  # the task's code, in this task run
        attempts.append(run_id)
        if len(attempts) == 1:
            raise RuntimeError("worker lost after the run was created")
        return run_id

    @flow
    def pipeline():
        return start_then_crash()

    run_id = pipeline()

    assert attempts == [run_id, run_id]
    assert host.runs_created() == 1


def test_a_retried_fork_task_reattaches_to_the_fork_its_first_attempt_made(credentials, host):
    attempts = []

    @task(retries=1, retry_delay_seconds=0)
    def fork_then_crash(source_id):
        fork_id = fork_openwop_run.fn(credentials, source_id, mode="replay")  # the task's code, in this task run
        attempts.append(fork_id)
        if len(attempts) == 1:
            raise RuntimeError("worker lost after the fork was made")
        return fork_id

    @flow
    def pipeline():
        source_id = create_openwop_run(credentials, "conformance-identity", {"payload": {"v": 1}})
        wait_for_openwop_run(credentials, source_id)
        return source_id, fork_then_crash(source_id)

    source_id, fork_id = pipeline()

    assert attempts == [fork_id, fork_id]
    assert host.runs_created() == 2  # the source and ONE fork
    assert host.run_ids() == [source_id, fork_id]


async def test_a_retried_async_fork_task_forks_afresh_after_its_fork_failed(credentials, host):
    attempts = []

    @task(retries=1, retry_delay_seconds=0)
    async def fork_wait_then_crash(source_id):
        fork_id = await afork_openwop_run.fn(credentials, source_id, mode="replay")
        attempts.append(fork_id)
        await wait_for_openwop_run_async.fn(credentials, fork_id, raise_on_failure=False)
        if len(attempts) == 1:
            raise RuntimeError("worker lost after the fork failed")
        return fork_id

    @flow
    async def pipeline():
        source_id = await acreate_openwop_run(credentials, "conformance-failure")
        await wait_for_openwop_run_async(credentials, source_id, raise_on_failure=False)
        return await fork_wait_then_crash(source_id)

    await pipeline()

    first, second = attempts
    assert first != second  # the failed fork of the first attempt is not reattached
    assert host.runs_created() == 3  # the source and one fork per attempt
    assert host.get_run(first)["status"] == "failed"


def test_create_task_retries_transient_errors_but_not_a_missing_workflow(credentials, host):
    host.set_faults(fail_requests=[{"route": "POST /v1/runs", "status": 503, "count": 2}])  # = client attempts
    quick = create_openwop_run.with_options(retry_delay_seconds=0)

    @flow
    def pipeline():
        return quick(credentials, "conformance-noop")

    assert pipeline() in host.run_ids()

    host.clear_requests()

    @flow
    def missing():
        return quick(credentials, "no-such-workflow")

    with pytest.raises(NotFoundError, match="workflow_not_found"):
        missing()
    assert len([r for r in host.requests if r["method"] == "POST"]) == 1  # no retry of a 404


def test_retry_condition_only_accepts_transient_errors():
    transient = ServerError(status_code=503, code="service_unavailable", message="busy")
    permanent = NotFoundError(status_code=404, code="workflow_not_found", message="no")
    assert retry_if_transient(None, None, Failed(data=transient))
    assert not retry_if_transient(None, None, Failed(data=permanent))
    assert not retry_if_transient(None, None, Failed(data=OpenwopRunFailed("r", "failed")))


async def test_async_wait_after_an_answer_sees_the_run_ask_again(credentials, host):
    # reject loops back to the gate: the wait after the answer must return the new interrupt, not the old one
    @flow
    async def pipeline():
        run_id = await acreate_openwop_run(credentials, "conformance-approval-reject-loopback")
        first = await wait_for_openwop_run_async(credentials, run_id, stop_on_interrupt=True)
        await aresolve_openwop_interrupt(credentials, run_id, "gate", resume.approval("reject"))
        second = await wait_for_openwop_run_async(
            credentials, run_id, stop_on_interrupt=True, last_sequence=first.last_sequence
        )
        await aresolve_openwop_interrupt(credentials, run_id, "gate", resume.approval("accept"))
        final = await wait_for_openwop_run_async(credentials, run_id, last_sequence=second.last_sequence)
        return first, second, final

    first, second, final = await pipeline()

    assert first.interrupt.interrupt_id != second.interrupt.interrupt_id
    assert second.last_sequence > first.last_sequence
    assert final.outcome == "completed"
