"""What a person sees in Airflow for an OpenWOP interrupt, and the resume value sent back (no I/O).

- An **approval** becomes one option per action (``accept`` -> *Approve*, ``reject`` -> *Reject*, others
  by name) and an optional *Feedback* field.
- A **clarification** becomes a *Submit* option and one field per question (titled with the question).
- **Any other interrupt** becomes a *Submit* option and one field per property of its resume schema,
  or, without one, a single *Answer* field (JSON or plain text).

The subject is the interrupt's prompt; the body (markdown) says which run, node and workflow waits, with a
link to the run. The text depends only on the run, the node, the kind and the interrupt's data, so a node
that asks the same thing again (a loop back) gets the same request (see :meth:`HumanRequest.shows`).

The resume value records who answered: ``decidedBy`` (the Airflow user) and ``decidedAt`` (when Airflow
recorded the answer), unless the interrupt's resume schema forbids extra properties.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk import Param

from openwop_airflow.hitl.events import HumanInputEvent
from openwop_core import PendingInterrupt, resume

#: The option of every request that is not an approval.
SUBMIT = "Submit"
_ACTION_LABELS = {"accept": "Approve", "reject": "Reject"}
_FEEDBACK = "feedback"
_ANSWER = "answer"


class AnswerNotUsableError(ValueError):
    """The answer given in Airflow cannot be sent (no decision, an unanswered question...)."""


@dataclass(frozen=True)
class HumanRequest:
    """A human-in-the-loop request as Airflow stores it: subject, markdown body, options and form fields
    (serialised ``Param`` s)."""

    subject: str
    body: str
    options: list[str]
    params: dict[str, dict[str, Any]]

    def fingerprint(self) -> str:
        """A digest of what the request asks (text, options, form fields), to compare two requests."""
        material = json.dumps([self.subject, self.body, self.options, sorted(self.params)], sort_keys=True)
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def shows(self, stored: Any) -> bool:
        """True when ``stored`` (the request Airflow keeps for the task instance) asks what this one asks.

        Airflow keeps one request per task instance (its retries included) and never changes its text once
        written, so a later interrupt can reuse it only when it asks the same thing."""
        return (
            stored.subject == self.subject
            and (stored.body or "") == self.body
            and list(stored.options) == self.options
            and sorted(stored.params or {}) == sorted(self.params)
        )


def action_labels(interrupt: PendingInterrupt) -> dict[str, str]:
    """``{option label: action}`` of an approval, in the interrupt's order."""
    actions = interrupt.actions or ["accept", "reject"]
    labels = {a: _ACTION_LABELS.get(a, a.replace("_", " ").replace("-", " ").capitalize()) for a in actions}
    if len(set(labels.values())) < len(labels):  # two actions would look alike: show them as they are
        labels = {a: a for a in actions}
    return {label: action for action, label in labels.items()}


def request_for(interrupt: PendingInterrupt, *, run_url: str, workflow_id: str | None = None) -> HumanRequest:
    """The request that puts ``interrupt`` to a person."""
    kind = interrupt.kind or "custom"
    title = interrupt.title or f"OpenWOP run {interrupt.run_id} waits on someone"
    if kind == "approval":
        labels = list(action_labels(interrupt))
        options = labels
        params = {
            _FEEDBACK: Param(
                None,
                description="Optional; sent to the run with the decision.",
                type=["string", "null"],
                title="Feedback",
            )
        }
        how = f"Choose {' or '.join(f'**{label}**' for label in labels)}; the decision and the optional feedback"
    elif kind == "clarification":
        options = [SUBMIT]
        params = {str(q["id"]): _question_param(q) for q in _questions(interrupt)}
        how = "Answer each question below and press **Submit**; the answers"
    else:
        options = [SUBMIT]
        params = _schema_params(interrupt.resume_schema)
        how = "Fill in the form and press **Submit**; the answer"
    body = _body(interrupt, kind, title, run_url, workflow_id)
    body += f"\n\n{how} go to the run with your Airflow user name."
    return HumanRequest(subject=title, body=body, options=options, params={k: p.serialize() for k, p in params.items()})


