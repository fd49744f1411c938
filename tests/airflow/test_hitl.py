"""``on_interrupt="ask_in_airflow"``: real DAGs run with ``dag.test()`` against the local host, and people
(the simple auth manager's users ``ada`` and ``bob``) answer on Airflow's own REST API, with the calls the
Required Actions page makes, from a background thread.

Not deferrable, the task parks in ``awaiting_input`` (Airflow 3.3; those tests are marked ``airflow33``) and
the API server resumes it when someone answers; the run is checked again before the answer is sent.
Deferrable (or on Airflow 3.1, which cannot park a task), the task waits on ``OpenwopHumanInputTrigger`` (run
inline by ``dag.test()``), which notices at once an interrupt that closes on the host (answered elsewhere,
timed out there, run cancelled) and, before Airflow 3.3, reads the answer given in Airflow every few seconds.
The answer path of the deferred task through a real triggerer and API server is in
``test_hitl_production.py``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import timedelta
from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk import DAG
from airflow_support import (
    API_KEY,
    AirflowUser,
    connection_json,
    first_run,
    in_background,
    run_dag,
    unique_dag_id,
    wait_for_request,
)

from openwop_airflow.hitl import support as hitl
from openwop_airflow.hitl.support import HitlSupport
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_airflow.triggers.hitl import OpenwopHumanInputTrigger
from openwop_airflow.utils.interrupt_dict import interrupt_to_dict
from openwop_core import OpenwopClient, resume
from openwop_devhost import DevHost

START = pendulum.datetime(2024, 1, 1, tz="UTC")


def make_dag(prefix: str, *, task_id: str = "review", **op_kwargs) -> DAG:
    with DAG(unique_dag_id(prefix), schedule=None, start_date=START, catchup=False) as dag:
        OpenwopRunOperator(task_id=task_id, on_interrupt="ask_in_airflow", **op_kwargs)
    return dag


@pytest.fixture(scope="module")
def ada() -> AirflowUser:
    return AirflowUser("ada")


@pytest.fixture(scope="module")
def bob() -> AirflowUser:
    return AirflowUser("bob")


def events_of(host: DevHost, run_id: str, event_type: str) -> list[dict]:
    return [e["payload"] for e in host.events(run_id) if e["type"] == event_type]


def resolutions(host: DevHost, run_id: str) -> list[dict]:
    """The answers the host received for the run (POST /v1/runs/{id}/interrupts/{node})."""
    return [
        r for r in host.requests if r["method"] == "POST" and r["path"].startswith(f"/v1/runs/{run_id}/interrupts/")
    ]


def client_for(host: DevHost) -> OpenwopClient:
    return OpenwopClient(host.base_url, api_key=API_KEY)


# -- answered in Airflow (the task parks in awaiting_input: Airflow 3.3) -------------------------------------


@pytest.mark.airflow33
def test_approve_on_the_required_actions_page_completes_the_run_recording_who_and_when(devhost, capfd, ada):
    """The request shows the approval (subject, body with a run link, Approve/Reject, a feedback field);
    ada's answer through the REST API reaches the run with decidedBy=ada and decidedAt=Airflow's time."""
    dag = make_dag("hitl_approve", workflow_id="conformance-approval")
    seen = {}

    def answer() -> None:
        request = seen["request"] = wait_for_request(ada, dag.dag_id)
        assert request["task_instance"]["state"] == "awaiting_input"
        response = ada.respond(request, ["Approve"], {"feedback": "looks good"})
        assert response.status_code == 200, response.text
        seen["response"] = response.json()

    with in_background(answer):
        result = run_dag(dag, capfd)

    assert result.state == "success", result.output[-3000:]
    (run_id,) = devhost.run_ids()
    request = seen["request"]
    assert request["subject"] == "Conformance approval"
    assert request["options"] == ["Approve", "Reject"]
    assert request["multiple"] is False
    assert f"OpenWOP run [{run_id}]({devhost.base_url}/v1/runs/{run_id})" in request["body"]
    assert "of workflow `conformance-approval` waits on node `gate` for an **approval**" in request["body"]
    assert "resolve with {'action': 'accept'}" in request["body"]  # the gate's description
    assert request["params"]["feedback"]["schema"]["title"] == "Feedback"

    (received,) = events_of(devhost, run_id, "approval.received")
    assert received["action"] == "accept"
    assert received["feedback"] == "looks good"
    assert received["decidedBy"] == "ada"
    responded_at = seen["response"]["responded_at"]
    assert pendulum.parse(received["decidedAt"]) == pendulum.parse(responded_at)
    assert len(resolutions(devhost, run_id)) == 1
    assert devhost.get_run(run_id)["status"] == "completed"

    assert result.xcom("review") == devhost.get_run(run_id)["variables"]
    (answer_record,) = result.xcom("review", "human_answers")
    assert answer_record["decided_by"] == "ada"
    assert answer_record["resume_value"]["action"] == "accept"
    stored = ada.request_of(dag.dag_id, result.dag_run.run_id, "review")
    assert stored["responded_by_user"] == {"id": "ada", "name": "ada"}
    assert stored["chosen_options"] == ["Approve"]
    assert (
        f"Answered node gate of OpenWOP run {run_id} with action 'accept', decided by ada in Airflow" in result.output
    )
    assert API_KEY not in result.output


@pytest.mark.airflow33
def test_reject_fails_the_task_with_the_runs_error(devhost, capfd, bob):
    dag = make_dag("hitl_reject", workflow_id="conformance-approval")

    def answer() -> None:
        response = bob.respond(wait_for_request(bob, dag.dag_id), ["Reject"], {"feedback": "not like this"})
        assert response.status_code == 200, response.text

    with in_background(answer):
        result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert result.ti_state("review") == "failed"
    (run_id,) = devhost.run_ids()
    (received,) = events_of(devhost, run_id, "approval.received")
    assert (received["action"], received["feedback"], received["decidedBy"]) == ("reject", "not like this", "bob")
    assert f"OpenWOP run {run_id} ended failed: approval_rejected" in result.output


@pytest.mark.airflow33
def test_clarification_is_a_form_of_its_questions_and_an_unanswered_one_is_asked_again(devhost, capfd, ada):
    """The clarification's question becomes a form field; an empty answer is not sent but asked again
    (the same request, pending again); the next answer completes the run."""
    dag = make_dag("hitl_clarify", workflow_id="conformance-clarification")
    seen = []

    def answer() -> None:
        first = wait_for_request(ada, dag.dag_id)
        seen.append(first)
        assert ada.respond(first, ["Submit"], {"q1": ""}).status_code == 200
        second = wait_for_request(ada, dag.dag_id)
        seen.append(second)
        assert ada.respond(second, ["Submit"], {"q1": "blue"}).status_code == 200

    with in_background(answer):
        result = run_dag(dag, capfd)

    assert result.state == "success", result.output[-3000:]
    (run_id,) = devhost.run_ids()
    first, second = seen
    assert first["subject"] == "What is your favorite color?"
    assert first["options"] == ["Submit"]
    assert first["params"]["q1"]["schema"] == {"type": "string", "title": "What is your favorite color?"}
    assert second["task_instance"]["id"] == first["task_instance"]["id"]  # the same request, asked again
    assert "cannot be used (question q1 was not answered); asking again" in result.output
    (resolved,) = events_of(devhost, run_id, "clarification.resolved")
    assert resolved["answers"] == {"q1": "blue"}
    assert len(resolutions(devhost, run_id)) == 1
    (record,) = result.xcom("review", "human_answers")
    assert record["resume_value"]["answers"] == [{"id": "q1", "answer": "blue"}]
    assert record["resume_value"]["decidedBy"] == "ada"
    assert record["resume_value"]["decidedAt"] == record["decided_at"]


@pytest.mark.airflow33
def test_a_run_that_asks_twice_is_asked_twice(devhost, capfd, ada, bob):
    """Reject loops the run back to the gate, which asks again: the task's request is pending again (Airflow
    cleared ada's earlier answer from it) and bob's answer completes the run. Both answers reached the run."""
    dag = make_dag("hitl_twice", workflow_id="conformance-approval-reject-loopback")
    seen = []

    def answer() -> None:
        first = wait_for_request(ada, dag.dag_id)
        seen.append(first)
        assert ada.respond(first, ["Reject"], {"feedback": "revise it"}).status_code == 200
        for _ in range(3):  # as a person would: a list read the instant ada answered may still show her request
            second = wait_for_request(bob, dag.dag_id)
            reply = bob.respond(second, ["Approve"])
            if reply.status_code == 200:
                seen.append(second)
                return
            print(f"bob's answer refused ({reply.status_code}: {reply.text[:300]}); looking again", file=sys.__stderr__)
            time.sleep(1)
        raise AssertionError(f"bob's answer was refused three times: {reply.status_code} {reply.text[:300]}")

    with in_background(answer):
        result = run_dag(dag, capfd)

    assert result.state == "success", result.output[-3000:]
    (run_id,) = devhost.run_ids()
    first, second = seen
    assert second["task_instance"]["id"] == first["task_instance"]["id"]
    assert second["subject"] == first["subject"] == "Conformance approval (reject loops back)"
    assert second["responded_by_user"] is None and second["chosen_options"] is None  # a fresh, unanswered request
    received = events_of(devhost, run_id, "approval.received")
    assert [(r["action"], r["decidedBy"]) for r in received] == [("reject", "ada"), ("accept", "bob")]
    assert len(resolutions(devhost, run_id)) == 2
    assert [a["decided_by"] for a in result.xcom("review", "human_answers")] == ["ada", "bob"]
    assert devhost.get_run(run_id)["status"] == "completed"


#: An approval, then a different question (a clarification) in the same run.
TWO_QUESTIONS = {
    "id": "approve-then-clarify",
    "nodes": [
        {"id": "gate", "typeId": "core.approvalGate", "config": {"title": "Ship it?"}},
        {
            "id": "clarify",
            "typeId": "core.clarificationGate",
            "config": {"questions": [{"id": "region", "question": "Which region?"}]},
        },
    ],
    "edges": [{"source": "gate", "target": "clarify"}],
}


@pytest.mark.airflow33
def test_a_different_second_question_fails_clearly_because_airflow_keeps_the_first_text(
    capfd, monkeypatch, tmp_path, ada
):
    """Airflow keeps one request per task instance and never changes its text (not even for a retry: the
    request follows the task instance to its next try). A second question that reads differently cannot
    be shown, so the task fails at once, without retrying, saying so; the run is left waiting on it."""
    (tmp_path / "two.json").write_text(json.dumps(TWO_QUESTIONS))
    with DevHost(api_key=API_KEY, workflows_dir=tmp_path) as host:
        monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(host))
        dag = make_dag("hitl_two", workflow_id="approve-then-clarify", retries=2, retry_delay=timedelta(0))

        def answer() -> None:
            assert ada.respond(wait_for_request(ada, dag.dag_id), ["Approve"]).status_code == 200

        with in_background(answer):
            result = run_dag(dag, capfd)

        assert result.state == "failed"
        assert result.try_number("review") == 1
        (run_id,) = host.run_ids()
        assert host.get_run(run_id)["status"] == "waiting-input"
        assert [r["decidedBy"] for r in events_of(host, run_id, "approval.received")] == ["ada"]
        assert (
            f"OpenWOP run {run_id} now asks 'Which region?' (node clarify, clarification), but this task "
            "instance already asked 'Ship it?' in Airflow"
        ) in result.output
        # the request in Airflow was left as it was: the first question, with ada's answer
        stored = ada.request_of(dag.dag_id, result.dag_run.run_id, "review")
        assert (stored["subject"], stored["chosen_options"]) == ("Ship it?", ["Approve"])
        assert [a["subject"] for a in result.xcom("review", "human_answers")] == ["Ship it?"]


# -- answered in Airflow while deferred (how Airflow 3.1 waits) -----------------------------------------------


def cannot_park(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the provider see an Airflow that cannot park a task in ``awaiting_input`` (as 3.1; a no-op there)."""
    real = hitl.HitlSupport
    monkeypatch.setattr(hitl, "HitlSupport", lambda **found: real(**{**found, "can_await_input": False}))


