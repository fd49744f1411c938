"""``AskedQuestion``: what a task asked a person in Airflow, and all it needs to resume when the answer comes.

While the task waits (deferred, or parked in ``awaiting_input``) this state is all it keeps: it travels as
the ``ask`` kwarg of the resume method and of ``OpenwopHumanInputTrigger``, which Airflow serialises, so it
crosses as plain JSON (:meth:`AskedQuestion.to_json`) and is typed again, interrupt included, on arrival
(:meth:`AskedQuestion.from_json`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from openwop_airflow.exceptions import OpenwopHumanInputException
from openwop_airflow.utils.interrupt_dict import interrupt_from_dict, interrupt_to_dict
from openwop_core import PendingInterrupt


@dataclass(frozen=True)
class AskedQuestion:
    """One question put to a person in Airflow.

    ``last_sequence`` is the run's event cursor when it was asked; ``deadline`` the task's (epoch seconds),
    ``response_deadline`` when to stop waiting for an answer in Airflow; ``refused`` how many answers in a row
    the host refused; ``subject`` and ``request`` the text and fingerprint of the request written;
    ``wait_id`` the wait the task deferred in (see ``WAIT_XCOM_KEY``).
    """

    interrupt: PendingInterrupt
    last_sequence: int | None = None
    deadline: float | None = None
    response_deadline: float | None = None
    refused: int = 0
    workflow_id: str | None = None
    subject: str | None = None
    request: str | None = None
    wait_id: str | None = None

    @property
    def run_id(self) -> str:
        """The run that waits on the question."""
        return self.interrupt.run_id

    def asked_again(self) -> AskedQuestion:
        """The same question asked once more, after the host refused an answer."""
        return replace(self, refused=self.refused + 1)

    def to_json(self) -> dict[str, Any]:
        """The JSON kwargs Airflow serialises (``next_kwargs``, trigger kwargs, trigger events).

        The interrupt's signed token is left out: it is a credential, and these kwargs are stored in Airflow's
        database; the answer goes by run and node under the connection's API key, which needs no token."""
        return {
            "interrupt": interrupt_to_dict(self.interrupt.model_copy(update={"token": None})),
            "last_sequence": self.last_sequence,
            "deadline": self.deadline,
            "response_deadline": self.response_deadline,
            "refused": self.refused,
            "workflow_id": self.workflow_id,
            "subject": self.subject,
            "request": self.request,
            "wait_id": self.wait_id,
        }

    @classmethod
    def from_json(cls, ask: Any) -> AskedQuestion:
        """The question ``ask`` (see :meth:`to_json`) describes; raises :class:`OpenwopHumanInputException` when it
        describes none (the error names the keys that arrived, never their values: the interrupt's token
        is a credential)."""
        try:
            if not isinstance(ask, Mapping) or not isinstance(ask.get("interrupt"), Mapping):
                raise ValueError("no interrupt")
            interrupt = interrupt_from_dict(ask["interrupt"])
            return cls(
                interrupt=interrupt,
                last_sequence=_optional(int, ask.get("last_sequence")),
                deadline=_optional(float, ask.get("deadline")),
                response_deadline=_optional(float, ask.get("response_deadline")),
                refused=int(ask.get("refused") or 0),
                workflow_id=_optional(str, ask.get("workflow_id")),
                subject=_optional(str, ask.get("subject")),
                request=_optional(str, ask.get("request")),
                wait_id=_optional(str, ask.get("wait_id")),
            )
        except (TypeError, ValueError):
            arrived = sorted(ask) if isinstance(ask, Mapping) else type(ask).__name__
            raise OpenwopHumanInputException(
                f"Cannot resume: the question asked is not known (kwargs {arrived})."
            ) from None


def _optional(kind: type, value: Any) -> Any:
    """``value`` as ``kind``, None staying None."""
    return None if value is None else kind(value)
