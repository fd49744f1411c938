"""Typed, tolerant models of OpenWOP v1 documents.

Every model keeps unknown fields (``model_extra``) and treats optional fields as optional, because real
hosts differ. All host variance (``seq``/``sequence``, ``data``/``payload``, ``endedAt``, poll-cursor
names, per-item error shapes, ``subscriptionId``...) is normalised here, in ``_normalise_*`` validators,
so that nothing above this module ever looks at a legacy spelling.

Why one module of ~590 lines: these are flat declarations (about 30 small models) that cross-reference one
another, and the normalisation rules are only readable next to the fields they fill; splitting them by
endpoint would scatter the host-variance rules this module exists to keep in one place.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "Artifact",
    "BulkCancelItem",
    "BulkCancelResult",
    "CancelResult",
    "Discovery",
    "ErrorInfo",
    "EventPage",
    "ForkResult",
    "InterruptInfo",
    "InterruptResolution",
    "OpenwopModel",
    "PendingInterrupt",
    "RunCreated",
    "RunEvent",
    "RunSnapshot",
    "RunStateChange",
    "RunStatus",
    "SnapshotInterrupt",
    "WebhookRegistration",
    "WorkflowDefinition",
]


class OpenwopModel(BaseModel):
    """Base of every wire model: camelCase on the wire, snake_case in Python, unknown fields kept."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        alias_generator=to_camel,
        protected_namespaces=(),
    )

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready dict in wire spelling (camelCase), without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class RunStatus(str, enum.Enum):
    """The v1 run statuses, with the two questions every wait loop asks of them.

    A status string a host invents later (``timed-out``...) is not in this enum; the helpers take plain
    strings and treat anything outside the *active* set as terminal, as the official SDK does, so a wait
    loop can never spin forever on an unknown status.
    """

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_APPROVAL = "waiting-approval"
    WAITING_INPUT = "waiting-input"
    WAITING_EXTERNAL = "waiting-external"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @staticmethod
    def is_terminal(status: str) -> bool:
        """True for ``completed``/``failed``/``cancelled`` and for any status not in the active set."""
        return status not in _ACTIVE_STATUSES

    @staticmethod
    def is_waiting(status: str) -> bool:
        """True while the run is suspended on an interrupt (any ``waiting-*`` status)."""
        return status.startswith("waiting-")

    @staticmethod
    def is_waiting_on_human(status: str) -> bool:
        """True when a person must act (approval or input); external-event waits are for machines."""
        return status in (RunStatus.WAITING_APPROVAL.value, RunStatus.WAITING_INPUT.value)

    @staticmethod
    def is_success(status: str) -> bool:
        """True only for ``completed``."""
        return status == RunStatus.COMPLETED.value


_ACTIVE_STATUSES = frozenset(
    s.value
    for s in (
        RunStatus.PENDING,
        RunStatus.RUNNING,
        RunStatus.PAUSED,
        RunStatus.WAITING_APPROVAL,
        RunStatus.WAITING_INPUT,
        RunStatus.WAITING_EXTERNAL,
        RunStatus.CANCELLING,
    )
)

TERMINAL_EVENT_TYPES = frozenset({"run.completed", "run.failed", "run.cancelled"})

#: Which interrupt kind a ``waiting-*`` status implies when a host sends no ``interrupt.requested``.
KIND_BY_WAITING_STATUS = {
    RunStatus.WAITING_APPROVAL.value: "approval",
    RunStatus.WAITING_INPUT.value: "clarification",
    RunStatus.WAITING_EXTERNAL.value: "external-event",
}


#: Where hosts put an open interrupt's signed token: ``token`` (canonical callbacks), ``interruptToken`` (the
#: SQLite/Postgres reference hosts, beside ``callbackUrl``, in ``node.suspended`` and the interrupt they
#: report; a full application backend only in the snapshot's ``interrupt``), ``callbackToken`` (older hosts).
INTERRUPT_TOKEN_FIELDS = ("token", "interruptToken", "callbackToken")
#: Fields that hold or embed a token: shown as ``***`` in reprs.
_SECRET_FIELDS = frozenset(INTERRUPT_TOKEN_FIELDS) | {"callbackUrl", "resolveUrl"}
_REDACTED = "***"