def test_without_parking_the_task_defers_and_its_trigger_reads_each_answer(devhost, capfd, monkeypatch, ada, bob):
    """An Airflow that cannot park a task (3.1; simulated on 3.3, where the API server would otherwise resume the
    task itself) defers it to the question's trigger, which reads the answer given in Airflow. Reject loops the
    run back to the gate: the task asks again, defers again, and bob's answer completes the run. Both answers
    reached the run, with who gave them."""
    cannot_park(monkeypatch)
    dag = make_dag("hitl_deferred_answers", workflow_id="conformance-approval-reject-loopback")

    def answer() -> None:
        assert ada.respond(wait_for_request(ada, dag.dag_id), ["Reject"], {"feedback": "revise it"}).status_code == 200
        assert bob.respond(wait_for_request(bob, dag.dag_id), ["Approve"]).status_code == 200

    with in_background(answer):
        result = run_dag(dag, capfd)

    assert result.state == "success", result.output[-3000:]
    (run_id,) = devhost.run_ids()
    assert result.output.count("[DAG TEST] running trigger in line") == 2
    received = events_of(devhost, run_id, "approval.received")
    assert [(r["action"], r["decidedBy"]) for r in received] == [("reject", "ada"), ("accept", "bob")]
    assert received[0]["feedback"] == "revise it"
    assert len(resolutions(devhost, run_id)) == 2
    assert [a["decided_by"] for a in result.xcom("review", "human_answers")] == ["ada", "bob"]
    assert devhost.get_run(run_id)["status"] == "completed"
    # one trace across the start, both questions, both deferrals and the answers (openwop_core.tracing)
    about_run = [e for e in devhost.requests if run_id in e["path"] or e["path"] == "/v1/runs"]
    assert {e["headers"]["traceparent"].split("-")[1] for e in about_run} == {result.xcom("review", "trace_id")}


