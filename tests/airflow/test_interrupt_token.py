"""The ``interrupt`` XCom carries the interrupt token wherever real hosts report it (issue #12, item 22):
``interruptToken`` in ``node.suspended`` (reference hosts) or only in the snapshot's ``interrupt`` (a full
application backend), emulated by the local host's ``interrupt_token_shape`` fault switch."""

from __future__ import annotations

import pytest
from airflow_support import run_dag, run_operator_dag


@pytest.mark.parametrize("shape", ["reference-host", "app-backend"])
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_interrupt_xcom_carries_the_token_real_hosts_report(devhost, capfd, deferrable, shape):
    """Issue #12, item 22: hosts that report the token as ``interruptToken`` (in ``node.suspended``) or only
    in the snapshot's ``interrupt``: the ``interrupt`` XCom carries it, and no log line shows it."""
    devhost.set_faults(interrupt_token_shape=shape)
    dag = run_operator_dag(
        "run_token", workflow_id="conformance-interrupt-external-event", on_interrupt="return", deferrable=deferrable
    )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    (issued,) = devhost.open_interrupts(run_id)
    interrupt = result.xcom("run", "interrupt")
    assert interrupt["kind"] == "external-event"
    assert interrupt["token"] == issued["token"]
    assert issued["token"] not in result.output
