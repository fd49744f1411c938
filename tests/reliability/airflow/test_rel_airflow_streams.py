"""The Airflow trigger under stream faults and triggerer restarts, as properties.

1. Stream drops: over the generated runs and stream faults of the core property, ``OpenwopRunTrigger``
   sees every event exactly once, in order (what its wait hands to the progress log), and fires exactly one
   event carrying the run's real end and last sequence.
2. Process faults: the trigger is killed (its task cancelled, ``cleanup`` run, as when a triggerer stops) at
   generated points mid-wait, one to three times, and rebuilt each time from its serialised form (the class
   path and kwargs, through a trigger row's encoding, as the triggerer reloads it from the database). The
   last one fires the right event, sees every event after its cursor exactly once, and the run was never
   cancelled by the restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from airflow_support import API_KEY, connection_json, through_trigger_row
from hypothesis import given
from hypothesis import strategies as st
from reliability_support import (
    FAST_RETRY,
    PROPERTY_TIMEOUT,
    StreamCase,
    as_triples,
    describe_mismatch,
    expected_events,
    property_settings,
    record,
    stream_cases,
    stream_connections,
)

from openwop_airflow.triggers.run import OpenwopRunTrigger
from openwop_airflow.utils import waiting
from openwop_core import OpenwopClient, RunEvent
from openwop_devhost import DevHost, Faults

pytestmark = pytest.mark.timeout(PROPERTY_TIMEOUT)

STATUS_OF = {"completed": "success", "failed": "error", "cancelled": "error"}


@dataclass
class Observed:
    """Events handed to the trigger's wait (``RunWait.on_event``), and a kill switch at the n-th one."""

    events: list[RunEvent] = field(default_factory=list)
    kill_at: int | None = None
    reached: asyncio.Event | None = None

    def reset(self, kill_at: int | None = None) -> None:
        self.events = []
        self.kill_at = kill_at
        self.reached = asyncio.Event() if kill_at is not None else None


@pytest.fixture(scope="module")
def observed(module_devhost: DevHost) -> Iterator[Observed]:
    """Wire ``openwop_default`` to the module's host and watch what the trigger's wait receives."""
    seen = Observed()
    original = waiting.RunWait.on_event

    def spy(self: waiting.RunWait, event: RunEvent) -> None:
        seen.events.append(event)
        original(self, event)
        if seen.reached is not None and seen.kill_at is not None and len(seen.events) >= seen.kill_at:
            seen.reached.set()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(module_devhost, retry=FAST_RETRY))
        patch.setattr(waiting.RunWait, "on_event", spy)
        yield seen


def start(host: DevHost, case: StreamCase) -> str:
    host.set_faults(Faults(seed=case.seed))
    with OpenwopClient(host.base_url, api_key=API_KEY) as client:
        run_id = client.runs_create(case.workflow_id, case.inputs).run_id
        host.set_run_faults(run_id, case.faults)
        if case.cancel:
            client.runs_cancel(run_id, reason="generated case")
    return run_id


async def fire(trigger: OpenwopRunTrigger) -> list[Any]:
    return [event async for event in trigger.run()]


def check_event(host: DevHost, run_id: str, case: StreamCase, payload: dict[str, Any]) -> None:
    host.wait_for_status(run_id)
    assert payload["status"] == STATUS_OF[case.outcome], payload
    assert payload["run_id"] == run_id
    assert payload["run_status"] == case.outcome
    assert payload["last_sequence"] == host.events(run_id)[-1]["sequence"]
    json.dumps(payload)