async def test_before_airflow_3_3_a_question_trigger_reads_the_answer_until_there_is_one(devhost, monkeypatch):
    """Airflow before 3.3 does not resume a deferred task when someone answers (simulated on 3.3): the question's
    trigger reads the response every ``response_check_interval`` seconds and fires the answer itself, leaving
    the run waiting for the task to send it."""
    cannot_park(monkeypatch)
    reads: list[str] = []
    answered = SimpleNamespace(
        response_received=True,
        chosen_options=["Approve"],
        params_input={"feedback": "ok"},
        responded_at="2026-01-02T03:04:05+00:00",
        responded_by_user=SimpleNamespace(id="ada", name="ada"),
    )
    waiting = SimpleNamespace(response_received=False, chosen_options=None)

    def read_response(self, ti_id):
        reads.append(ti_id)
        return answered if len(reads) >= 4 else waiting

    monkeypatch.setattr(HitlSupport, "read_response", read_response)
    with client_for(devhost) as client:
        run_id = client.runs_create("conformance-approval").run_id
        asked = client.wait_for_run(run_id, stop_on_interrupt=True, timeout=30)
    ask = {"interrupt": interrupt_to_dict(asked.interrupt), "last_sequence": asked.last_sequence}
    trigger = OpenwopHumanInputTrigger(ti_id="0190", ask=ask, response_check_interval=0.05)

    (event,) = await asyncio.wait_for(collect(trigger), 30)

    assert reads == ["0190"] * 4
    assert event.payload["chosen_options"] == ["Approve"]
    assert event.payload["params_input"] == {"feedback": "ok"}
    assert event.payload["responded_by_user"] == {"id": "ada", "name": "ada"}
    assert event.payload["ask"] == ask
    assert devhost.get_run(run_id)["status"] == "waiting-approval"
    assert resolutions(devhost, run_id) == []


