"""Interrupts: a person answers in the Prefect UI (driven here through Prefect's resume API, exactly what
the Resume dialog calls), or the flow fails, returns the interrupt, or asks a callable."""

from __future__ import annotations

import pytest
from prefect import flow, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import ArtifactSort
from prefect.states import Cancelling
from prefect_support import (
    active_flow_run_ids,
    flow_run_artifacts,
    flow_run_logs,
    flow_runs_in_state,
    in_thread,
    wait_until,
)

from openwop_core import OpenwopClient, resume
from openwop_prefect import (
    OpenwopInterruptRequired,
    OpenwopInterruptTimedOut,
    OpenwopRunFailed,
    OpenwopRunResult,
    run_openwop_workflow,
)


def _events(host, run_id, event_type):
    return [e for e in host.events(run_id) if e["type"] == event_type]


def test_approval_answered_in_prefect_resumes_the_run(credentials, host, responder):
    person = responder([{"action": "accept", "feedback": "ship it", "answered_by": "ada"}])

    state = run_openwop_workflow(credentials, "conformance-approval", check_interval=1, return_state=True)

    person.join()
    assert state.is_completed(), state.message
    [run_id] = host.run_ids()
    [received] = _events(host, run_id, "approval.received")
    assert received["payload"]["action"] == "accept"
    assert received["payload"]["decidedBy"] == "ada"
    assert received["payload"]["feedback"] == "ship it"
    assert state.result()["approval"]["action"] == "accept"
    logs = "\n".join(flow_run_logs(state.state_details.flow_run_id))
    assert "waits for approval on node gate: Conformance approval" in logs
    assert "Answered OpenWOP run" in logs
    assert logs.count("node gate resumed") == 1  # the host sends interrupt.resolved and approval.received


def test_approval_rejected_in_prefect_fails_with_the_hosts_reason(credentials, host, responder):
    responder([{"action": "reject"}])

    with pytest.raises(OpenwopRunFailed) as caught:
        run_openwop_workflow(credentials, "conformance-approval", check_interval=1)

    assert caught.value.error_code == "approval_rejected"
    assert "rejected" in str(caught.value)
    [run_id] = host.run_ids()
    [received] = _events(host, run_id, "approval.received")
    assert received["payload"]["decidedBy"] == "prefect-ui"  # nobody named: the channel is recorded


def test_clarification_questions_become_form_fields(credentials, host, responder):
    person = responder([{"q1": "blue"}])

    outputs = run_openwop_workflow(credentials, "conformance-clarification", check_interval=1)

    person.join()
    assert outputs["answers"] == {"q1": "blue"}


def test_a_run_that_asks_twice_is_asked_twice(credentials, host, responder):
    # reject loops back to the gate, which asks again: two pauses, two answers
    person = responder([{"action": "reject", "feedback": "revise"}, {"action": "accept"}])

    state = run_openwop_workflow(
        credentials, "conformance-approval-reject-loopback", check_interval=1, return_state=True
    )

    person.join()
    assert state.is_completed(), state.message
    assert len({key for _, key in person.answered}) == 2
    [run_id] = host.run_ids()
    assert [e["payload"]["action"] for e in _events(host, run_id, "approval.received")] == ["reject", "accept"]


def test_on_interrupt_fail_raises_describing_the_interrupt_and_cancels_the_run(credentials, host):
    with pytest.raises(OpenwopInterruptRequired) as caught:
        run_openwop_workflow(credentials, "conformance-approval", on_interrupt="fail", check_interval=1)

    message = str(caught.value)
    assert "waits for approval on node 'gate'" in message
    assert "Conformance approval" in message
    [run_id] = host.run_ids()
    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"


def test_on_interrupt_return_hands_back_the_pending_interrupt(credentials, host):
    result = run_openwop_workflow(credentials, "conformance-approval", on_interrupt="return", check_interval=1)

    assert isinstance(result, OpenwopRunResult)
    assert result.is_interrupted
    assert result.interrupt.kind == "approval"
    assert result.interrupt.node_id == "gate"
    assert result.interrupt.actions == ["accept", "reject"]
    assert host.get_run(result.run_id)["status"] == "waiting-approval"  # left waiting for the caller


def test_on_interrupt_callable_answers_without_pausing(credentials, host):
    seen = []

    def approve(interrupt):
        seen.append(interrupt)
        return resume.approval("accept", decided_by="policy-bot")

    outputs = run_openwop_workflow(credentials, "conformance-approval", on_interrupt=approve, check_interval=1)

    assert outputs["approval"]["action"] == "accept"
    assert [i.node_id for i in seen] == ["gate"]
    [received] = _events(host, host.run_ids()[0], "approval.received")
    assert received["payload"]["decidedBy"] == "policy-bot"


def test_callable_returning_none_falls_back_to_asking_in_prefect(credentials, host, responder):
    person = responder([{"q1": "green"}])

    outputs = run_openwop_workflow(
        credentials, "conformance-clarification", on_interrupt=lambda interrupt: None, check_interval=1
    )

    person.join()
    assert outputs["answers"] == {"q1": "green"}


