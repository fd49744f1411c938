"""The events that resume OpenWOP tasks, built and validated in one place: :class:`RunWaitEvent` (what
``OpenwopRunTrigger`` fires) and :class:`HumanInputEvent` (what resumes a task that asked a person in Airflow).

The payload crosses processes (triggerer -> database -> worker), so the worker treats it as untrusted:
:meth:`RunWaitEvent.from_payload` rejects anything malformed with a message that shows what arrived.
It only carries what the worker needs to decide and to resume: the final state is re-read from the host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from openwop_airflow.exceptions import OpenwopTriggerEventError
from openwop_core import PendingInterrupt, WaitResult, WaitTimeoutError

EventStatus = Literal["success", "error", "interrupted", "timeout"]
EVENT_STATUSES: tuple[str, ...] = ("success", "error", "interrupted", "timeout")


@dataclass(frozen=True)
class RunWaitEvent:
    """How a trigger's wait ended.

    ``success``: the run completed. ``error``: the run ended failed/cancelled (``run_status`` set), or the
    wait itself hit an error that retrying cannot fix (``run_status`` None, e.g. a rejected API key).
    ``interrupted``: the run waits on someone (``interrupt`` describes it). ``timeout``: the deadline passed;
    with ``unreachable_since`` (epoch seconds) the host had answered nothing since then, and ``error`` holds
    the last failure.
    """

    status: EventStatus
    run_id: str
    run_status: str | None = None
    last_sequence: int | None = None
    interrupt: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    unreachable_since: float | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON-safe dict a ``TriggerEvent`` carries (``unreachable_since`` only when set)."""
        payload = asdict(self)
        if payload["unreachable_since"] is None:
            del payload["unreachable_since"]
        return payload

    @classmethod
    def from_result(cls, result: WaitResult) -> RunWaitEvent:
        """The event for a finished wait."""
        snapshot = result.snapshot
        common: dict[str, Any] = {
            "run_id": snapshot.run_id,
            "run_status": snapshot.status,
            "last_sequence": result.last_sequence,
        }
        if result.outcome == "completed":
            return cls(status="success", **common)
        if result.outcome == "interrupted":
            interrupt = interrupt_to_dict(result.interrupt) if result.interrupt else None
            return cls(status="interrupted", interrupt=interrupt, **common)
        error = snapshot.error
        return cls(
            status="error",
            error={
                "code": error.code if error else None,
                "message": error.message if error else None,
                "node_id": result.failed_node_id,
            },
            **common,
        )

    @classmethod
    def from_wait_error(cls, run_id: str, error: Exception, last_sequence: int | None) -> RunWaitEvent:
        """The event for a wait that failed for a reason other than the run (bad key, unknown run...)."""
        code = getattr(error, "code", None) or type(error).__name__
        return cls(
            status="error",
            run_id=run_id,
            last_sequence=last_sequence,
            error={"code": str(code), "message": str(error), "node_id": None},
        )

    @classmethod
    def from_payload(cls, payload: Any) -> RunWaitEvent:
        """Validate what ``execute_complete`` received; raises :class:`OpenwopTriggerEventError` if malformed."""

        def bad(why: str) -> OpenwopTriggerEventError:
            return OpenwopTriggerEventError(f"OpenWOP trigger event is invalid ({why}): {payload!r:.500}")

        if not isinstance(payload, dict):
            raise bad("not an object")
        status = payload.get("status")
        if status not in EVENT_STATUSES:
            raise bad(f"status must be one of {', '.join(EVENT_STATUSES)}")
        run_id = payload.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise bad("run_id missing")
        last_sequence = payload.get("last_sequence")
        if last_sequence is not None and (isinstance(last_sequence, bool) or not isinstance(last_sequence, int)):
            raise bad("last_sequence must be an integer")
        for name in ("interrupt", "error"):
            if payload.get(name) is not None and not isinstance(payload.get(name), dict):
                raise bad(f"{name} must be an object")
        run_status = payload.get("run_status")
        if run_status is not None and not isinstance(run_status, str):
            raise bad("run_status must be a string")
        if status == "interrupted" and run_status is None:
            raise bad("an interrupted event needs run_status")
        since = payload.get("unreachable_since")
        if since is not None and (isinstance(since, bool) or not isinstance(since, (int, float))):
            raise bad("unreachable_since must be a number (epoch seconds)")
        return cls(
            status=status,
            run_id=run_id,
            run_status=run_status,
            last_sequence=last_sequence,
            interrupt=payload.get("interrupt"),
            error=payload.get("error"),
            unreachable_since=None if since is None else float(since),
        )

    @classmethod
    def timed_out(cls, error: WaitTimeoutError) -> RunWaitEvent:
        """The event for a deadline that passed: the last status and event seen and, when the host had
        stopped answering, since when and its last failure."""
        since, last_error = error.unreachable_since, error.last_error
        return cls(
            status="timeout",
            run_id=error.run_id,
            run_status=error.last_status,
            last_sequence=error.last_sequence,
            error={"code": "host_unreachable", "message": last_error, "node_id": None} if since else None,
            unreachable_since=since,
        )

    def error_text(self) -> str:
        """``code: message`` of the error carried, for exception messages."""
        error = self.error or {}
        return f"{error.get('code') or 'error'}: {error.get('message') or 'no message'}"