async def collect(trigger: OpenwopHumanInputTrigger) -> list:
    return [event async for event in trigger.run()]


# -- the interrupt closes on the host ------------------------------------------------------------------------


@pytest.mark.airflow33
def test_parked_task_answered_after_the_interrupt_was_resolved_elsewhere_sends_nothing(devhost, capfd, ada):
    """Resolved with the host's API while the task is parked: ada's later answer is not sent (no double
    resolve) and the task follows the run to its end."""
    dag = make_dag("hitl_elsewhere_parked", workflow_id="conformance-approval")

    def answer() -> None:
        request = wait_for_request(ada, dag.dag_id)
        with client_for(devhost) as client:
            client.interrupts_resolve_by_run(first_run(devhost), "gate", resume.approval("accept", decided_by="ops"))
        assert ada.respond(request, ["Reject"]).status_code == 200

    with in_background(answer):
        result = run_dag(dag, capfd)

    assert result.state == "success", result.output[-3000:]
    (run_id,) = devhost.run_ids()
    assert [r["decidedBy"] for r in events_of(devhost, run_id, "approval.received")] == ["ops"]
    assert len(resolutions(devhost, run_id)) == 1
    assert "no longer waits on node gate" in result.output
    assert "the answer ada gave in Airflow was not sent" in result.output


