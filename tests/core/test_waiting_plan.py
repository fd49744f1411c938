"""The waiter's decisions, fed events and snapshots directly."""

from __future__ import annotations

from openwop_core import RunEvent, RunSnapshot, RunTracker
from openwop_core.waiting import ProgressLines, WaitPlan, describe_event


def ev(seq: int, type_: str, **payload) -> RunEvent:
    return RunEvent.model_validate({"type": type_, "sequence": seq, "runId": "r", "payload": payload})


def snap(status: str, **extra) -> RunSnapshot:
    return RunSnapshot.model_validate({"runId": "r", "status": status, **extra})


def test_interrupt_assembled_from_canonical_and_legacy_events() -> None:
    tracker = RunTracker("r")
    tracker.observe(ev(1, "node.suspended", nodeId="gate", interruptId="i1", kind="approval", key="r:gate:0"))
    tracker.observe(
        ev(
            2,
            "interrupt.requested",
            nodeId="gate",
            interruptId="i1",
            kind="approval",
            data={"title": "Ship it?", "actions": ["accept", "reject"]},
            timeoutMs=1000,
        )
    )
    tracker.observe(ev(3, "approval.requested", nodeId="gate", interruptId="i1", title="Ship it?"))
    pending = tracker.pending_interrupt(snap("waiting-approval", currentNodeId="gate"))
    assert pending is not None
    assert (pending.node_id, pending.interrupt_id, pending.kind, pending.key) == ("gate", "i1", "approval", "r:gate:0")
    assert pending.title == "Ship it?" and pending.actions == ["accept", "reject"] and pending.timeout_ms == 1000


def test_resolved_interrupt_is_no_longer_pending_and_loops_ask_again() -> None:
    tracker = RunTracker("r")
    tracker.observe(ev(1, "interrupt.requested", nodeId="gate", interruptId="i1", kind="approval"))
    tracker.observe(ev(2, "interrupt.resolved", nodeId="gate", interruptId="i1"))
    assert tracker.pending_interrupt() is None
    tracker.observe(ev(3, "interrupt.requested", nodeId="gate", interruptId="i2", kind="approval"))
    pending = tracker.pending_interrupt()
    assert pending is not None and pending.interrupt_id == "i2"


def test_status_only_host_gets_an_interrupt_from_the_snapshot() -> None:
    tracker = RunTracker("r")
    pending = tracker.pending_interrupt(snap("waiting-input", currentNodeId="ask"))
    assert pending is not None and (pending.node_id, pending.kind) == ("ask", "clarification")
    tracker.observe(ev(4, "node.suspended", nodeId="ext"))
    pending = tracker.pending_interrupt(snap("waiting-external", currentNodeId="ext"))
    assert pending is not None and pending.kind == "external-event"


def test_clarification_questions_from_legacy_event() -> None:
    tracker = RunTracker("r")
    tracker.observe(ev(1, "clarification.requested", nodeId="ask", questions=[{"id": "q1", "question": "Color?"}]))
    pending = tracker.pending_interrupt()
    assert pending is not None and pending.kind == "clarification"
    assert pending.questions == [{"id": "q1", "question": "Color?"}] and pending.title == "Color?"


def test_plan_stops_on_terminal_or_interrupt_as_asked() -> None:
    plan = WaitPlan("r")
    assert not plan.observe(ev(1, "interrupt.requested", nodeId="gate"))
    assert plan.observe(ev(2, "run.completed", outputs={}))
    stopping = WaitPlan("r", stop_on_interrupt=True)
    assert stopping.observe(ev(1, "node.suspended", nodeId="gate")) and stopping.needs_catch_up
    canonical = WaitPlan("r", stop_on_interrupt=True)
    assert canonical.observe(ev(1, "interrupt.requested", nodeId="gate")) and not canonical.needs_catch_up


def test_result_for_a_failed_run_raises_with_the_remote_error() -> None:
    plan = WaitPlan("r")
    plan.observe(ev(1, "node.failed", nodeId="boom", error={"code": "x", "message": "y"}))
    plan.observe(ev(2, "run.failed", error={"code": "conformance_test_failure", "message": "Intentional"}))
    result = plan.result(snap("failed", error={"code": "conformance_test_failure", "message": "Intentional"}))
    assert result.outcome == "failed" and result.last_sequence == 2 and result.failed_node_id == "boom"
    try:
        result.raise_for_status()
    except Exception as exc:
        assert "conformance_test_failure" in str(exc) and "Intentional" in str(exc) and "boom" in str(exc)
    else:
        raise AssertionError("a failed run must raise")


def test_describe_event_lines() -> None:
    assert describe_event(ev(1, "node.completed", nodeId="a", durationMs=3)) == "node a completed in 3 ms"
    assert describe_event(ev(2, "run.failed", error={"code": "c", "message": "m"})) == "run failed: c: m"
    assert describe_event(ev(3, "variable.changed")) is None


def test_progress_lines_fold_the_twins_of_one_answer_but_not_a_second_answer() -> None:
    lines = ProgressLines()
    events = [
        ev(1, "node.suspended", nodeId="gate", kind="approval"),
        ev(2, "interrupt.resolved", nodeId="gate"),
        ev(3, "approval.received", nodeId="gate", action="reject"),
        ev(4, "node.resumed", nodeId="gate"),
        ev(5, "node.suspended", nodeId="gate", kind="approval"),  # a loop-back asks again
        ev(6, "interrupt.resolved", nodeId="gate"),
        ev(7, "approval.received", nodeId="gate", action="accept"),
        ev(8, "run.completed"),
    ]
    shown = [line for line in map(lines, events) if line]
    assert shown == [
        "node gate suspended (approval)",
        "node gate resumed",
        "node gate suspended (approval)",
        "node gate resumed",
        "run completed",
    ]