def interrupt_token(doc: dict[str, Any]) -> str | None:
    """The interrupt token a host document carries under any of :data:`INTERRUPT_TOKEN_FIELDS`, else None."""
    for name in INTERRUPT_TOKEN_FIELDS:
        value = doc.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def redact_secrets(value: Any) -> Any:
    """``value`` with every token-bearing field (:data:`INTERRUPT_TOKEN_FIELDS`, ``callbackUrl``...) masked,
    at any depth: what reprs show of host payloads."""
    if isinstance(value, dict):
        return {k: (_REDACTED if k in _SECRET_FIELDS and v else redact_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    return value


def _drop_nulls(data: Any) -> Any:
    """Some hosts send ``null`` for absent fields; treat those as absent."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if v is not None}
    return data


class ErrorInfo(OpenwopModel):
    """A run or node failure: ``{code, message, details?}`` (also read from ``{error, message}``)."""

    code: str = "unknown_error"
    message: str = ""
    details: dict[str, Any] | None = None
    retryable: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"code": data, "message": data}
        data = _drop_nulls(data)
        if isinstance(data, dict) and "code" not in data and isinstance(data.get("error"), str):
            data = {**data, "code": data["error"]}
        return data

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class Discovery(OpenwopModel):
    """The ``/.well-known/openwop`` document; capability families are read at the root, then
    from the deprecated ``capabilities`` mirror."""

    protocol_version: str
    protocol_versions: list[str] | None = None
    min_client_version: str | None = None
    implementation: dict[str, Any] | None = None
    supported_envelopes: list[str] = Field(default_factory=list)
    supported_transports: list[str] | None = None
    limits: dict[str, Any] = Field(default_factory=dict)
    fixtures: list[str] = Field(default_factory=list)

    @field_validator("protocol_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> str:
        return str(value)

    @property
    def major_version(self) -> int | None:
        """Major protocol version, parsed leniently (text before the first dot, a leading ``v`` dropped)."""
        head = self.protocol_version.strip().lstrip("vV").split(".", 1)[0]
        return int(head) if head.isdigit() else None

    def family(self, name: str) -> dict[str, Any]:
        """A capability family (``replay``, ``runs``, ``webhooks``...) from the root or the legacy mirror."""
        extra = self.model_extra or {}
        value = extra.get(name)
        if not isinstance(value, dict):
            legacy = extra.get("capabilities")
            value = legacy.get(name) if isinstance(legacy, dict) else None
        return value if isinstance(value, dict) else {}

    def supports_fork(self, mode: str | None = None) -> bool:
        """True when the host advertises ``replay.supported`` (and ``mode`` among ``replay.modes``)."""
        replay = self.family("replay")
        modes = replay.get("modes") or []
        supported = bool(replay.get("supported")) and (bool(modes) or bool(replay.get("fork")))
        return supported and (mode is None or not modes or mode in modes)

    def supports_pause_resume(self) -> bool:
        """True when the host advertises ``runs.pauseResume.supported``."""
        pause = self.family("runs").get("pauseResume")
        return isinstance(pause, dict) and bool(pause.get("supported"))

    def supports_bulk_cancel(self) -> bool | None:
        """True/False when advertised, None when the host says nothing (then try and see)."""
        bulk = self.family("runs").get("bulkCancel")
        return bool(bulk.get("supported")) if isinstance(bulk, dict) else None


class WorkflowDefinition(OpenwopModel):
    """A workflow as ``GET /v1/workflows/{id}`` returns it."""

    id: str
    name: str | None = None
    version: str | None = None
    description: str | None = None
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    edges: list[dict[str, Any]] = Field(default_factory=list)
    variables: list[Any] | dict[str, Any] | None = None
    configurable_schema: dict[str, Any] | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return None if value is None else str(value)


class RunCreated(OpenwopModel):
    """Answer to ``POST /v1/runs``; ``replayed`` is True when the host served it from its idempotency
    cache (the same ``run_id`` as the first attempt)."""

    run_id: str
    status: str = RunStatus.PENDING.value
    workflow_id: str | None = None
    events_url: str | None = None
    status_url: str | None = None
    replayed: bool = False

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _drop_nulls(data)


class SnapshotInterrupt(OpenwopModel):
    """The open interrupt some hosts report in the run snapshot (``interrupt``): its id, node and kind, and
    the token (``interruptToken``, or any of :data:`INTERRUPT_TOKEN_FIELDS`) with its ``callbackUrl``. The
    token and URL never appear in the repr."""

    interrupt_id: str | None = None
    node_id: str | None = None
    kind: str | None = None
    token: str | None = Field(default=None, repr=False)
    callback_url: str | None = Field(default=None, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = _drop_nulls(data)
        token = interrupt_token(data)
        data = {k: v for k, v in data.items() if k not in INTERRUPT_TOKEN_FIELDS}
        if token is not None:
            data["token"] = token
        return data

    def __repr_args__(self) -> Any:
        """Only the id, node and kind: the rest (token, URL, whatever else a host adds) may be secret."""
        return [(name, getattr(self, name)) for name in ("interrupt_id", "node_id", "kind")]


class RunSnapshot(OpenwopModel):
    """``GET /v1/runs/{runId}``: the state of a run. Outputs live in ``variables`` (there is no
    dedicated field in v1); ``outputs`` prefers an explicit ``outputs`` field when a host sends one."""

    run_id: str
    workflow_id: str | None = None
    status: str
    current_node_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = Field(
        default=None, validation_alias=AliasChoices("completedAt", "completed_at", "endedAt")
    )
    node_states: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    configurable: dict[str, Any] = Field(default_factory=dict)
    source_run_id: str | None = None
    interrupt: SnapshotInterrupt | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _drop_nulls(data)
        if isinstance(data, dict) and not isinstance(data.get("interrupt", {}), dict):
            data = {k: v for k, v in data.items() if k != "interrupt"}  # a shape we cannot read: ignored
        return data

    @property
    def is_terminal(self) -> bool:
        """True when the run can no longer change (see :meth:`RunStatus.is_terminal`)."""
        return RunStatus.is_terminal(self.status)

    @property
    def is_waiting(self) -> bool:
        """True while the run is suspended on an interrupt."""
        return RunStatus.is_waiting(self.status)

    @property
    def outputs(self) -> dict[str, Any]:
        """The run's outputs: an explicit ``outputs`` object if the host sends one, else ``variables``."""
        explicit = (self.model_extra or {}).get("outputs")
        return explicit if isinstance(explicit, dict) else self.variables

    @property
    def duration_seconds(self) -> float | None:
        """Wall time between start and end, when the host reported both."""
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return None


class RunEvent(OpenwopModel):
    """One event of a run's log (SSE frame, poll item or webhook body), legacy fields normalised:
    ``seq`` -> ``sequence``, ``data`` -> ``payload``, ``nodeId`` taken from the payload when absent.

    The aliases are resolved by pydantic-core itself, so :meth:`from_json` validates a frame straight from
    its JSON text (faster than ``json.loads`` alone); :meth:`from_wire` also drops ``null`` fields."""

    type: str
    sequence: int = Field(validation_alias=AliasChoices("sequence", "seq"))
    run_id: str | None = None
    event_id: str | None = None
    payload: Any = Field(default=None, validation_alias=AliasChoices("payload", "data"))
    timestamp: str | None = None
    node_id: str | None = None
    schema_version: int | None = None

    def model_post_init(self, context: Any, /) -> None:
        """Node-scoped events name their node in the payload when the envelope does not."""
        if self.node_id is None and isinstance(self.payload, dict):
            node_id = self.payload.get("nodeId")
            if isinstance(node_id, str):
                self.node_id = node_id

    @classmethod
    def from_json(cls, text: str | bytes) -> RunEvent:
        """Validate one event straight from JSON text (the hot path of a stream). Calls the schema validator
        itself: ``model_validate_json`` would add 0.15-0.4 µs of argument handling to each event."""
        event: RunEvent = cls.__pydantic_validator__.validate_json(text)
        return event

    @classmethod
    def from_wire(cls, doc: dict[str, Any]) -> RunEvent:
        """Validate one event from a parsed document, treating ``null`` fields as absent."""
        return cls.model_validate(_drop_nulls(doc))

    @property
    def is_terminal(self) -> bool:
        """True for ``run.completed``, ``run.failed`` and ``run.cancelled``."""
        return self.type in TERMINAL_EVENT_TYPES

    @property
    def payload_dict(self) -> dict[str, Any]:
        """The payload when it is an object, else an empty dict (payloads are open objects)."""
        return self.payload if isinstance(self.payload, dict) else {}

    def __repr_args__(self) -> Any:
        """The fields, with any interrupt token in the payload masked (hosts put some in ``node.suspended``)."""
        for name, value in super().__repr_args__():
            yield name, (redact_secrets(value) if name == "payload" else value)


class EventPage(OpenwopModel):
    """Answer of ``GET /v1/runs/{runId}/events/poll``: both specified shapes read, either may be partial."""

    run_id: str | None = None
    events: list[RunEvent] = Field(default_factory=list)
    is_complete: bool | None = None
    last_event_seq: int | None = Field(
        default=None, validation_alias=AliasChoices("lastEventSeq", "lastSequence", "last_event_seq")
    )
    run_status: str | None = Field(default=None, validation_alias=AliasChoices("runStatus", "status", "run_status"))
    is_terminal: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _drop_nulls(data)
        if isinstance(data, dict) and isinstance(data.get("events"), list):
            data = {**data, "events": [_drop_nulls(e) for e in data["events"]]}
        return data

    @property
    def next_cursor(self) -> int | None:
        """The cursor for the next poll: the highest sequence received, else ``lastEventSeq``."""
        if self.events:
            return max(e.sequence for e in self.events)
        return self.last_event_seq

    @property
    def finished(self) -> bool:
        """True when the run is terminal and nothing more will come after this page."""
        if self.is_complete is not None:
            return self.is_complete
        if self.is_terminal is not None:
            return self.is_terminal and not self.events
        return bool(self.run_status and RunStatus.is_terminal(self.run_status) and not self.events)


class CancelResult(OpenwopModel):
    """Answer of ``POST /v1/runs/{runId}/cancel``; ``already_terminal`` when there was nothing to do."""

    run_id: str
    status: str
    already_terminal: bool = False

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _drop_nulls(data)


class BulkCancelItem(OpenwopModel):
    """One result of ``:bulk-cancel`` (the per-item error is read from ``{error}`` or ``{code}``)."""

    run_id: str
    ok: bool
    status: str | None = None
    error: ErrorInfo | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _drop_nulls(data)


class BulkCancelResult(OpenwopModel):
    """Answer of ``POST /v1/runs:bulk-cancel``, results in request order."""

    results: list[BulkCancelItem] = Field(default_factory=list)

    @property
    def failed(self) -> list[BulkCancelItem]:
        """The items the host could not cancel."""
        return [r for r in self.results if not r.ok]


class RunStateChange(OpenwopModel):
    """Answer of ``:pause`` / ``:resume`` (``202``: requested, the events confirm it)."""

    run_id: str
    status: str
    paused_at: str | None = None
    resumed_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _drop_nulls(data)


class ForkResult(OpenwopModel):
    """Answer of ``POST /v1/runs/{runId}:fork``: a new run to follow like any other; ``replayed`` is True
    when the host served it from its idempotency cache (the fork of an earlier attempt)."""

    run_id: str
    source_run_id: str | None = None
    from_seq: int | None = None
    mode: str | None = None
    status: str = RunStatus.PENDING.value
    events_url: str | None = None
    replayed: bool = False

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _drop_nulls(data)


class InterruptResolution(OpenwopModel):
    """Answer of a resolve call: the run status right after the resume (shape open on token routes)."""

    run_id: str | None = None
    node_id: str | None = None
    status: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _drop_nulls(data)


class InterruptInfo(OpenwopModel):
    """``GET /v1/interrupts/{token}``: what the token holder is asked."""

    kind: str = "custom"
    key: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    resume_schema: dict[str, Any] | None = None
    timeout_ms: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _drop_nulls(data)


class PendingInterrupt(OpenwopModel):
    """A run's open interrupt, assembled from ``interrupt.requested``, its legacy twins
    (``approval.requested``, ``clarification.requested``), ``node.suspended`` or the snapshot."""

    run_id: str
    node_id: str
    interrupt_id: str | None = None
    kind: str = "custom"
    key: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    resume_schema: dict[str, Any] | None = None
    timeout_ms: int | None = None
    requested_at: str | None = None
    token: str | None = Field(default=None, repr=False)
    sequence: int | None = None

    @property
    def title(self) -> str:
        """A one-line prompt: the approval title, the first question, or a generic sentence."""
        for key in ("title", "prompt", "question"):
            value = self.data.get(key)
            if isinstance(value, str) and value:
                return value
        questions = self.questions
        if questions:
            return str(questions[0].get("question") or questions[0].get("id") or "")
        return f"Run {self.run_id} is waiting on node {self.node_id} ({self.kind})"

    @property
    def actions(self) -> list[str]:
        """The allowed approval actions (``accept``/``reject`` when the host lists none)."""
        actions = self.data.get("actions")
        if isinstance(actions, list) and actions:
            return [str(a) for a in actions]
        return ["accept", "reject"] if self.kind == "approval" else []

    @property
    def questions(self) -> list[dict[str, Any]]:
        """Clarification questions as ``[{id, question, schema?}]``."""
        questions = self.data.get("questions")
        return [q for q in questions if isinstance(q, dict)] if isinstance(questions, list) else []


class Artifact(OpenwopModel):
    """``GET /v1/runs/{runId}/artifacts/{artifactId}``: implementation-defined JSON, all fields kept."""

    artifact_id: str | None = None
    artifact_type: str | None = None


class WebhookRegistration(OpenwopModel):
    """Answer of ``POST /v1/webhooks``. The secret is shown once by the host; keep it safe."""

    webhook_id: str = Field(validation_alias=AliasChoices("webhookId", "subscriptionId", "id", "webhook_id"))
    secret: SecretStr | None = None
    secret_fingerprint: str | None = None
