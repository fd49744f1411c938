"""Turn an OpenWOP interrupt into a Prefect input form, and the form's answer into the resume value.

``pause_flow_run(wait_for_input=Model)`` shows ``Model`` as a form on the paused flow run's Resume
dialog. :func:`input_model_for` builds that model from the interrupt, so a person answers in the Prefect
UI in the terms the workflow asked:

- an approval: a decision among the interrupt's actions (accept/reject) and optional feedback;
- a clarification: one text field per question, titled with the question;
- anything else with a ``resumeSchema``: one field per schema property (type, enum, required);
- otherwise: a single free-form JSON ``value``.

:func:`resume_value_for` maps the submitted model back to the wire shape the host expects.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from typing import Any, ClassVar, Literal

from prefect.input import RunInput
from pydantic import Field, create_model

from openwop_core import PendingInterrupt, resume

__all__ = [
    "OpenwopInterruptInput",
    "describe_interrupt",
    "input_model_for",
    "pause_key_for",
    "responder_of",
    "resume_value_for",
]

#: The optional form field where a person can say who answers (Prefect does not record who resumed a run).
RESPONDER_FIELD = "answered_by"

_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list[Any],
    "object": dict[str, Any],
}


class OpenwopInterruptInput(RunInput):
    """Base of every generated form; ``openwop_form`` says how to turn an answer into a resume value."""

    openwop_form: ClassVar[Literal["approval", "clarification", "schema", "value"]] = "value"
    openwop_kind: ClassVar[str] = "custom"


def describe_interrupt(interrupt: PendingInterrupt) -> str:
    """Markdown for the Resume dialog (and error messages): what is asked, by which run and node."""
    data = interrupt.data
    lines = [f"**{interrupt.title}**", ""]
    description = data.get("description")
    if isinstance(description, str) and description and description != interrupt.title:
        lines += [description, ""]
    for question in interrupt.questions:
        lines.append(f"- `{question.get('id')}`: {question.get('question', '')}")
    if interrupt.questions:
        lines.append("")
    artifact = data.get("artifactData")
    if isinstance(artifact, dict) and artifact:
        summary = artifact.get("summary")
        if isinstance(summary, str) and summary and summary not in (description, interrupt.title):
            lines += [f"> {summary}", ""]
    lines.append(f"OpenWOP run `{interrupt.run_id}`, node `{interrupt.node_id}` ({interrupt.kind}).")
    return "\n".join(lines)


def _field_name(raw: str, taken: set[str]) -> str:
    """A Python identifier for ``raw`` that pydantic accepts and RunInput does not already use."""
    name = re.sub(r"\W", "_", raw)
    if not name or name[0].isdigit() or name.startswith("_") or keyword.iskeyword(name):
        name = f"f_{name.lstrip('_')}"
    while name in taken or hasattr(OpenwopInterruptInput, name) or name.startswith("model_"):
        name = f"{name}_"
    taken.add(name)
    return name


def _field(
    raw: str, annotation: Any, default: Any, title: str | None, description: str | None, taken: set[str]
) -> tuple[str, tuple[Any, Any]]:
    name = _field_name(raw, taken)
    alias = raw if raw != name else None
    return name, (annotation, Field(default=default, alias=alias, title=title, description=description))


def _schema_type(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return Any
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, (str, int, float, bool)) for v in enum):
        return Literal[tuple(enum)]
    kind = schema.get("type")
    return _JSON_TYPES.get(kind, Any) if isinstance(kind, str) else Any


def input_model_for(interrupt: PendingInterrupt) -> type[OpenwopInterruptInput]:
    """A ``RunInput`` subclass asking what ``interrupt`` asks (see the module docstring)."""
    taken: set[str] = {RESPONDER_FIELD}
    fields: dict[str, Any] = {}
    form: Literal["approval", "clarification", "schema", "value"]
    schema = interrupt.resume_schema or {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else None
    if interrupt.kind == "approval":
        form = "approval"
        actions = interrupt.actions or ["accept", "reject"]
        fields["action"] = (
            Literal[tuple(actions)],
            Field(default=..., title="Decision", description=f"One of: {', '.join(actions)}."),
        )
        fields["feedback"] = (
            str | None,
            Field(default=None, title="Feedback", description="Optional note sent with the decision."),
        )
    elif interrupt.questions:
        form = "clarification"
        for question in interrupt.questions:
            qid = str(question.get("id") or f"q{len(fields) + 1}")
            text = str(question.get("question") or qid)
            annotation = _schema_type(question.get("schema"))
            name, spec = _field(qid, str if annotation is Any else annotation, ..., text, None, taken)
            fields[name] = spec
    elif properties:
        form = "schema"
        required = set(schema.get("required") or [])
        for prop, prop_schema in properties.items():
            annotation = _schema_type(prop_schema)
            title = prop_schema.get("title") if isinstance(prop_schema, dict) else None
            description = prop_schema.get("description") if isinstance(prop_schema, dict) else None
            if prop in required:
                default: Any = ...
            else:
                annotation = annotation | None
                default = prop_schema.get("default") if isinstance(prop_schema, dict) else None
            name, spec = _field(str(prop), annotation, default, title, description, taken)
            fields[name] = spec
    else:
        form = "value"
        title = "Event payload" if interrupt.kind == "external-event" else "Answer"
        fields["value"] = (Any, Field(default=..., title=title, description="JSON value sent as the answer."))
    fields[RESPONDER_FIELD] = (
        str | None,
        Field(
            default=None,
            title="Answered by",
            description="Your name or id, recorded with the answer on the OpenWOP run.",
        ),
    )
    model: type[OpenwopInterruptInput] = create_model(
        "OpenwopInterruptAnswer",
        __base__=OpenwopInterruptInput,
        __doc__=f"Answer OpenWOP run {interrupt.run_id}'s {interrupt.kind} on node {interrupt.node_id}.",
        **fields,
    )
    model.openwop_form = form
    model.openwop_kind = interrupt.kind
    # shown above the form in the Resume dialog; set as RunInput.with_initial_data(description=) sets it, which
    # would also subclass the model and so drop its docstring (the form's description) from the dialog
    model._description = describe_interrupt(interrupt)
    return model


def responder_of(answer: OpenwopInterruptInput) -> str | None:
    """Who the form says answered (the optional ``answered_by`` field), if filled in."""
    value = getattr(answer, RESPONDER_FIELD, None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def resume_value_for(answer: OpenwopInterruptInput, *, decided_by: str | None = None) -> Any:
    """The resume value the host expects for a submitted form (``decided_by`` records the responder)."""
    values = answer.model_dump(by_alias=True, exclude={RESPONDER_FIELD})
    form = type(answer).openwop_form
    if form == "approval":
        return resume.approval(values["action"], feedback=values.get("feedback") or None, decided_by=decided_by)
    if form == "clarification":
        return resume.clarification(values)
    if form == "schema":
        return {k: v for k, v in values.items() if v is not None}
    if type(answer).openwop_kind == "external-event":
        return resume.external_event(values["value"])
    return values["value"]


def pause_key_for(interrupt: PendingInterrupt, attempt: int = 0) -> str:
    """A Prefect pause key for this interrupt (lowercase hex and dashes, as Prefect requires).

    Stable for the same interrupt, so a flow retry that re-pauses for an interrupt someone already
    answered in Prefect gets that answer back instead of asking again; ``attempt`` changes it when the
    host rejected an answer and the person must be asked again.
    """
    identity = interrupt.interrupt_id or f"{interrupt.node_id}@{interrupt.sequence}"
    digest = hashlib.sha256(f"{interrupt.run_id}|{interrupt.node_id}|{identity}|{attempt}".encode()).hexdigest()
    return f"openwop-{digest[:24]}"