@pytest.mark.airflow33
def test_parked_task_answered_after_the_run_was_cancelled_fails_without_sending(devhost, capfd, ada):
    dag = make_dag("hitl_cancelled_parked", workflow_id="conformance-approval")

    def answer() -> None:
        request = wait_for_request(ada, dag.dag_id)
        with client_for(devhost) as client:
            client.runs_cancel(first_run(devhost), reason="changed our minds")
        assert ada.respond(request, ["Approve"]).status_code == 200

    with in_background(answer):
        result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert resolutions(devhost, run_id) == []
    assert f"OpenWOP run {run_id} ended cancelled" in result.output


@pytest.mark.parametrize("how", ["resolved_elsewhere", "cancelled"])
def test_deferred_task_notices_at_once_when_the_interrupt_closes_on_the_host(devhost, capfd, ada, how):
    """Deferred, the trigger follows the run while the request is open: an interrupt answered elsewhere, or
    a run cancelled meanwhile, ends the wait at once (nobody answers in Airflow)."""
    dag = make_dag(f"hitl_closed_{how}", workflow_id="conformance-approval", deferrable=True)

    def close_it() -> None:
        wait_for_request(ada, dag.dag_id, waiting_tasks_only=False)  # dag.test() runs the trigger inline
        with client_for(devhost) as client:
            run_id = first_run(devhost)
            if how == "cancelled":
                client.runs_cancel(run_id, reason="not needed any more")
            else:
                client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept", decided_by="token holder"))

    with in_background(close_it):
        result = run_dag(dag, capfd)

    (run_id,) = devhost.run_ids()
    assert "[DAG TEST] running trigger in line" in result.output
    assert "no longer waits on node gate" in result.output
    assert len(resolutions(devhost, run_id)) == (1 if how == "resolved_elsewhere" else 0)
    if how == "cancelled":
        assert result.state == "failed"
        assert f"OpenWOP run {run_id} ended cancelled" in result.output
    else:
        assert result.state == "success", result.output[-3000:]
        assert result.xcom("review") == devhost.get_run(run_id)["variables"]


def test_deferred_task_notices_an_interrupt_that_timed_out_on_the_host(devhost, capfd):
    """The gate times out on the host after 1.5 s and fails the run: the task fails with the run's error
    right away, not at an Airflow-side timeout."""
    dag = make_dag("hitl_host_timeout", workflow_id="conformance-approval-timeout", deferrable=True)
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert f"OpenWOP run {run_id} ended failed: approval_rejected" in result.output
    assert "timed out after 1500 ms" in result.output


