"""The interrupt token in every place real hosts put it (issue #12, item 22), read in the one place where
host variance is normalised (``models`` + ``RunTracker``), and never shown in reprs or logs.

- The SQLite/Postgres reference hosts: ``interruptToken`` (beside ``callbackUrl``) in the ``node.suspended``
  payload and in the interrupt they report.
- A full application backend: only in the run snapshot's ``interrupt`` object; the suspension event
  carries just ``{interruptId, kind}``.

The local host emulates both with the ``interrupt_token_shape`` fault switch.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from core_helpers import call

from openwop_core import PendingInterrupt, RunEvent, RunSnapshot, RunTracker, resume
from openwop_devhost import DevHost

SECRET = "eyJzZWNyZXQiOnRydWV9.c2lnbmF0dXJl"
WORKFLOW = "conformance-interrupt-external-event"


def suspended(payload: dict[str, Any], sequence: int = 3) -> RunEvent:
    return RunEvent.from_wire({"type": "node.suspended", "sequence": sequence, "nodeId": "wait", "payload": payload})


def waiting_snapshot(**extra: Any) -> RunSnapshot:
    return RunSnapshot.model_validate(
        {"runId": "run_1", "status": "waiting-external", "currentNodeId": "wait", **extra}
    )


@pytest.mark.parametrize("name", ["token", "interruptToken", "callbackToken"])
def test_tracker_reads_every_token_name_of_a_suspension(name: str) -> None:
    tracker = RunTracker("run_1")
    tracker.observe(suspended({"interruptId": "int_1", "kind": "external-event", name: SECRET, "callbackUrl": "x"}))

    pending = tracker.pending_interrupt(waiting_snapshot())

    assert pending is not None and pending.token == SECRET and pending.interrupt_id == "int_1"


def test_tracker_reads_the_token_from_the_snapshot_when_the_event_has_none() -> None:
    tracker = RunTracker("run_1")
    tracker.observe(suspended({"interruptId": "int_1", "kind": "external-event"}))
    snapshot = waiting_snapshot(
        interrupt={"interruptId": "int_1", "kind": "external-event", "interruptToken": SECRET, "callbackUrl": "u"}
    )

    pending = tracker.pending_interrupt(snapshot)

    assert pending is not None and pending.token == SECRET and pending.node_id == "wait"


def test_a_snapshot_alone_describes_the_interrupt_and_its_token() -> None:
    snapshot = waiting_snapshot(interrupt={"interruptId": "int_9", "kind": "external-event", "interruptToken": SECRET})

    pending = RunTracker("run_1").pending_interrupt(snapshot)

    assert pending is not None
    assert (pending.node_id, pending.interrupt_id, pending.kind, pending.token) == (
        "wait",
        "int_9",
        "external-event",
        SECRET,
    )


def test_a_snapshot_interrupt_of_another_interrupt_is_not_merged() -> None:
    tracker = RunTracker("run_1")
    tracker.observe(suspended({"interruptId": "int_new", "kind": "external-event"}))
    snapshot = waiting_snapshot(interrupt={"interruptId": "int_old", "interruptToken": SECRET})

    pending = tracker.pending_interrupt(snapshot)

    assert pending is not None and pending.token is None


def test_tokens_are_not_in_reprs() -> None:
    event = suspended({"interruptId": "int_1", "interruptToken": SECRET, "callbackUrl": f"https://h/{SECRET}"})
    snapshot = waiting_snapshot(interrupt={"interruptToken": SECRET, "callbackUrl": f"https://h/{SECRET}"})
    pending = PendingInterrupt(run_id="run_1", node_id="wait", token=SECRET)

    for shown in (repr(event), str(event), repr(snapshot), str(snapshot), repr(pending), repr(snapshot.interrupt)):
        assert SECRET not in shown
    assert snapshot.interrupt is not None and snapshot.interrupt.token == SECRET
    assert event.payload["interruptToken"] == SECRET  # the data itself is intact


def test_an_unreadable_snapshot_interrupt_is_ignored() -> None:
    snapshot = waiting_snapshot(interrupt="int_1")

    assert snapshot.interrupt is None
    assert RunTracker("run_1").pending_interrupt(snapshot) is not None


@pytest.mark.parametrize("shape", ["reference-host", "app-backend"])
async def test_wait_for_run_returns_the_token_real_hosts_report(
    client: Any, host: DevHost, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host.set_faults(interrupt_token_shape=shape)
    run = await call(client.runs_create(WORKFLOW))

    result = await call(client.wait_for_run(run.run_id, stop_on_interrupt=True, timeout=30))

    (issued,) = host.open_interrupts(run.run_id)
    assert result.interrupt is not None
    assert result.interrupt.kind == "external-event"
    assert result.interrupt.token == issued["token"]
    assert issued["token"] not in repr(result)
    assert issued["token"] not in caplog.text
    # the token is the real credential: it resolves the interrupt without an API key
    await call(client.interrupts_resolve_by_token(result.interrupt.token, resume.external_event({"ok": True})))
    assert (await call(client.wait_for_run(run.run_id, timeout=30))).status == "completed"


async def test_canonical_host_reports_no_token(client: Any, host: DevHost) -> None:
    run = await call(client.runs_create(WORKFLOW))

    result = await call(client.wait_for_run(run.run_id, stop_on_interrupt=True, timeout=30))

    assert result.interrupt is not None and result.interrupt.token is None