def test_cancelling_a_paused_flow_run_cancels_the_remote_run_promptly(credentials, host):
    before = active_flow_run_ids()
    thread, box = in_thread(
        lambda: run_openwop_workflow(credentials, "conformance-approval", check_interval=0.5, return_state=True)
    )
    [paused] = wait_until(
        lambda: [r for r in flow_runs_in_state(StateType.PAUSED) if r.id not in before], what="the paused flow run"
    )
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(paused.id, Cancelling(), force=True)

    thread.join(30)  # well under the one-hour pause timeout
    assert not thread.is_alive()
    assert box["result"].is_cancelled()
    [run_id] = host.run_ids()
    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"
    [artifact] = wait_until(lambda: flow_run_artifacts(paused.id), what="the run-summary artifact")
    assert "**cancelled**" in artifact.data
    assert "| `gate` | cancelled |" in artifact.data  # not still "waiting": the run ended


@pytest.mark.parametrize("how", ["answered_elsewhere", "run_cancelled"])
def test_a_pause_ends_at_once_when_the_interrupt_closes_on_the_host(credentials, host, how):
    """Paused for an answer in the Prefect UI, the flow keeps watching the run: answered elsewhere (here by
    a token holder on the host), the pause ends and the flow completes with the run's outputs; a run
    cancelled on the host fails the flow with the run's status. Either way within seconds, not at the
    pause's one-hour timeout, and the flow run is not left paused."""
    before = active_flow_run_ids()
    thread, box = in_thread(
        lambda: run_openwop_workflow(credentials, "conformance-approval", check_interval=0.5, return_state=True)
    )
    [paused] = wait_until(
        lambda: [r for r in flow_runs_in_state(StateType.PAUSED) if r.id not in before], what="the paused flow run"
    )
    [run_id] = host.run_ids()
    with OpenwopClient(host.base_url, api_key=host.api_key) as client:
        if how == "run_cancelled":
            client.runs_cancel(run_id, reason="not needed any more")
        else:
            client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept", decided_by="token holder"))

    thread.join(30)
    assert not thread.is_alive()
    state = box["result"]
    logs = "\n".join(flow_run_logs(paused.id))
    assert "no longer waits on node gate" in logs
    if how == "run_cancelled":
        assert state.is_failed()
        assert "cancelled" in state.message
    else:
        assert state.is_completed(), state.message
        assert state.result()["approval"]["decidedBy"] == "token holder"
        assert len(_events(host, run_id, "approval.received")) == 1


def test_nobody_answering_in_time_fails_the_flow_and_cancels_the_run(credentials, host):
    with pytest.raises(OpenwopInterruptTimedOut) as caught:
        run_openwop_workflow(credentials, "conformance-approval", interrupt_timeout=2, check_interval=1)

    assert "Nobody answered OpenWOP run" in str(caught.value)
    assert "approval on node 'gate' within 2s (interrupt_timeout ran out)" in str(caught.value)
    assert "Raise interrupt_timeout" in str(caught.value)
    [run_id] = host.run_ids()
    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"


def test_the_flows_timeout_running_out_during_a_pause_is_named_as_the_limit(credentials, host):
    """interrupt_timeout is an hour, the flow's timeout a few seconds: the error names ``timeout``."""
    with pytest.raises(OpenwopInterruptTimedOut) as caught:
        run_openwop_workflow(credentials, "conformance-approval", timeout=4, check_interval=1)

    message = str(caught.value)
    assert "(the flow's timeout ran out during the pause)" in message
    assert "Raise the flow's timeout" in message
    assert "interrupt_timeout" not in message
    assert caught.value.limit == "timeout"
    [run_id] = host.run_ids()
    assert host.wait_for_status(run_id, timeout=10)["status"] == "cancelled"
    with get_client(sync_client=True) as client:  # the flow gave up on the run: its artifact says how it ended
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["openwop-conformance-approval"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert run_id in artifact.data
    assert "| `gate` | cancelled |" in artifact.data


def test_the_pause_logs_the_paused_subflow_runs_link_in_it_and_in_the_parent(credentials, host, responder):
    """The pause is on the run-openwop-workflow subflow, not on the flow run the user started: both show the
    link to the paused run."""
    person = responder([{"action": "accept"}])

    @flow
    def release() -> dict:
        return run_openwop_workflow(credentials, "conformance-approval", check_interval=1)

    state = release(return_state=True)
    person.join()

    assert state.is_completed(), state.message
    [(paused_id, _)] = person.answered
    link = f"/runs/flow-run/{paused_id}"
    child_logs = "\n".join(flow_run_logs(paused_id))
    parent_logs = "\n".join(flow_run_logs(state.state_details.flow_run_id))
    assert "Pausing until someone answers in the Prefect UI: open http://" in child_logs
    assert f"{link} and press Resume" in child_logs
    assert "(run-openwop-workflow) is paused until someone answers OpenWOP run" in parent_logs
    assert f"{link} and press Resume" in parent_logs
