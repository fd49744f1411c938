""":class:`RunWaitEvent`, the event ``OpenwopRunTrigger`` fires, built and validated in one place, and the
payload checks it shares with the human-in-the-loop event (:mod:`openwop_airflow.hitl.events`).

The payload crosses processes (triggerer -> database -> worker), so the worker treats it as untrusted:
:meth:`RunWaitEvent.from_payload` rejects anything malformed with a message that shows what arrived.
It only carries what the worker needs to decide and to resume: the final state is re-read from the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from openwop_airflow.exceptions import OpenwopTriggerEventException
from openwop_airflow.utils.interrupt_dict import interrupt_from_dict, interrupt_to_dict
from openwop_core import PendingInterrupt, WaitResult, WaitTimeoutError

EventStatus = Literal["success", "error", "interrupted", "timeout"]
EVENT_STATUSES: tuple[str, ...] = ("success", "error", "interrupted", "timeout")
#: Builds the error for a malformed payload from why it is malformed.
Complaint = Callable[[str], OpenwopTriggerEventException]


def complaint(what: str, payload: Any) -> Complaint:
    """The error factory of one payload: ``<what> is invalid (<why>): <what arrived>``."""
    return lambda why: OpenwopTriggerEventException(f"{what} is invalid ({why}): {payload!r:.500}")


def checked_sequence(payload: dict[str, Any], bad: Complaint) -> int | None:
    """The payload's ``last_sequence``: an integer or None (raises ``bad(...)`` otherwise)."""
    last_sequence = payload.get("last_sequence")
    if last_sequence is not None and (isinstance(last_sequence, bool) or not isinstance(last_sequence, int)):
        raise bad("last_sequence must be an integer")
    return last_sequence


@dataclass(frozen=True)
class RunWaitEvent:
    """How a trigger's wait ended.

    ``success``: the run completed. ``error``: the run ended failed/cancelled (``run_status`` set), or the
    wait itself hit an error that retrying cannot fix (``run_status`` None, e.g. a rejected API key).
    ``interrupted``: the run waits on someone (``interrupt`` describes it, as the JSON dict of
    :func:`~openwop_airflow.utils.interrupt_dict.interrupt_to_dict`; typed: :attr:`pending_interrupt`).
    ``timeout``: the deadline passed; with ``unreachable_since`` (epoch seconds) the host had answered
    nothing since then, and ``error`` holds the last failure.
    """

    status: EventStatus
    run_id: str
    run_status: str | None = None
    last_sequence: int | None = None
    interrupt: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    unreachable_since: float | None = None

    @property
    def pending_interrupt(self) -> PendingInterrupt | None:
        """The interrupt carried, typed (:meth:`from_payload` checked that it converts)."""
        return None if self.interrupt is None else interrupt_from_dict(self.interrupt, run_id=self.run_id)

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
        """Validate what ``execute_complete`` received; raises :class:`OpenwopTriggerEventException` if malformed."""
        bad = complaint("OpenWOP trigger event", payload)
        if not isinstance(payload, dict):
            raise bad("not an object")
        status = payload.get("status")
        if status not in EVENT_STATUSES:
            raise bad(f"status must be one of {', '.join(EVENT_STATUSES)}")
        run_id = payload.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise bad("run_id missing")
        last_sequence = checked_sequence(payload, bad)
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
        interrupt = payload.get("interrupt")
        if interrupt is not None:
            try:
                interrupt_from_dict(interrupt, run_id=run_id)
            except ValueError:
                raise bad("interrupt does not describe an interrupt (node_id, kind, data...)") from None
        return cls(
            status=status,
            run_id=run_id,
            run_status=run_status,
            last_sequence=last_sequence,
            interrupt=interrupt,
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
