"""The ``OpenwopWorkflow`` job block and its ``OpenwopWorkflowRun`` handle (sync and async dispatch)."""

from __future__ import annotations

import pytest
from prefect import flow, task

from openwop_prefect import OpenwopCredentials, OpenwopRunFailed, OpenwopWorkflow


def test_trigger_wait_fetch_in_a_sync_flow(credentials, host):
    workflow = OpenwopWorkflow(
        credentials=credentials, workflow_id="conformance-identity", inputs={"payload": {"from": "block"}}
    )

    @flow
    def pipeline():
        run = workflow.trigger()
        run.wait_for_completion()
        return run.fetch_result()

    assert pipeline() == {"payload": {"from": "block"}}


async def test_trigger_wait_fetch_in_an_async_flow(credentials, host):
    workflow = OpenwopWorkflow(
        credentials=credentials, workflow_id="conformance-identity", inputs={"payload": {"n": 1}}
    )

    @flow
    async def pipeline():
        run = await workflow.trigger({"payload": {"overridden": True}})  # dispatches to atrigger
        await run.wait_for_completion()
        explicit = await workflow.atrigger()
        await explicit.await_for_completion()
        return await run.fetch_result(), await explicit.afetch_result()

    first, second = await pipeline()

    assert first == {"payload": {"overridden": True}}
    assert second == {"payload": {"n": 1}}


def test_failed_run_raises_from_wait_and_fetch(credentials, host):
    workflow = OpenwopWorkflow(credentials=credentials, workflow_id="conformance-failure")

    @flow
    def pipeline():
        run = workflow.trigger()
        with pytest.raises(OpenwopRunFailed, match="conformance_test_failure"):
            run.wait_for_completion()
        with pytest.raises(OpenwopRunFailed, match="conformance_test_failure"):
            run.fetch_result()

    pipeline()


def test_fetch_result_before_the_run_ends_says_what_to_do(credentials, host):
    workflow = OpenwopWorkflow(
        credentials=credentials, workflow_id="conformance-cancellable", inputs={"delayMs": 30000}
    )
    run = workflow.trigger()
    with pytest.raises(RuntimeError, match="is still running; wait for it to end"):
        run.fetch_result()
    with credentials.get_client() as client:
        client.runs_cancel(run.run_id)


def test_saved_block_round_trips_with_its_credentials(credentials, host):
    credentials.save("job-block-creds", overwrite=True)
    OpenwopWorkflow(
        credentials=OpenwopCredentials.load("job-block-creds"),
        workflow_id="conformance-noop",
        tags=["nightly"],
        timeout_seconds=60,
    ).save("nightly-noop", overwrite=True)

    loaded = OpenwopWorkflow.load("nightly-noop")

    assert loaded.credentials.api_key.get_secret_value() == host.api_key
    run = loaded.trigger()
    run.wait_for_completion()
    assert run.fetch_result() == {}
    assert host.get_run(run.run_id)["tags"] == ["nightly"]


def test_trigger_retried_in_a_task_reattaches(credentials, host):
    workflow = OpenwopWorkflow(credentials=credentials, workflow_id="conformance-noop")
    run_ids = []

    @task(retries=1, retry_delay_seconds=0)
    def start():
        run_ids.append(workflow.trigger().run_id)
        if len(run_ids) == 1:
            raise RuntimeError("crash after trigger")
        return run_ids[-1]

    @flow
    def pipeline():
        return start()

    pipeline()

    assert run_ids[0] == run_ids[1]
    assert host.runs_created() == 1
