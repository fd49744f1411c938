"""Reattach or move on: the one rule, free of I/O, for starting a run (create or fork) under an idempotency
key so that a retry of the scheduler's task reattaches to the run an earlier attempt started.

The host answers a repeated key with the run it already started (``replayed``). That run is reattached
while it is still going or once it completed; when it ended any other way (failed, cancelled, an unknown
terminal status) or the host no longer knows it, the retry exists to try again, so :class:`ReattachPlan`
moves on to the next key of the chain. Each next key is derived from the run it steps over
(``<base>-after-<sha256(run id)[:16]>``), so every attempt walks the same chain and lands on the same
live run, and a key never names two different histories (unlike a counter, whose ``n``-th key could
replay an old run once the base key's cache record expired and a new run took its place).

The callers (Airflow operators, Prefect tasks and flows) drive it through :func:`start_or_reattach` or
:func:`astart_or_reattach`, handing in how to start (create or fork) and how to read a run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .errors import NotFoundError, OpenwopError
from .models import RunStatus

__all__ = [
    "GONE",
    "MAX_GENERATIONS",
    "MAX_KEY_LENGTH",
    "Attachment",
    "ReattachPlan",
    "Skipped",
    "astart_or_reattach",
    "fit_key",
    "next_key",
    "start_or_reattach",
]

#: The spec's limit on an ``Idempotency-Key`` (OpenWOP v1 §9): every key of a chain is fitted to it.
MAX_KEY_LENGTH = 255
#: How many ended runs one start may step over (one per earlier attempt whose run ended badly). Higher than
#: any real retry count, so it never ends a legitimate retry; it only bounds the walk on a misbehaving host.
MAX_GENERATIONS = 1000
#: The status recorded for a replayed run the host no longer knows (its read answered 404).
GONE = "gone"


class StartAnswer(Protocol):
    """What a create or fork answer tells the plan (``RunCreated`` and ``ForkResult`` both fit)."""

    @property
    def run_id(self) -> str: ...

    @property
    def replayed(self) -> bool: ...


class RunState(Protocol):
    """What a run read tells the plan (``RunSnapshot`` fits)."""

    @property
    def status(self) -> str: ...


AnswerT = TypeVar("AnswerT", bound=StartAnswer)


@dataclass(frozen=True)
class Skipped:
    """A run of an earlier attempt that was stepped over, and the status it ended with."""

    run_id: str
    status: str


@dataclass(frozen=True)
class Attachment(Generic[AnswerT]):
    """The run a start settled on: a fresh one, or one an earlier attempt started (``reattached``)."""

    answer: AnswerT
    idempotency_key: str | None
    reattached: bool
    status: str | None = None
    skipped: tuple[Skipped, ...] = ()

    @property
    def run_id(self) -> str:
        """The run to follow."""
        return self.answer.run_id

    @property
    def generation(self) -> int:
        """How many ended runs were stepped over to get here (0: the base key's run)."""
        return len(self.skipped)


def next_key(base_key: str, ended_run_id: str) -> str:
    """The key after the run ``ended_run_id``: derived from it, fitted to the spec's length limit."""
    return fit_key(f"{base_key}-after-{hashlib.sha256(ended_run_id.encode()).hexdigest()[:16]}")


def fit_key(key: str) -> str:
    """``key`` if it fits in :data:`MAX_KEY_LENGTH`, else its head plus a hash of the whole (still unique)."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return key[:200] + "-" + hashlib.sha256(key.encode()).hexdigest()[:32]


class ReattachPlan(Generic[AnswerT]):
    """Decides, start after start, whether to use the run the host returned or move on to a new key.

    Send a start with :attr:`key`; if :meth:`needs_status` says so, read the run; then :meth:`decide`
    returns the :class:`Attachment` or None (start again with the updated :attr:`key`). Without a base
    key (the client then sends a random one) every answer is used as it is.
    """

    def __init__(self, base_key: str | None, *, max_generations: int = MAX_GENERATIONS) -> None:
        self.base_key = base_key
        self.key = base_key
        self.max_generations = max_generations
        self.skipped: list[Skipped] = []

    def needs_status(self, answer: AnswerT) -> bool:
        """True when the answer was a replay: only the run's current status tells what to do."""
        return answer.replayed and self.base_key is not None

    def decide(self, answer: AnswerT, status: str | None = None) -> Attachment[AnswerT] | None:
        """The attachment to use, or None to start again under :attr:`key`.

        ``status``: the replayed run's current status (:data:`GONE` if the host no longer knows it);
        None when :meth:`needs_status` was False.
        """
        if self.base_key is None or status is None or not _ended_badly(status):
            return Attachment(answer, self.key, answer.replayed, status, tuple(self.skipped))
        self.skipped.append(Skipped(answer.run_id, status))
        if len(self.skipped) >= self.max_generations:
            raise OpenwopError(
                f"Gave up reattaching: {len(self.skipped)} earlier runs under idempotency key {self.base_key!r} "
                "already ended; pass a new idempotency key to start afresh."
            )
        self.key = next_key(self.base_key, answer.run_id)
        return None


def _ended_badly(status: str) -> bool:
    """Ended without completing (failed, cancelled, unknown terminal) or gone: not worth reattaching."""
    return RunStatus.is_terminal(status) and not RunStatus.is_success(status)


def start_or_reattach(
    start: Callable[[str | None], AnswerT], read_run: Callable[[str], RunState], base_key: str | None
) -> Attachment[AnswerT]:
    """Drive a :class:`ReattachPlan`: ``start(key)`` creates or forks; ``read_run(run_id)`` reads a run."""
    plan: ReattachPlan[AnswerT] = ReattachPlan(base_key)
    while True:
        answer = start(plan.key)
        status = _status_or_gone(read_run, answer.run_id) if plan.needs_status(answer) else None
        if (attachment := plan.decide(answer, status)) is not None:
            return attachment


async def astart_or_reattach(
    start: Callable[[str | None], Awaitable[AnswerT]],
    read_run: Callable[[str], Awaitable[RunState]],
    base_key: str | None,
) -> Attachment[AnswerT]:
    """Async twin of :func:`start_or_reattach` (the decisions are the plan's)."""
    plan: ReattachPlan[AnswerT] = ReattachPlan(base_key)
    while True:
        answer = await start(plan.key)
        status = await _astatus_or_gone(read_run, answer.run_id) if plan.needs_status(answer) else None
        if (attachment := plan.decide(answer, status)) is not None:
            return attachment


def _status_or_gone(read_run: Callable[[str], RunState], run_id: str) -> str:
    try:
        return read_run(run_id).status
    except NotFoundError:
        return GONE


async def _astatus_or_gone(read_run: Callable[[str], Awaitable[RunState]], run_id: str) -> str:
    try:
        return (await read_run(run_id)).status
    except NotFoundError:
        return GONE