@given(case=stream_cases())
@property_settings(ci_examples=40, soak_examples=450)
def test_trigger_sees_every_event_once_and_fires_the_real_end(
    module_devhost: DevHost, observed: Observed, case: StreamCase
) -> None:
    began = time.monotonic()
    run_id = start(module_devhost, case)
    observed.reset()
    events = asyncio.run(asyncio.wait_for(fire(OpenwopRunTrigger(run_id=run_id)), 60))

    assert len(events) == 1
    check_event(module_devhost, run_id, case, events[0].payload)
    triples = as_triples(observed.events)
    expected = expected_events(module_devhost.events(run_id), case)
    assert triples == expected, describe_mismatch(triples, expected)
    record("stream/airflow trigger", len(triples), time.monotonic() - began, stream_connections(module_devhost, run_id))


@dataclass(frozen=True)
class RestartCase:
    """A run, the faults on its stream, the cursor the trigger was deferred with, and where it is killed."""

    stream: StreamCase
    cursor: int | None
    kills: tuple[int, ...]


@st.composite
def restart_cases(draw: st.DrawFn) -> RestartCase:
    count = draw(st.integers(min_value=0, max_value=60))
    delay = draw(st.integers(min_value=0, max_value=150))
    failing = draw(st.booleans())
    stream = StreamCase(
        workflow_id="rel-chain-failing" if failing else "rel-chain",
        inputs={"count": count, "payloadBytes": 16, "delayMs": delay},
        outcome="failed" if failing else "completed",
        faults={"drop_sse_after_events": draw(st.integers(min_value=1, max_value=6)), "keepalive": False},
        seed=draw(st.integers(min_value=0, max_value=2**31 - 1)),
    )
    cursor = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=3)))
    kills = tuple(draw(st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=3)))
    return RestartCase(stream, cursor, kills)


def rebuild(classpath: str, kwargs: dict[str, Any]) -> OpenwopRunTrigger:
    """What a triggerer does with a trigger row: kwargs back from the row, class from its path."""
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    trigger = cls(**through_trigger_row(kwargs))
    assert isinstance(trigger, OpenwopRunTrigger)
    return trigger


async def run_until_killed(trigger: OpenwopRunTrigger, observed: Observed, kill_after: int) -> bool:
    """Run the trigger until it has received ``kill_after`` events (or fired), then stop it as a stopping
    triggerer does: cancel its task, then ``cleanup``. True when it was killed before it fired."""
    observed.reset(kill_at=kill_after)
    task = asyncio.ensure_future(fire(trigger))
    assert observed.reached is not None
    if kill_after > 0:
        reached = asyncio.ensure_future(observed.reached.wait())
        await asyncio.wait({task, reached}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        reached.cancel()
    else:
        await asyncio.sleep(0)
    mid_wait = not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await trigger.cleanup()
    return mid_wait


@given(case=restart_cases())
@property_settings(ci_examples=25, soak_examples=300)
def test_a_trigger_rebuilt_from_its_serialised_form_mid_run_finishes_correctly(
    module_devhost: DevHost, observed: Observed, case: RestartCase
) -> None:
    began = time.monotonic()
    run_id = start(module_devhost, case.stream)
    cursor = case.cursor  # None: the first deferral; a sequence: deferred again, as execute_complete does
    original = OpenwopRunTrigger(run_id=run_id, last_sequence=cursor, deadline=time.time() + 120, cancel_on_kill=True)
    classpath, kwargs = original.serialize()

    killed_mid_wait: list[bool] = []

    async def scenario() -> list[Any]:
        for kill_after in case.kills:
            killed_mid_wait.append(await run_until_killed(rebuild(classpath, kwargs), observed, kill_after))
        observed.reset()
        return await asyncio.wait_for(fire(rebuild(classpath, kwargs)), 60)

    events = asyncio.run(scenario())

    assert len(events) == 1
    check_event(module_devhost, run_id, case.stream, events[0].payload)  # never cancelled by a restart
    triples = as_triples(observed.events)
    expected = expected_events(module_devhost.events(run_id), case.stream, after=cursor)
    assert triples == expected, describe_mismatch(triples, expected)
    connections = stream_connections(module_devhost, run_id)
    record("restart/airflow trigger", len(triples), time.monotonic() - began, connections, sum(killed_mid_wait))
