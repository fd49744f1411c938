"""The interrupt the flow returns carries the token wherever real hosts report it (issue #12, item 22):
``interruptToken`` in ``node.suspended`` (reference hosts) or only in the snapshot's ``interrupt`` (a full
application backend), emulated by the local host's ``interrupt_token_shape`` fault switch."""

from __future__ import annotations

import pytest
from prefect_support import flow_run_logs

from openwop_prefect import run_openwop_workflow


@pytest.mark.parametrize("shape", ["reference-host", "app-backend"])
def test_returned_interrupt_carries_the_token(credentials, host, shape):
    host.set_faults(interrupt_token_shape=shape)
    state = run_openwop_workflow(
        credentials, "conformance-interrupt-external-event", on_interrupt="return", check_interval=1, return_state=True
    )

    result = state.result()
    (issued,) = host.open_interrupts(result.run_id)
    assert result.interrupt.kind == "external-event"
    assert result.interrupt.token == issued["token"]
    assert issued["token"] not in repr(result)
    assert not any(issued["token"] in line for line in flow_run_logs(state.state_details.flow_run_id))
