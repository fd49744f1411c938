"""Bad input fails with a message naming the cause: unknown workflow, wrong key, unreachable host,
inputs JSON cannot carry, an unknown on_interrupt mode, inputs the workflow refuses."""

from __future__ import annotations

import socket
from datetime import datetime
from typing import Any

import pytest
from prefect import flow, get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.exceptions import ParameterTypeError

from openwop_core import AuthenticationError, InvalidArgumentError, InvalidRequestError, NotFoundError, TransportError
from openwop_prefect import OpenwopCredentials, create_openwop_run, run_openwop_workflow, wait_for_openwop_run


def flow_runs_of(flow_name: str) -> int:
    """How many flow runs of that flow the Prefect API has."""
    with get_client(sync_client=True) as client:
        return client.count_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))


def test_unknown_workflow(credentials, host):
    with pytest.raises(NotFoundError) as caught:
        run_openwop_workflow(credentials, "no-such-workflow", check_interval=1)

    assert "workflow_not_found" in str(caught.value)
    assert "Check the workflow id" in str(caught.value)


def test_wrong_api_key(host):
    wrong = OpenwopCredentials(base_url=host.base_url, api_key="not-the-key")

    with pytest.raises(AuthenticationError) as caught:
        run_openwop_workflow(wrong, "conformance-noop", check_interval=1)

    assert "HTTP 401" in str(caught.value)
    assert "Check the API key" in str(caught.value)
    assert "not-the-key" not in str(caught.value)


def test_unreachable_host():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = OpenwopCredentials(base_url=f"http://127.0.0.1:{port}", api_key="k", retry_attempts=1)

    with pytest.raises(TransportError) as caught:
        run_openwop_workflow(nowhere, "conformance-noop", check_interval=1)

    assert f"Could not connect to http://127.0.0.1:{port}" in str(caught.value)


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"when": datetime(2026, 1, 1)}, "inputs['when'] is a datetime"),
        ({"nested": {"items": [1, object()]}}, "inputs['nested']['items'][1] is a object"),
        ({"ratio": float("nan")}, "inputs['ratio'] is nan"),
    ],
)
def test_inputs_json_cannot_carry(credentials, host, inputs, named):
    with pytest.raises(InvalidArgumentError) as caught:
        run_openwop_workflow(credentials, "conformance-identity", inputs, check_interval=1)

    assert named in str(caught.value)
    assert host.runs_created() == 0  # refused before anything was sent


def test_inputs_the_workflow_refuses(credentials, host):
    with pytest.raises(InvalidRequestError) as caught:
        run_openwop_workflow(credentials, "conformance-delay", {"delayMs": "soon"}, check_interval=1)

    assert "delayMs" in str(caught.value)


def test_unknown_on_interrupt_mode(credentials, host):
    with pytest.raises(ParameterTypeError) as caught:
        run_openwop_workflow(credentials, "conformance-noop", on_interrupt="ask-later", check_interval=1)
    assert "on_interrupt" in str(caught.value)
    assert "Input should be 'pause', 'fail' or 'return'" in str(caught.value)
    # the same check guards direct calls of the flow's function
    with pytest.raises(InvalidArgumentError, match="on_interrupt must be 'pause', 'fail', 'return' or a callable"):
        run_openwop_workflow.fn(credentials, "conformance-noop", on_interrupt="ask-later")
    assert host.runs_created() == 0


def test_inputs_over_prefects_parameter_limit_fail_before_anything_starts(credentials, host):
    """Prefect refuses flow-run parameters over 512 KiB with a 422 that echoes them all (1.4 million characters
    for 700 KB); the flow refuses first, with the sizes and the task-based alternative, and starts nothing."""
    big = {"payload": {"blob": "q" * 700_000}}

    @flow
    def parent() -> Any:
        return run_openwop_workflow(credentials, "conformance-identity", big, check_interval=1)

    before = flow_runs_of("run-openwop-workflow")
    with pytest.raises(InvalidArgumentError) as caught:
        parent()

    message = str(caught.value)
    assert "over Prefect's limit of 524,288 bytes" in message
    assert "create_openwop_run" in message and "wait_for_openwop_run" in message
    assert "qqqq" not in message and len(message) < 1000
    assert host.runs_created() == 0
    assert flow_runs_of("run-openwop-workflow") == before  # the subflow run was never created
    with pytest.raises(InvalidArgumentError, match="over Prefect's limit"):  # a copy with other options too
        run_openwop_workflow.with_options(name="renamed")(credentials, "conformance-identity", big)
    assert host.runs_created() == 0


def test_inputs_over_prefects_parameter_limit_run_with_the_tasks(credentials, host):
    """The alternative the message names carries the same 700 KB."""
    big = {"payload": {"blob": "q" * 700_000}}

    @flow
    def with_tasks() -> Any:
        run_id = create_openwop_run(credentials, "conformance-identity", big)
        return wait_for_openwop_run(credentials, run_id)

    assert with_tasks().outputs == big
