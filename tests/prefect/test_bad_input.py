"""Bad input fails with a message naming the cause: unknown workflow, wrong key, unreachable host,
inputs JSON cannot carry, an unknown on_interrupt mode, inputs the workflow refuses."""

from __future__ import annotations

import socket
from datetime import datetime

import pytest
from prefect.exceptions import ParameterTypeError

from openwop_core import AuthenticationError, InvalidArgumentError, InvalidRequestError, NotFoundError, TransportError
from openwop_prefect import OpenwopCredentials, run_openwop_workflow


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