def test_nobody_answering_in_airflow_before_response_timeout_fails_and_cancels(devhost, capfd):
    dag = make_dag("hitl_response_timeout", workflow_id="conformance-approval", deferrable=True, response_timeout=2)
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert "Nobody answered the question of OpenWOP run" in result.output
    assert "the run was cancelled" in result.output
    assert devhost.get_run(run_id)["status"] == "cancelled"


# -- where Airflow cannot ask a person -----------------------------------------------------------------------


def test_without_airflow_hitl_support_the_task_fails_clearly_before_starting_a_run(devhost, capfd, monkeypatch):
    """Airflow < 3.1 has no human-in-the-loop calls (simulated by making their module unimportable): the
    task fails with a message saying what is needed, is not retried, and no run was started."""
    monkeypatch.setitem(sys.modules, "airflow.sdk.execution_time.hitl", None)
    dag = make_dag("hitl_unavailable", workflow_id="conformance-approval", retries=2)
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    assert result.try_number("review") == 1
    assert 'on_interrupt="ask_in_airflow" needs Airflow\'s human-in-the-loop support (Airflow 3.1 or newer)' in (
        result.output
    )
    assert devhost.runs_created() == 0


def test_ask_in_airflow_needs_wait_for_completion():
    with pytest.raises(ValueError, match="needs wait_for_completion=True"):
        OpenwopRunOperator(task_id="t", workflow_id="w", on_interrupt="ask_in_airflow", wait_for_completion=False)


# -- a trigger left behind by Airflow's own resume ---------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "current_wait", "fires"),
    [
        ("deferred", "wait-1", True),  # still this wait: the interrupt closed elsewhere, the task must resume
        ("scheduled", "wait-1", False),  # Airflow's API server resumed the task with an answer given in Airflow
        ("deferred", "wait-2", False),  # ... and the task has deferred again since (SQLite may reuse the id)
        ("deferred", None, True),  # a task of an older release records no wait: fire, as before
        (OSError("supervisor gone"), None, True),  # cannot tell: fire, as Airflow's own triggers do
    ],
)
async def test_a_question_trigger_fires_only_while_its_task_still_waits_on_it(
    devhost, monkeypatch, state, current_wait, fires
):
    """``OpenwopHumanInputTrigger`` whose interrupt closed on the host: it fires its event only when the task
    is still deferred in the wait it was made for; otherwise it ends as cancelled, without an event, so
    Airflow neither fails the task nor hands the event to another wait."""

    def current(self, ti):
        assert (ti.dag_id, ti.task_id, ti.run_id, ti.map_index) == ("d", "review", "manual__1", -1)
        if isinstance(state, Exception):
            raise state
        return state, current_wait

    monkeypatch.setattr(HitlSupport, "current_wait", current)
    with client_for(devhost) as client:
        run_id = client.runs_create("conformance-approval").run_id
        waiting = client.wait_for_run(run_id, stop_on_interrupt=True, timeout=30)
        client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept", decided_by="elsewhere"))
    ask = {"interrupt": interrupt_to_dict(waiting.interrupt), "last_sequence": waiting.last_sequence}
    trigger = OpenwopHumanInputTrigger(ti_id="0190", ask={**ask, "wait_id": "wait-1"})
    trigger.task_instance = SimpleNamespace(dag_id="d", task_id="review", run_id="manual__1", map_index=-1)

    async def events() -> list:
        return [event async for event in trigger.run()]

    if fires:
        (event,) = await asyncio.wait_for(events(), 30)
        assert event.payload["run_id"] == run_id
        assert event.payload["ask"]["wait_id"] == "wait-1"
    else:
        with pytest.raises(asyncio.CancelledError, match="stale OpenWOP question"):
            await asyncio.wait_for(events(), 30)
