"""An interrupt as the JSON dict it travels as (XCom ``interrupt``, trigger events, a waiting task's kwargs),
and back to the core's typed :class:`~openwop_core.PendingInterrupt`.

Inside the provider interrupts are typed; these two functions are the only place that converts, at the
boundaries where Airflow serialises (XCom, ``TriggerEvent`` payloads, trigger kwargs, ``next_kwargs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openwop_core import PendingInterrupt

#: The keys that rebuild a :class:`PendingInterrupt`; ``title``, ``actions`` and ``questions`` derive from them.
_FIELDS = ("run_id", "node_id", "interrupt_id", "kind", "data", "resume_schema", "token")


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


def interrupt_from_dict(interrupt: Mapping[str, Any], *, run_id: str | None = None) -> PendingInterrupt:
    """The :class:`PendingInterrupt` an ``interrupt`` dict (see :func:`interrupt_to_dict`) describes; ``run_id``
    fills in a dict without one. Raises ``ValueError`` (pydantic's ``ValidationError``) for a dict that
    describes no interrupt (no node, a ``data`` that is not an object...)."""
    values = {k: interrupt[k] for k in _FIELDS if interrupt.get(k) is not None}
    if run_id is not None:
        values.setdefault("run_id", run_id)
    return PendingInterrupt.model_validate(values)
