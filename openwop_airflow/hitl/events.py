""":class:`HumanInputEvent`: what resumes a task that asked a person in Airflow, validated in one place.

It arrives from Airflow's API server or scheduler (an answer, or a timeout) or from
``OpenwopHumanInputTrigger`` (an answer it read, or the interrupt closing on the host), always across
processes, so it is checked like :class:`~openwop_airflow.utils.run_wait_event.RunWaitEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from openwop_airflow.utils.run_wait_event import checked_sequence, complaint

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
        """Validate a resume event; raises ``OpenwopTriggerEventException`` (showing what arrived) if malformed."""
        bad = complaint("Human-in-the-loop event", payload)
        if not isinstance(payload, dict):
            raise bad("not an object")
        if payload.get(INTERRUPT_CLOSED_MARK):
            status = payload.get("run_status")
            if not isinstance(status, str) or not status:
                raise bad("run_status missing")
            return cls(kind="closed", run_status=status, last_sequence=checked_sequence(payload, bad))
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
