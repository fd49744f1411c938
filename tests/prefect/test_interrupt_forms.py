"""The input forms built from interrupts, and the resume values built from the answers (no server)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from openwop_core import PendingInterrupt
from openwop_prefect.interrupts import describe_interrupt, input_model_for, pause_key_for, resume_value_for


def _interrupt(**fields):
    return PendingInterrupt.model_validate({"run_id": "run-1", "node_id": "gate", **fields})


def test_approval_form_offers_the_interrupts_actions_and_optional_feedback():
    interrupt = _interrupt(kind="approval", data={"title": "Deploy?", "actions": ["accept", "reject", "edit"]})
    model = input_model_for(interrupt)

    schema = model.model_json_schema()
    assert schema["properties"]["action"]["enum"] == ["accept", "reject", "edit"]
    assert schema["required"] == ["action"]
    with pytest.raises(ValidationError):
        model(action="maybe")
    value = resume_value_for(model(action="reject", feedback="too risky"), decided_by="ada")
    assert value["action"] == "reject"
    assert value["feedback"] == "too risky"
    assert value["decidedBy"] == "ada"
    assert "Deploy?" in model._description


def test_clarification_form_has_one_field_per_question_even_with_awkward_ids():
    questions = [{"id": "q1", "question": "Colour?"}, {"id": "what-size", "question": "Size?"}]
    model = input_model_for(_interrupt(kind="clarification", data={"questions": questions}))

    schema = model.model_json_schema(by_alias=True)
    assert schema["properties"]["q1"]["title"] == "Colour?"
    assert schema["properties"]["what-size"]["title"] == "Size?"
    answer = model(**{"q1": "blue", "what-size": "L"})
    assert resume_value_for(answer) == {"answers": [{"id": "q1", "answer": "blue"}, {"id": "what-size", "answer": "L"}]}


def test_resume_schema_properties_become_typed_fields():
    schema = {
        "type": "object",
        "required": ["count"],
        "properties": {
            "count": {"type": "integer", "title": "How many"},
            "mode": {"type": "string", "enum": ["fast", "safe"]},
            "schema": {"type": "boolean"},  # a name pydantic models reserve
        },
    }
    model = input_model_for(_interrupt(kind="custom", resume_schema=schema))

    with pytest.raises(ValidationError):
        model(count="many")
    assert resume_value_for(model(count=3, mode="safe")) == {"count": 3, "mode": "safe"}
    assert resume_value_for(model(**{"count": 1, "schema": True})) == {"count": 1, "schema": True}


def test_interrupt_without_schema_asks_for_a_json_value():
    external = input_model_for(_interrupt(kind="external-event"))
    assert resume_value_for(external(value={"ok": True})) == {"eventPayload": {"ok": True}}
    custom = input_model_for(_interrupt(kind="custom"))
    assert resume_value_for(custom(value=[1, 2])) == [1, 2]


def test_pause_keys_are_stable_per_interrupt_and_valid_for_prefect():
    interrupt = _interrupt(kind="approval", interrupt_id="int-1")
    key = pause_key_for(interrupt)
    assert key == pause_key_for(interrupt)
    assert key != pause_key_for(interrupt, attempt=1)
    assert key != pause_key_for(_interrupt(kind="approval", interrupt_id="int-2"))
    assert re.fullmatch(r"[a-z0-9-]+", key)


def test_description_names_the_run_and_node():
    text = describe_interrupt(_interrupt(kind="approval", data={"title": "Deploy?", "description": "Prod push"}))
    assert "**Deploy?**" in text
    assert "Prod push" in text
    assert "`run-1`" in text
    assert "`gate`" in text
