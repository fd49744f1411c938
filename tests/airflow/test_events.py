"""The trigger event crosses processes and is treated as untrusted: ``execute_complete`` rejects anything
malformed with a clear error before touching the host. Also the operators' argument checks at parse time."""

from __future__ import annotations

import pytest

from openwop_airflow.exceptions import OpenwopTriggerEventException
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_airflow.sensors.run import OpenwopRunSensor
from openwop_airflow.utils.run_wait_event import RunWaitEvent

GOOD = {
    "status": "interrupted",
    "run_id": "run_1",
    "run_status": "waiting-approval",
    "last_sequence": 3,
    "interrupt": {"node_id": "gate"},
    "error": None,
}


def test_a_valid_payload_round_trips():
    event = RunWaitEvent.from_payload(GOOD)
    assert event.to_payload() == GOOD


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (None, "not an object"),
        ("success", "not an object"),
        ({**GOOD, "status": "done"}, "status must be one of success, error, interrupted, timeout"),
        ({**GOOD, "run_id": ""}, "run_id missing"),
        ({**GOOD, "last_sequence": "3"}, "last_sequence must be an integer"),
        ({**GOOD, "interrupt": ["gate"]}, "interrupt must be an object"),
        ({**GOOD, "run_status": None}, "an interrupted event needs run_status"),
    ],
)
def test_malformed_payloads_are_rejected_with_what_arrived(payload, why):
    with pytest.raises(OpenwopTriggerEventException) as excinfo:
        RunWaitEvent.from_payload(payload)
    assert f"OpenWOP trigger event is invalid ({why})" in str(excinfo.value)
    assert repr(payload)[:20] in str(excinfo.value)


@pytest.mark.parametrize(
    "task",
    [
        OpenwopRunOperator(task_id="run", workflow_id="w"),
        OpenwopRunSensor(task_id="sense", run_id="run_1"),
    ],
    ids=["operator", "sensor"],
)
def test_execute_complete_refuses_an_unknown_event_before_calling_the_host(task):
    with pytest.raises(OpenwopTriggerEventException, match="status must be one of"):
        task.execute_complete(context={}, event={"status": "unknown", "run_id": "run_1"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_interrupt": "ignore"}, "on_interrupt must be one of fail, return, wait"),
        ({"timeout": -5}, "timeout must be a positive number of seconds"),
        ({"poll_interval": "often"}, "poll_interval must be a positive number of seconds"),
        ({"http_retry": {"max_attempts": 0}}, "max_attempts"),
    ],
)
def test_bad_operator_arguments_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OpenwopRunOperator(task_id="run", workflow_id="w", **kwargs)


def test_a_timeout_during_an_outage_round_trips_with_since_when():
    """Issue #12, item 12: the ``timeout`` event says since when the host was unreachable, and its last error."""
    payload = {
        "status": "timeout",
        "run_id": "run_1",
        "run_status": "running",
        "last_sequence": 4,
        "interrupt": None,
        "error": {"code": "host_unreachable", "message": "GET /v1/runs/run_1 failed: connection refused"},
        "unreachable_since": 1_796_000_000.5,
    }
    event = RunWaitEvent.from_payload(payload)

    assert event.unreachable_since == 1_796_000_000.5
    assert event.to_payload() == payload
    with pytest.raises(OpenwopTriggerEventException, match="unreachable_since must be a number"):
        RunWaitEvent.from_payload({**payload, "unreachable_since": "yesterday"})
