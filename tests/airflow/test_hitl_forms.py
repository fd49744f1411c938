"""What a person sees for an OpenWOP interrupt in Airflow and what goes back to the run, the events that
resume the task, and the trigger's serialised form (no DAG runs here; the end-to-end tests are in
``test_hitl.py``)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
from airflow_support import API_KEY, through_trigger_row

from openwop_airflow.exceptions import OpenwopTriggerEventException
from openwop_airflow.hitl.events import HumanInputEvent
from openwop_airflow.hitl.forms import AnswerNotUsableError, request_for, resume_value_for
from openwop_airflow.hitl.question import AskedQuestion
from openwop_airflow.triggers.hitl import OpenwopHumanInputTrigger
from openwop_airflow.utils.interrupt_dict import interrupt_from_dict, interrupt_to_dict
from openwop_core import OpenwopClient, PendingInterrupt

RUN_URL = "https://openwop.example.test/ui/runs/run_1"
APPROVAL = PendingInterrupt(
    run_id="run_1",
    node_id="gate",
    interrupt_id="int_1",
    kind="approval",
    data={"title": "Ship release 4.2?", "description": "Changelog attached.", "actions": ["accept", "reject"]},
    resume_schema={"type": "object", "required": ["action"]},
)
CLARIFICATION = PendingInterrupt(
    run_id="run_1",
    node_id="clarify",
    interrupt_id="int_2",
    kind="clarification",
    data={
        "questions": [
            {"id": "region", "question": "Which region?"},
            {"id": "replicas", "question": "How many replicas?", "schema": {"type": "integer", "minimum": 1}},
        ]
    },
)
EXTERNAL = PendingInterrupt(
    run_id="run_1",
    node_id="wait",
    interrupt_id="int_3",
    kind="external",
    data={"title": "Payment received?"},
    resume_schema={
        "type": "object",
        "required": ["amount"],
        "properties": {
            "amount": {"type": "number", "description": "In EUR"},
            "reference": {"type": "string", "default": "n/a"},
        },
    },
)


def changed(interrupt: PendingInterrupt, data: dict | None = None, **fields) -> PendingInterrupt:
    """``interrupt`` with some fields and some of its ``data`` changed."""
    return interrupt.model_copy(update={**fields, "data": {**interrupt.data, **(data or {})}})


def answer(options: list[str], params: dict | None = None, who: str | None = "ada") -> HumanInputEvent:
    return HumanInputEvent.from_payload(
        {
            "chosen_options": options,
            "params_input": params or {},
            "responded_by_user": {"id": who, "name": who} if who else None,
            "responded_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            "timedout": False,
        }
    )


def test_an_approval_is_its_actions_and_an_optional_feedback_field():
    request = request_for(APPROVAL, run_url=RUN_URL, workflow_id="release")

    assert request.subject == "Ship release 4.2?"
    assert request.options == ["Approve", "Reject"]
    assert request.params["feedback"]["schema"] == {"type": ["string", "null"], "title": "Feedback"}
    assert request.params["feedback"]["value"] is None
    assert request.body.startswith(
        f"OpenWOP run [run_1]({RUN_URL}) of workflow `release` waits on node `gate` for an **approval**."
    )
    assert "Changelog attached." in request.body
    assert "Choose **Approve** or **Reject**" in request.body


def test_other_approval_actions_are_offered_by_name():
    three = changed(APPROVAL, {"actions": ["accept", "request-changes", "reject"]})
    request = request_for(three, run_url=RUN_URL)
    assert request.options == ["Approve", "Request changes", "Reject"]
    value = resume_value_for(three, answer(["Request changes"]))
    assert value["action"] == "request-changes"


def test_the_same_question_asked_again_is_the_same_request_and_a_different_one_is_not():
    """A loop back asks with a new interrupt id: same request. Another title: another request."""
    first = request_for(APPROVAL, run_url=RUN_URL, workflow_id="release")
    again = request_for(changed(APPROVAL, interrupt_id="int_9"), run_url=RUN_URL, workflow_id="release")
    other = request_for(changed(APPROVAL, {"title": "Ship release 4.3?"}), run_url=RUN_URL, workflow_id="release")

    assert again.fingerprint() == first.fingerprint()
    assert other.fingerprint() != first.fingerprint()


def test_an_approval_answer_records_who_and_when():
    value = resume_value_for(APPROVAL, answer(["Approve"], {"feedback": "  ok  "}))
    assert value == {"action": "accept", "feedback": "ok", "decidedBy": "ada", "decidedAt": "2026-01-02T03:04:05+00:00"}
    assert "feedback" not in resume_value_for(APPROVAL, answer(["Reject"], {"feedback": ""}))


@pytest.mark.parametrize("options", [[], ["Approve", "Reject"], ["Maybe"]])
def test_an_approval_needs_exactly_one_known_decision(options):
    with pytest.raises(AnswerNotUsableError, match="choose one of Approve, Reject"):
        resume_value_for(APPROVAL, answer(options))


def test_a_clarification_is_a_form_of_its_questions():
    request = request_for(CLARIFICATION, run_url=RUN_URL)

    assert request.options == ["Submit"]
    assert list(request.params) == ["region", "replicas"]
    assert request.params["region"]["schema"] == {"type": "string", "title": "Which region?"}
    assert request.params["replicas"]["schema"] == {"type": "integer", "minimum": 1, "title": "How many replicas?"}
    value = resume_value_for(CLARIFICATION, answer(["Submit"], {"region": "eu-west", "replicas": 3}))
    assert value["answers"] == [{"id": "region", "answer": "eu-west"}, {"id": "replicas", "answer": 3}]
    assert (value["decidedBy"], value["decidedAt"]) == ("ada", "2026-01-02T03:04:05+00:00")
    with pytest.raises(AnswerNotUsableError, match="question replicas was not answered"):
        resume_value_for(CLARIFICATION, answer(["Submit"], {"region": "eu-west", "replicas": None}))


def test_a_resume_schema_becomes_typed_fields_and_the_answer_an_object():
    request = request_for(EXTERNAL, run_url=RUN_URL)

    assert request.options == ["Submit"]
    amount = {k: v for k, v in request.params["amount"].items() if k != "source"}  # "source": Airflow 3.3+
    assert amount == {"value": None, "description": "In EUR", "schema": {"type": "number", "title": "amount"}}
    assert request.params["reference"]["schema"]["type"] == ["string", "null"]  # optional
    assert request.params["reference"]["value"] == "n/a"
    value = resume_value_for(EXTERNAL, answer(["Submit"], {"amount": 12.5, "reference": None}, who="bob"))
    assert value == {"amount": 12.5, "decidedBy": "bob", "decidedAt": "2026-01-02T03:04:05+00:00"}


def test_a_schema_without_extra_properties_gets_no_responder_fields():
    strict = changed(EXTERNAL, resume_schema={**(EXTERNAL.resume_schema or {}), "additionalProperties": False})
    assert resume_value_for(strict, answer(["Submit"], {"amount": 1})) == {"amount": 1}


def test_without_a_schema_one_answer_field_takes_json_or_text():
    bare = changed(EXTERNAL, resume_schema=None)
    request = request_for(bare, run_url=RUN_URL)

    assert list(request.params) == ["answer"]
    assert resume_value_for(bare, answer(["Submit"], {"answer": '{"paid": true}'}))["paid"] is True
    assert resume_value_for(bare, answer(["Submit"], {"answer": "paid in cash"})) == "paid in cash"
    with pytest.raises(AnswerNotUsableError, match="the answer is empty"):
        resume_value_for(bare, answer(["Submit"], {"answer": " "}))


def test_events_that_resume_the_task_are_read_and_checked():
    from_api = HumanInputEvent.from_payload(
        {
            "chosen_options": ["Approve"],
            "params_input": {"feedback": "ok"},
            "responded_by_user": {"id": "7", "name": "ada"},
            "responded_at": datetime(2026, 1, 2, tzinfo=timezone.utc),
            "timedout": False,
        }
    )
    assert (from_api.kind, from_api.responder, from_api.responded_at) == ("answer", "ada", "2026-01-02T00:00:00+00:00")
    no_answer = HumanInputEvent.from_payload({"error": "too late", "error_type": "timeout"})
    assert (no_answer.kind, no_answer.error_type) == ("no_answer", "timeout")
    closed = HumanInputEvent.from_payload(HumanInputEvent.closed_payload("run_1", "running", 7))
    assert (closed.kind, closed.run_status, closed.last_sequence) == ("closed", "running", 7)
    for bad, why in (
        ("Approve", "not an object"),
        ({"chosen_options": "Approve"}, "chosen_options must be a list of strings"),
        ({"chosen_options": [], "responded_by_user": "ada"}, "responded_by_user must be an object"),
        (HumanInputEvent.closed_payload("run_1", "", None), "run_status missing"),
    ):
        with pytest.raises(OpenwopTriggerEventException, match=why):
            HumanInputEvent.from_payload(bad)


def test_trigger_serialises_to_plain_json_without_the_key():
    ask = {
        "interrupt": interrupt_to_dict(APPROVAL),
        "last_sequence": 4,
        "deadline": None,
        "response_deadline": 1_900_000_000.0,
    }
    trigger = OpenwopHumanInputTrigger(ti_id="0190-ti", ask=ask, retry={"max_attempts": 2}, cancel_on_kill=True)
    classpath, kwargs = trigger.serialize()

    assert classpath == "openwop_airflow.triggers.hitl.OpenwopHumanInputTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert API_KEY not in json.dumps(kwargs)
    rebuilt = OpenwopHumanInputTrigger(**through_trigger_row(kwargs))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert (rebuilt.run_id, rebuilt.last_sequence, rebuilt.response_deadline) == ("run_1", 4, 1_900_000_000.0)


def test_the_question_kept_while_waiting_never_holds_the_interrupt_token():
    """The ``ask`` state lives in trigger rows and ``next_kwargs``: the token (a credential) stays out of it,
    and the question read back is the same one, answered by run and node."""
    token = "itok-never-stored-4711"
    asked = AskedQuestion(interrupt=changed(EXTERNAL, token=token), last_sequence=3)
    stored = asked.to_json()

    assert token not in json.dumps(stored)
    back = AskedQuestion.from_json(json.loads(json.dumps(stored)))
    assert back.interrupt.token is None
    assert back.interrupt == changed(EXTERNAL, token=None)
    assert (back.run_id, back.last_sequence) == (asked.run_id, 3)


def test_trigger_on_kill_cancels_the_run_when_nobody_answered(devhost):
    """A user killed the deferred task (nobody answered in Airflow): the run is cancelled."""
    with OpenwopClient(devhost.base_url, api_key=API_KEY) as client:
        run_id = client.runs_create("conformance-approval", {}).run_id
        devhost.wait_for_status(run_id, {"waiting-approval"})
    ask = {"interrupt": interrupt_to_dict(changed(APPROVAL, run_id=run_id)), "last_sequence": None, "deadline": None}
    trigger = OpenwopHumanInputTrigger(ti_id="0190-ti", ask=ask, cancel_on_kill=True)

    asyncio.run(trigger.on_kill())

    assert devhost.get_run(run_id)["status"] == "cancelled"


def test_an_interrupt_crosses_airflow_as_json_and_comes_back_typed():
    """What goes to XCom, trigger kwargs and events is plain JSON; read back, it is the same interrupt
    (``title``, ``actions`` and ``questions`` derive from its data). A dict without a node is refused."""
    for interrupt in (APPROVAL, CLARIFICATION, EXTERNAL):
        as_json = interrupt_to_dict(interrupt)
        assert json.loads(json.dumps(as_json)) == as_json
        assert interrupt_from_dict(as_json) == interrupt
    assert interrupt_to_dict(APPROVAL)["actions"] == ["accept", "reject"]
    assert interrupt_to_dict(CLARIFICATION)["title"] == "Which region?"
    assert interrupt_from_dict({"node_id": "gate"}, run_id="run_1").kind == "custom"
    with pytest.raises(ValueError, match="nodeId"):
        interrupt_from_dict({"run_id": "run_1", "kind": "approval"})
