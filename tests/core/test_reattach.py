"""The reattach-or-move-on rule, fed create/fork answers and run statuses directly (no host)."""

from __future__ import annotations

import pytest

from openwop_core import ForkResult, NotFoundError, OpenwopError, RunCreated, RunSnapshot
from openwop_core.reattach import (
    GONE,
    MAX_KEY_LENGTH,
    ReattachPlan,
    astart_or_reattach,
    fit_key,
    next_key,
    start_or_reattach,
)


def created(run_id: str, *, replayed: bool = False) -> RunCreated:
    return RunCreated(run_id=run_id, replayed=replayed)


def test_a_fresh_run_is_used_without_a_status_read() -> None:
    plan: ReattachPlan[RunCreated] = ReattachPlan("base")
    answer = created("r1")
    assert plan.key == "base"
    assert not plan.needs_status(answer)
    attachment = plan.decide(answer)
    assert attachment is not None
    assert (attachment.run_id, attachment.reattached, attachment.idempotency_key) == ("r1", False, "base")
    assert attachment.generation == 0 and attachment.skipped == ()


@pytest.mark.parametrize(
    "status", ["pending", "running", "paused", "waiting-approval", "waiting-input", "cancelling", "completed"]
)
def test_a_replayed_run_still_going_or_completed_is_reattached(status: str) -> None:
    plan: ReattachPlan[RunCreated] = ReattachPlan("base")
    answer = created("r1", replayed=True)
    assert plan.needs_status(answer)
    attachment = plan.decide(answer, status)
    assert attachment is not None
    assert (attachment.run_id, attachment.reattached, attachment.status) == ("r1", True, status)
    assert plan.key == "base"


@pytest.mark.parametrize("status", ["failed", "cancelled", "timed-out", GONE])
def test_a_replayed_run_that_ended_badly_or_is_gone_moves_on_to_a_key_derived_from_it(status: str) -> None:
    plan: ReattachPlan[RunCreated] = ReattachPlan("base")
    assert plan.decide(created("r1", replayed=True), status) is None
    assert plan.key == next_key("base", "r1")
    assert plan.key.startswith("base-after-") and len(plan.key) == len("base-after-") + 16
    attachment = plan.decide(created("r2"))
    assert attachment is not None
    assert (attachment.run_id, attachment.reattached, attachment.generation) == ("r2", False, 1)
    assert attachment.idempotency_key == next_key("base", "r1")
    assert [(s.run_id, s.status) for s in attachment.skipped] == [("r1", status)]


def test_the_chain_is_the_same_on_every_attempt_and_distinct_per_ended_run() -> None:
    assert next_key("base", "r1") == next_key("base", "r1")
    assert next_key("base", "r1") != next_key("base", "r2")


def test_without_a_base_key_every_answer_is_used_as_it_is() -> None:
    plan: ReattachPlan[RunCreated] = ReattachPlan(None)
    answer = created("r1", replayed=True)  # the client's own retry replayed its random key
    assert not plan.needs_status(answer)
    attachment = plan.decide(answer)
    assert attachment is not None and attachment.reattached and attachment.idempotency_key is None


def test_keys_of_the_chain_fit_the_spec_limit_and_stay_distinct() -> None:
    long_base = "k" * MAX_KEY_LENGTH
    first, second = next_key(long_base, "r1"), next_key(long_base, "r2")
    assert len(first) <= MAX_KEY_LENGTH and len(second) <= MAX_KEY_LENGTH
    assert first != second
    assert fit_key("short") == "short"


def test_the_walk_gives_up_after_the_cap() -> None:
    plan: ReattachPlan[RunCreated] = ReattachPlan("base", max_generations=3)
    assert plan.decide(created("r1", replayed=True), "failed") is None
    assert plan.decide(created("r2", replayed=True), "failed") is None
    with pytest.raises(OpenwopError, match="Gave up reattaching: 3 earlier runs"):
        plan.decide(created("r3", replayed=True), "failed")


class FakeHost:
    """Answers starts from a key -> (run id, status) table; an unknown key starts a fresh run."""

    def __init__(self, known: dict[str, tuple[str, str | None]]) -> None:
        self.known = known
        self.keys: list[str | None] = []
        self.reads: list[str] = []

    def start(self, key: str | None) -> ForkResult:
        self.keys.append(key)
        if key in self.known:
            return ForkResult(run_id=self.known[key][0], replayed=True)
        return ForkResult(run_id=f"fresh-{len(self.keys)}")

    def read(self, run_id: str) -> RunSnapshot:
        self.reads.append(run_id)
        status = next(status for known_id, status in self.known.values() if known_id == run_id)
        if status is None:
            raise NotFoundError(status_code=404, code="run_not_found", message="no such run")
        return RunSnapshot(run_id=run_id, status=status)

    async def astart(self, key: str | None) -> ForkResult:
        return self.start(key)

    async def aread(self, run_id: str) -> RunSnapshot:
        return self.read(run_id)


def _history() -> dict[str, tuple[str, str | None]]:
    """Base key: a failed run; next key: a run the host forgot (404); the one after: nothing yet."""
    return {"base": ("r1", "failed"), next_key("base", "r1"): ("r2", None)}


def test_driver_walks_failed_and_gone_runs_then_starts_afresh() -> None:
    host = FakeHost(_history())
    attachment = start_or_reattach(host.start, host.read, "base")
    assert host.keys == ["base", next_key("base", "r1"), next_key("base", "r2")]
    assert host.reads == ["r1", "r2"]
    assert attachment.run_id == "fresh-3" and not attachment.reattached
    assert [(s.run_id, s.status) for s in attachment.skipped] == [("r1", "failed"), ("r2", GONE)]


async def test_async_driver_makes_the_same_decisions() -> None:
    host = FakeHost({**_history(), next_key("base", "r2"): ("r3", "running")})
    attachment = await astart_or_reattach(host.astart, host.aread, "base")
    assert host.keys == ["base", next_key("base", "r1"), next_key("base", "r2")]
    assert attachment.run_id == "r3" and attachment.reattached and attachment.status == "running"
    assert attachment.generation == 2


def test_driver_reads_nothing_for_a_fresh_run() -> None:
    host = FakeHost({})
    attachment = start_or_reattach(host.start, host.read, "base")
    assert host.keys == ["base"] and host.reads == []
    assert attachment.run_id == "fresh-1" and not attachment.reattached
