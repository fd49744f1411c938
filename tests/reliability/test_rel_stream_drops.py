"""Stream drops, as a property: over generated runs (event bursts, multi-node chains, failing and cancelled
runs) and generated stream faults (cut after N frames, cut at random with a seed, the resumed event sent
again, legacy field names, malformed and unknown frames, no keepalives, no SSE at all, batching), every
event reaches the consumer exactly once, in order, with its payload, and the run's real end is reported.

Checked through the sync and the async client, both ``runs_events`` (any stream mode) and
``wait_for_run`` (its ``on_event`` callback). The Airflow trigger and the Prefect wait run the same
property in ``airflow/`` and ``prefect/``. Counts: ``reliability_support.scale`` (CI / ``make soak``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given
from reliability_support import (
    API_KEY,
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
    terminal_type,
)

from openwop_core import AsyncOpenwopClient, OpenwopClient, RunEvent
from openwop_devhost import DevHost, Faults

pytestmark = pytest.mark.timeout(PROPERTY_TIMEOUT)

EVENTS_EXAMPLES = property_settings(ci_examples=40, soak_examples=1100)
WAIT_EXAMPLES = property_settings(ci_examples=40, soak_examples=1100)


def start(host: DevHost, client: OpenwopClient, case: StreamCase) -> str:
    """Create the case's run with its stream faults (and cancel it when the case says so)."""
    host.set_faults(Faults(seed=case.seed))  # the random drops of this example replay with its seed
    run_id = client.runs_create(case.workflow_id, case.inputs).run_id
    host.set_run_faults(run_id, case.faults)
    if case.cancel:
        client.runs_cancel(run_id, reason="generated case")
    return run_id


async def astart(host: DevHost, client: AsyncOpenwopClient, case: StreamCase) -> str:
    """Async twin of :func:`start`."""
    await asyncio.to_thread(host.set_faults, Faults(seed=case.seed))
    run_id = (await client.runs_create(case.workflow_id, case.inputs)).run_id
    await asyncio.to_thread(host.set_run_faults, run_id, case.faults)
    if case.cancel:
        await client.runs_cancel(run_id, reason="generated case")
    return run_id


def check(host: DevHost, run_id: str, case: StreamCase, seen: list[RunEvent], path: str, began: float) -> None:
    """Exactly once, in order, with payloads; the right end; one run on the host."""
    host.wait_for_status(run_id)
    expected = expected_events(host.events(run_id), case)
    triples = as_triples(seen)
    assert triples == expected, describe_mismatch(triples, expected)
    assert triples[-1][1] == terminal_type(case.outcome)
    assert host.get_run(run_id)["status"] == case.outcome
    record(path, len(seen), time.monotonic() - began, stream_connections(host, run_id))


@given(case=stream_cases(modes=True))
@EVENTS_EXAMPLES
def test_sync_runs_events_sees_every_event_once_in_order(rel_host: DevHost, case: StreamCase) -> None:
    began = time.monotonic()
    with OpenwopClient(rel_host.base_url, api_key=API_KEY, retry=FAST_RETRY) as client:
        run_id = start(rel_host, client, case)
        seen = list(client.runs_events(run_id, stream_mode=case.stream_mode, buffer_ms=case.buffer_ms))
    check(rel_host, run_id, case, seen, "stream/sync runs_events", began)


@given(case=stream_cases())
@WAIT_EXAMPLES
def test_sync_wait_for_run_sees_every_event_once_and_the_real_end(rel_host: DevHost, case: StreamCase) -> None:
    began = time.monotonic()
    seen: list[RunEvent] = []
    with OpenwopClient(rel_host.base_url, api_key=API_KEY, retry=FAST_RETRY) as client:
        run_id = start(rel_host, client, case)
        result = client.wait_for_run(run_id, timeout=60, on_event=seen.append)
    assert result.status == case.outcome
    assert result.last_sequence == seen[-1].sequence
    check(rel_host, run_id, case, seen, "stream/sync wait_for_run", began)


@given(case=stream_cases(modes=True))
@EVENTS_EXAMPLES
def test_async_runs_events_sees_every_event_once_in_order(rel_host: DevHost, case: StreamCase) -> None:
    began = time.monotonic()

    async def scenario() -> tuple[str, list[RunEvent]]:
        async with AsyncOpenwopClient(rel_host.base_url, api_key=API_KEY, retry=FAST_RETRY) as client:
            run_id = await astart(rel_host, client, case)
            events = client.runs_events(run_id, stream_mode=case.stream_mode, buffer_ms=case.buffer_ms)
            return run_id, [event async for event in events]

    run_id, seen = asyncio.run(scenario())
    check(rel_host, run_id, case, seen, "stream/async runs_events", began)


@given(case=stream_cases())
@WAIT_EXAMPLES
def test_async_wait_for_run_sees_every_event_once_and_the_real_end(rel_host: DevHost, case: StreamCase) -> None:
    began = time.monotonic()
    seen: list[RunEvent] = []

    async def scenario() -> tuple[str, Any]:
        async with AsyncOpenwopClient(rel_host.base_url, api_key=API_KEY, retry=FAST_RETRY) as client:
            run_id = await astart(rel_host, client, case)
            return run_id, await client.wait_for_run(run_id, timeout=60, on_event=seen.append)

    run_id, result = asyncio.run(scenario())
    assert result.status == case.outcome
    assert result.last_sequence == seen[-1].sequence
    check(rel_host, run_id, case, seen, "stream/async wait_for_run", began)
