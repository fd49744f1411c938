"""The one small event ``OpenwopRunTrigger`` fires, built and validated in one place.

The payload crosses processes (triggerer -> database -> worker), so the worker treats it as untrusted:
:meth:`RunWaitEvent.from_payload` rejects anything malformed with a message that shows what arrived.
It only carries what the worker needs to decide and to resume: the final state is re-read from the host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from openwop_airflow.exceptions import OpenwopTriggerEventError
from openwop_core import PendingInterrupt, WaitResult

EventStatus = Literal["success", "error", "interrupted", "timeout"]
EVENT_STATUSES: tuple[str, ...] = ("success", "error", "interrupted", "timeout")


@dataclass(frozen=True)
class RunWaitEvent:
    """How a trigger's wait ended.

    ``success``: the run completed. ``error``: the run ended failed/cancelled (``run_status`` set), or the
    wait itself hit an error that retrying cannot fix (``run_status`` None, e.g. a rejected API key).
    ``interrupted``: the run waits on someone (``interrupt`` describes it). ``timeout``: the deadline passed.
    """

    status: EventStatus
    run_id: str
    run_status: str | None = None
    last_sequence: int | None = None
    interrupt: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON-safe dict a ``TriggerEvent`` carries."""
        return asdict(self)

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
        return cls(
            status=status,
            run_id=run_id,
            run_status=run_status,
            last_sequence=last_sequence,
            interrupt=payload.get("interrupt"),
            error=payload.get("error"),
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
