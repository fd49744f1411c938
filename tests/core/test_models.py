"""The tolerant readers: every host variance named in the spec and the real-host notes is normalised."""

from __future__ import annotations

from openwop_core import (
    BulkCancelResult,
    Discovery,
    ErrorInfo,
    EventPage,
    RunCreated,
    RunEvent,
    RunSnapshot,
    RunStatus,
    WebhookRegistration,
)


def test_event_reads_canonical_fields_and_keeps_unknown_ones() -> None:
    event = RunEvent.model_validate(
        {
            "eventId": "e1",
            "runId": "r1",
            "type": "node.completed",
            "sequence": 3,
            "payload": {"nodeId": "a", "outputs": {"x": 1}},
            "timestamp": "2026-05-01T10:00:00.123Z",
            "vendorField": 7,
        }
    )
    assert (event.sequence, event.type, event.node_id, event.run_id) == (3, "node.completed", "a", "r1")
    assert event.model_extra == {"vendorField": 7}
    assert not event.is_terminal


def test_event_reads_legacy_seq_and_data_and_nulls() -> None:
    event = RunEvent.model_validate(
        {"type": "run.completed", "seq": 9, "data": {"outputs": {"y": 2}}, "nodeId": None, "eventId": None}
    )
    assert event.sequence == 9
    assert event.payload == {"outputs": {"y": 2}}
    assert event.node_id is None
    assert event.is_terminal


def test_event_prefers_canonical_when_both_spellings_present() -> None:
    event = RunEvent.model_validate({"type": "x", "sequence": 4, "seq": 99, "payload": 1, "data": 2})
    assert (event.sequence, event.payload) == (4, 1)


def test_snapshot_accepts_ended_at_and_exposes_outputs() -> None:
    snap = RunSnapshot.model_validate(
        {
            "runId": "r",
            "workflowId": "w",
            "status": "completed",
            "startedAt": "2026-05-01T10:00:00Z",
            "endedAt": "2026-05-01T10:00:02.5Z",
            "variables": {"answer": 42},
            "error": None,
        }
    )
    assert snap.completed_at is not None
    assert snap.duration_seconds == 2.5
    assert snap.outputs == {"answer": 42}
    assert snap.is_terminal and not snap.is_waiting


def test_snapshot_failed_error_and_explicit_outputs() -> None:
    snap = RunSnapshot.model_validate(
        {"runId": "r", "status": "failed", "error": {"code": "boom", "message": "it broke"}, "outputs": {"o": 1}}
    )
    assert snap.error is not None and str(snap.error) == "boom: it broke"
    assert snap.outputs == {"o": 1}


def test_unknown_status_is_terminal_so_wait_loops_end() -> None:
    assert RunStatus.is_terminal("timed-out")
    assert not RunStatus.is_terminal("waiting-external")
    assert RunStatus.is_waiting("waiting-input") and RunStatus.is_waiting_on_human("waiting-input")
    assert not RunStatus.is_waiting_on_human("waiting-external")


def test_poll_page_reads_both_shapes() -> None:
    openapi_shape = EventPage.model_validate({"events": [{"type": "a", "sequence": 1}], "isComplete": False})
    assert openapi_shape.next_cursor == 1 and not openapi_shape.finished
    negotiation_shape = EventPage.model_validate(
        {"runId": "r", "events": [], "lastEventSeq": 7, "runStatus": "completed", "isTerminal": True}
    )
    assert negotiation_shape.next_cursor == 7 and negotiation_shape.finished
    v2ish = EventPage.model_validate({"events": [], "lastSequence": 3, "status": "running"})
    assert v2ish.last_event_seq == 3 and v2ish.run_status == "running" and not v2ish.finished


def test_discovery_reads_root_then_legacy_capabilities_mirror() -> None:
    root = Discovery.model_validate(
        {"protocolVersion": "1.4", "replay": {"supported": True, "modes": ["replay", "branch"]}}
    )
    assert root.major_version == 1 and root.supports_fork("branch")
    legacy = Discovery.model_validate(
        {"protocolVersion": "1.0", "capabilities": {"runs": {"pauseResume": {"supported": True}}}}
    )
    assert legacy.supports_pause_resume() and not legacy.supports_fork()
    assert legacy.supports_bulk_cancel() is None
    assert Discovery.model_validate({"protocolVersion": 1}).major_version == 1


def test_create_answer_without_events_url() -> None:
    created = RunCreated.model_validate({"runId": "r", "status": "running", "workflowId": "w", "startedAt": "x"})
    assert created.events_url is None and created.run_id == "r" and not created.replayed


def test_bulk_cancel_item_error_in_either_shape() -> None:
    result = BulkCancelResult.model_validate(
        {
            "results": [
                {"runId": "a", "ok": True, "status": "cancelling"},
                {"runId": "b", "ok": False, "error": {"error": "not_found", "message": "no"}},
                {"runId": "c", "ok": False, "error": {"code": "run_terminal", "message": "done"}},
            ]
        }
    )
    assert [i.error.code for i in result.failed if i.error] == ["not_found", "run_terminal"]


def test_error_info_from_plain_string() -> None:
    assert ErrorInfo.model_validate("boom").code == "boom"


def test_webhook_registration_ids_and_secret_hidden() -> None:
    reg = WebhookRegistration.model_validate({"subscriptionId": "s1", "secret": "whsec-VERY-SECRET"})
    assert reg.webhook_id == "s1"
    assert "VERY-SECRET" not in repr(reg) and "VERY-SECRET" not in str(reg)
    assert reg.secret is not None and reg.secret.get_secret_value() == "whsec-VERY-SECRET"
