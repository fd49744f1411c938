"""Bad input to the Prefect integration, table-driven: the credentials block (URL, timeout, attempts, key,
headers, CA bundle), the flow's arguments (workflow, inputs, durations, interrupt handling), the job block,
and the tasks answering or forking. Each row names the exception, words naming the cause and words naming
the fix; no message may show the API key. Rows that must refuse *before* anything is sent also check that
the host saw no run.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prefect import flow
from prefect_support import SECRET_KEY
from pydantic import SecretStr, ValidationError
from reliability_support import free_port

from openwop_core import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    InterruptNotFoundError,
    InvalidArgumentError,
    InvalidRequestError,
    NotFoundError,
    OpenwopClient,
    TransportError,
    resume,
)
from openwop_devhost import DevHost
from openwop_prefect import (
    OpenwopCredentials,
    OpenwopWorkflow,
    fork_openwop_run,
    resolve_openwop_interrupt,
    run_openwop_workflow,
)


@dataclass(frozen=True)
class Row:
    name: str
    act: Callable[[DevHost, OpenwopCredentials], Any]
    error: type[BaseException]
    cause: tuple[str, ...]
    fix: tuple[str, ...]
    nothing_sent: bool = False


def block(**fields: Any) -> Callable[[DevHost, OpenwopCredentials], Any]:
    return lambda host, creds: OpenwopCredentials(**{"base_url": host.base_url, **fields}).get_client()


def run(*args: Any, **kwargs: Any) -> Callable[[DevHost, OpenwopCredentials], Any]:
    return lambda host, creds: run_openwop_workflow(creds, *args, check_interval=0.5, **kwargs)


def finished_run(host: DevHost) -> str:
    with OpenwopClient(host.base_url, api_key=SECRET_KEY) as client:
        run_id = client.runs_create("conformance-multi-node").run_id
    host.wait_for_status(run_id)
    return run_id


def resolve_twice(host: DevHost, creds: OpenwopCredentials) -> Any:
    with OpenwopClient(host.base_url, api_key=SECRET_KEY) as client:
        run_id = client.runs_create("conformance-approval").run_id
        host.wait_for_status(run_id, {"waiting-approval"})
        client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept"))

    @flow
    def answer_again() -> Any:
        return resolve_openwop_interrupt(creds, run_id, "gate", resume.approval("accept"))

    return answer_again()


def fork_in_flow(**kwargs: Any) -> Callable[[DevHost, OpenwopCredentials], Any]:
    def act(host: DevHost, creds: OpenwopCredentials) -> Any:
        source = finished_run(host)

        @flow
        def forking() -> Any:
            return fork_openwop_run(creds, source, **kwargs)

        return forking()

    return act


# fmt: off
ROWS = [
    # -- the credentials block ------------------------------------------------------------------------
    Row("block base URL without a scheme", lambda h, c: OpenwopCredentials(base_url="openwop.example.com"),
        ValidationError, ("has no scheme",), ("https://openwop.example.com",)),
    Row("block base URL with a wrong scheme", lambda h, c: OpenwopCredentials(base_url="ftp://openwop.example.com"),
        ValidationError, ("uses 'ftp'",), ("http or https",)),
    Row("block base URL that is malformed", lambda h, c: OpenwopCredentials(base_url="http://"),
        ValidationError, ("has no host name",), ("write it as 'https://openwop.example.com'",)),
    Row("block timeout of zero", lambda h, c: OpenwopCredentials(base_url=h.base_url, timeout=0),
        ValidationError, ("timeout", "got 0"), ("positive number of seconds",)),
    Row("block timeout that is a boolean (it was read as 1 second)",
        lambda h, c: OpenwopCredentials(base_url=h.base_url, timeout=True),
        ValidationError, ("timeout", "got True"), ("positive number of seconds",)),
    Row("block with zero attempts", lambda h, c: OpenwopCredentials(base_url=h.base_url, retry_attempts=0),
        ValidationError, ("retry_attempts",), ("greater than or equal to 1",)),
    Row("block with more attempts than the client allows",
        lambda h, c: OpenwopCredentials(base_url=h.base_url, retry_attempts=101),
        ValidationError, ("retry_attempts",), ("less than or equal to 100",)),
    Row("block with verification off and a CA bundle (the bundle was ignored)",
        lambda h, c: OpenwopCredentials(base_url=h.base_url, verify_tls=False, ca_bundle_path=__file__),
        ValidationError, ("verify_tls is off but ca_bundle_path is set", "contradict each other"),
        ("keep one", "turn verify_tls on", "clear ca_bundle_path")),
    Row("block key with a 'Bearer ' prefix", block(api_key="Bearer abc"), ConfigurationError,
        ("starts with 'Bearer '",), ("pass the key alone",)),
    Row("block key that is empty", block(api_key=""), ConfigurationError,
        ("api_key is empty",), ("set the host's API key",)),
    Row("block headers setting Authorization", block(headers={"Authorization": "Bearer x"}), ValidationError,
        ("Authorization header",), ("api_key=",)),
    Row("block header value with a line break", block(headers={"X-A": "line\nbreak"}), ValidationError,
        ("the value of 'X-A' is not a valid HTTP header value",), ("a single line of printable ASCII",)),
    Row("block header name with a space", block(headers={"X A": "v"}), ValidationError,
        ("'X A' is not a valid HTTP header name",), ("letters, digits and '-'",)),
    Row("block base URL with a password in it",
        lambda h, c: OpenwopCredentials(base_url=h.base_url.replace("://", f"://user:{SECRET_KEY}@")),
        ValidationError, ("must not contain a user name or password",), ("set the key with api_key",)),
    Row("block CA bundle that does not exist", block(ca_bundle_path="/nonexistent/ca.pem"), ConfigurationError,
        ("ca_bundle_path", "no CA bundle at '/nonexistent/ca.pem'"), ("pass an existing PEM file",)),
    # -- the flow ------------------------------------------------------------------------------------
    Row("unknown workflow", run("no-such-workflow"), NotFoundError,
        ("workflow_not_found",), ("Check the workflow id",)),
    Row("missing API key", lambda h, c: run_openwop_workflow(OpenwopCredentials(base_url=h.base_url), "conformance-noop"),
        AuthenticationError, ("HTTP 401", "Missing credentials"), ("Check the API key",)),
    Row("wrong API key",
        lambda h, c: run_openwop_workflow(OpenwopCredentials(base_url=h.base_url, api_key=SecretStr("wrong-key-3")), "conformance-noop"),
        AuthenticationError, ("HTTP 401",), ("Check the API key",)),
    Row("unreachable host",
        lambda h, c: run_openwop_workflow(
            OpenwopCredentials(base_url=f"http://127.0.0.1:{free_port()}", retry_attempts=1), "conformance-noop"),
        TransportError, ("Could not connect to http://127.0.0.1:",), ("Check that the base URL is right",)),
    Row("inputs JSON cannot carry", run("conformance-identity", {"when": datetime.date(2026, 1, 1)}),
        InvalidArgumentError, ("inputs['when'] is a date",), ("convert it to a string",), nothing_sent=True),
    Row("inputs of the wrong type", run("conformance-delay", {"delayMs": "soon"}), InvalidRequestError,
        ("Input 'delayMs'",), ("Fix the request",)),
    Row("unknown on_interrupt", lambda h, c: run_openwop_workflow.fn(c, "conformance-noop", on_interrupt="later"),  # type: ignore[arg-type]
        InvalidArgumentError, ("on_interrupt must be",), ("'pause', 'fail', 'return' or a callable",), nothing_sent=True),
    Row("zero timeout", lambda h, c: run_openwop_workflow.fn(c, "conformance-noop", timeout=0),
        InvalidArgumentError, ("timeout", "got 0"), ("positive number of seconds", "or None"), nothing_sent=True),
    Row("negative interrupt timeout", lambda h, c: run_openwop_workflow.fn(c, "conformance-noop", interrupt_timeout=-1),
        InvalidArgumentError, ("interrupt_timeout", "got -1"), ("positive number of seconds",), nothing_sent=True),
    Row("negative check interval", lambda h, c: run_openwop_workflow.fn(c, "conformance-noop", check_interval=-1),
        InvalidArgumentError, ("check_interval", "got -1"), ("positive number of seconds",), nothing_sent=True),
    # -- the job block and the tasks ----------------------------------------------------------------------
    Row("job block for an unknown workflow", lambda h, c: OpenwopWorkflow(credentials=c, workflow_id="nope").trigger(),
        NotFoundError, ("workflow_not_found",), ("Check the workflow id",)),
    Row("job block with oversized inputs (over 1 MiB; a flow's parameters are capped by Prefect first)",
        lambda h, c: OpenwopWorkflow(credentials=c, workflow_id="conformance-identity").trigger(
            {"payload": {"b": "x" * 1_100_000}}),
        ApiError, ("HTTP 413 payload_too_large",), ("maxRequestBodyBytes",)),
    Row("interrupt answered twice", resolve_twice, InterruptNotFoundError,
        ("interrupt_not_found",), ("resolved already",)),
    Row("branch fork without a sequence", fork_in_flow(mode="branch"), InvalidArgumentError,
        ("needs from_seq",), ("the sequence to branch from",)),
    Row("fork sequence past the end", fork_in_flow(mode="branch", from_seq=999), InvalidRequestError,
        ("from_seq_out_of_range",), ("Fix the request",)),
]
# fmt: on


def test_the_table_has_a_row_per_mistake() -> None:
    assert len(ROWS) >= 20
    assert len({row.name for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_bad_input_fails_naming_the_cause_and_the_fix(host: DevHost, credentials: OpenwopCredentials, row: Row) -> None:
    with pytest.raises(row.error) as caught:
        row.act(host, credentials)

    text = str(caught.value)
    for words in row.cause:
        assert words in text, f"cause {words!r} not named in: {text}"
    for words in row.fix:
        assert words in text, f"fix {words!r} not named in: {text}"
    assert SECRET_KEY not in text
    assert "wrong-key-3" not in text
    if row.nothing_sent:
        assert host.runs_created() == 0