def resume_value_for(interrupt: PendingInterrupt, answer: HumanInputEvent) -> Any:
    """The resume value for ``answer``; raises :class:`AnswerNotUsableError` when it cannot be sent."""
    kind = interrupt.kind
    values = answer.params_input
    if kind == "approval":
        labels = action_labels(interrupt)
        chosen = [labels[o] for o in answer.chosen_options if o in labels]
        if len(chosen) != 1:
            raise AnswerNotUsableError(f"choose one of {', '.join(labels)} (chosen: {list(answer.chosen_options)})")
        feedback = values.get(_FEEDBACK)
        extra = {"decidedAt": answer.responded_at} if answer.responded_at else {}
        return resume.approval(
            chosen[0],
            feedback=str(feedback).strip() if feedback not in (None, "") else None,
            decided_by=answer.responder,
            **extra,
        )
    if kind == "clarification":
        answers = {str(q["id"]): values.get(str(q["id"])) for q in _questions(interrupt)}
        unanswered = [qid for qid, value in answers.items() if value is None or value == ""]
        if unanswered:
            raise AnswerNotUsableError(f"question {unanswered[0]} was not answered")
        return _stamped(resume.clarification(answers), answer, None)
    schema = interrupt.resume_schema
    properties = _properties(schema)
    if not properties:
        return _stamped(_parsed(values.get(_ANSWER)), answer, schema)
    required = set((schema or {}).get("required") or [])
    value = {k: values.get(k) for k in properties if values.get(k) is not None or k in required}
    return _stamped(value, answer, schema)


def describe_value(value: Any) -> str:
    """A short text of a resume value for the task log (``accept``, ``answers to q1``, JSON...)."""
    if isinstance(value, dict):
        if "action" in value:
            return f"action {value['action']!r}"
        if isinstance(value.get("answers"), list):
            return "answers to " + ", ".join(str(a.get("id")) for a in value["answers"])
    return f"{json.dumps(value, default=str)[:200]}"


# -- helpers ---------------------------------------------------------------------------------------


def _questions(interrupt: PendingInterrupt) -> list[dict[str, Any]]:
    return [q for q in interrupt.questions if q.get("id") is not None]


def _question_param(question: Mapping[str, Any]) -> Param:
    own = question.get("schema")
    schema: dict[str, Any] = own if isinstance(own, dict) else {"type": "string"}
    text = str(question.get("question") or question["id"])
    return Param(None, description=f"Question {question['id']}", **{**schema, "title": text})


def _properties(schema: Any) -> dict[str, dict[str, Any]]:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return {str(k): v for k, v in properties.items() if isinstance(v, dict)} if isinstance(properties, dict) else {}


def _schema_params(schema: Any) -> dict[str, Param]:
    properties = _properties(schema)
    if not properties:
        return {
            _ANSWER: Param(
                None, description="JSON (an object, a list, a number...) or plain text.", type="string", title="Answer"
            )
        }
    required = set(schema.get("required") or [])
    params = {}
    for name, prop in properties.items():
        spec = {k: v for k, v in prop.items() if k not in ("description", "default")}
        spec.setdefault("title", name)
        if name not in required and "type" in spec:
            types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            spec["type"] = [*types, "null"] if "null" not in types else types
        params[name] = Param(prop.get("default"), description=prop.get("description"), **spec)
    return params


def _body(interrupt: PendingInterrupt, kind: str, title: str, run_url: str, workflow_id: str | None) -> str:
    run_id, node = interrupt.run_id, interrupt.node_id
    of_workflow = f" of workflow `{workflow_id}`" if workflow_id else ""
    article = "an" if kind[:1] in "aeiou" else "a"
    lines = [f"OpenWOP run [{run_id}]({run_url}){of_workflow} waits on node `{node}` for {article} **{kind}**."]
    data = interrupt.data
    for key in ("description", "message", "prompt"):
        text = data.get(key)
        if isinstance(text, str) and text.strip() and text.strip() != title:
            lines += ["", text.strip()]
            break
    return "\n".join(lines)


def _parsed(text: Any) -> Any:
    """The *Answer* field: JSON when it parses, else the text itself."""
    if not isinstance(text, str) or not text.strip():
        raise AnswerNotUsableError("the answer is empty")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _stamped(value: Any, answer: HumanInputEvent, schema: Any) -> Any:
    """Add ``decidedBy``/``decidedAt`` to an object value, unless its schema forbids extra properties."""
    if not isinstance(value, dict) or (isinstance(schema, dict) and schema.get("additionalProperties") is False):
        return value
    stamped = dict(value)
    if answer.responder:
        stamped.setdefault("decidedBy", answer.responder)
    if answer.responded_at:
        stamped.setdefault("decidedAt", answer.responded_at)
    return stamped