def interrupt_to_dict(interrupt: PendingInterrupt) -> dict[str, Any]:
    """The JSON dict pushed to XCom as ``interrupt``: what a later task (or a person) needs to answer it."""
    return {
        "run_id": interrupt.run_id,
        "node_id": interrupt.node_id,
        "interrupt_id": interrupt.interrupt_id,
        "kind": interrupt.kind,
        "title": interrupt.title,
        "data": interrupt.data,
        "resume_schema": interrupt.resume_schema,
        "token": interrupt.token,
        "actions": interrupt.actions,
        "questions": interrupt.questions,
    }


HumanEventKind = Literal["answer", "no_answer", "closed"]
#: Marks the event ``OpenwopHumanInputTrigger`` fires when the interrupt it watches closed on the host.
INTERRUPT_CLOSED_MARK = "openwop_interrupt_closed"


@dataclass(frozen=True)
class HumanInputEvent:
    """What resumes a task that asked a person in Airflow (``on_interrupt="ask_in_airflow"``).

    ``answer``: the person's response, in the shape Airflow's API server, scheduler and
    ``OpenwopHumanInputTrigger`` all use (``chosen_options``, ``params_input``, ``responded_by_user``,
    ``responded_at``). ``no_answer``: Airflow gave up waiting (``error_type`` ``timeout``, or another
    error it reports). ``closed``: the interrupt is no longer open on the host (answered elsewhere, timed
    out there, or the run ended); the task follows the run.
    """

    kind: HumanEventKind
    chosen_options: tuple[str, ...] = ()
    params_input: dict[str, Any] = field(default_factory=dict)
    responded_by: dict[str, Any] | None = None
    responded_at: str | None = None
    error_type: str | None = None
    error: str | None = None
    run_status: str | None = None
    last_sequence: int | None = None

    @property
    def responder(self) -> str | None:
        """The Airflow user who answered (name, else id); None for an answer Airflow filled in itself."""
        user = self.responded_by or {}
        return str(user.get("name") or user.get("id") or "") or None

    @staticmethod
    def closed_payload(run_id: str, run_status: str, last_sequence: int | None) -> dict[str, Any]:
        """The JSON payload of a ``closed`` event (fired by the trigger)."""
        return {INTERRUPT_CLOSED_MARK: True, "run_id": run_id, "run_status": run_status, "last_sequence": last_sequence}

    @classmethod
    def from_payload(cls, payload: Any) -> HumanInputEvent:
        """Validate a resume event; raises :class:`OpenwopTriggerEventError` (showing what arrived) if malformed."""

        def bad(why: str) -> OpenwopTriggerEventError:
            return OpenwopTriggerEventError(f"Human-in-the-loop event is invalid ({why}): {payload!r:.500}")

        if not isinstance(payload, dict):
            raise bad("not an object")
        if payload.get(INTERRUPT_CLOSED_MARK):
            status, last_sequence = payload.get("run_status"), payload.get("last_sequence")
            if not isinstance(status, str) or not status:
                raise bad("run_status missing")
            if last_sequence is not None and (isinstance(last_sequence, bool) or not isinstance(last_sequence, int)):
                raise bad("last_sequence must be an integer")
            return cls(kind="closed", run_status=status, last_sequence=last_sequence)
        if "error_type" in payload or "error" in payload:
            return cls(kind="no_answer", error_type=str(payload.get("error_type")), error=str(payload.get("error")))
        options = payload.get("chosen_options")
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise bad("chosen_options must be a list of strings")
        params = payload.get("params_input") or {}
        if not isinstance(params, dict):
            raise bad("params_input must be an object")
        user = payload.get("responded_by_user")
        if user is not None and not isinstance(user, dict):
            raise bad("responded_by_user must be an object")
        at = payload.get("responded_at")
        responded_at = at.isoformat() if isinstance(at, datetime) else (str(at) if at is not None else None)
        return cls(
            kind="answer",
            chosen_options=tuple(options),
            params_input=params,
            responded_by=user,
            responded_at=responded_at,
        )


def interrupt_from_dict(interrupt: dict[str, Any]) -> PendingInterrupt:
    """The :class:`PendingInterrupt` an ``interrupt`` dict (see :func:`interrupt_to_dict`) describes."""
    fields = ("run_id", "node_id", "interrupt_id", "kind", "data", "resume_schema", "token")
    return PendingInterrupt.model_validate({k: interrupt[k] for k in fields if interrupt.get(k) is not None})
