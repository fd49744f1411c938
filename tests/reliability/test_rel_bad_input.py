"""Bad input to the client, table-driven: each row is one mistake (a setting, an argument, a host answer),
the exception it must raise, words that name the cause and words that name the fix. No row may show the
API key or an interrupt token in its message. The Airflow and Prefect tables are in ``airflow/`` and
``prefect/``; ``docs/reliability.md`` lists all of them.

A second, shorter table holds the inputs the client must *tolerate* (malformed SSE frames, unknown event
types, legacy fields, unknown statuses): no exception, the stream goes on, the wait ends.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import httpx
import pytest
from reliability_support import API_KEY, WORKFLOWS_DIR, free_port, token_secret_part

from openwop_core import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    GoneError,
    InterruptNotFoundError,
    InvalidArgumentError,
    InvalidRequestError,
    NotFoundError,
    OpenwopClient,
    ResponseFormatError,
    RunFailedError,
    ServerError,
    TransportError,
    resume,
)
from openwop_devhost import DevHost, FailRule

ONE_TRY: dict[str, Any] = {"max_attempts": 1, "stream_max_reconnects": 0}


class Scene:
    """The host and what the rows need from it, made on first use (runs, interrupts, tokens)."""

    def __init__(self, host: DevHost, short_lived: DevHost) -> None:
        self.host = host
        self.short_lived = short_lived
        self.client = OpenwopClient(host.base_url, api_key=API_KEY, retry=ONE_TRY)
        self.tokens: list[str] = []

    def waiting_run(self, host: DevHost | None = None) -> str:
        host = host or self.host
        with OpenwopClient(host.base_url, api_key=API_KEY) as client:
            run_id = client.runs_create("conformance-approval").run_id
        host.wait_for_status(run_id, {"waiting-approval"})
        return run_id

    def token(self, host: DevHost | None = None) -> str:
        host = host or self.host
        token = str(host.open_interrupts(self.waiting_run(host))[0]["token"])
        self.tokens.append(token)
        return token

    @cached_property
    def finished_run(self) -> str:
        run_id = self.client.runs_create("conformance-multi-node").run_id
        self.host.wait_for_status(run_id)
        return run_id

    def resolve_twice(self) -> Any:
        run_id = self.waiting_run()
        self.client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept"))
        return self.client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept"))

    def resolve_token_twice(self) -> Any:
        token = self.token()
        self.client.interrupts_resolve_by_token(token, resume.approval("accept"))
        return self.client.interrupts_resolve_by_token(token, resume.approval("accept"))

    def resolve_expired(self) -> Any:
        token = self.token(self.short_lived)
        time.sleep(1.2)  # the short-lived host's tokens live one second
        with OpenwopClient(self.short_lived.base_url, retry=ONE_TRY) as client:
            return client.interrupts_resolve_by_token(token, resume.approval("accept"))

    def forged_token(self) -> Any:
        token = self.token()
        payload, signature = token.rsplit(".", 1)
        forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
        self.tokens.append(forged)
        return self.client.interrupts_resolve_by_token(forged, resume.approval("accept"))

    def injected(self, rule: FailRule) -> Any:
        self.host.set_faults(fail_requests=[rule])
        try:
            return self.client.runs_get(self.finished_run)
        finally:
            self.host.set_faults(fail_requests=[])


def answering(status: int, body: bytes, content_type: str) -> OpenwopClient:
    """A client whose "host" answers every request with this status, body and content type."""

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    return OpenwopClient("https://openwop.example.com", retry=ONE_TRY, transport=httpx.MockTransport(respond))


@dataclass(frozen=True)
class Row:
    """One bad input: what to do, the exception, words naming the cause, words naming the fix."""

    name: str
    act: Callable[[Scene], Any]
    error: type[BaseException]
    cause: tuple[str, ...]
    fix: tuple[str, ...]


def client(base_url: str, **options: Any) -> Callable[[Scene], Any]:
    return lambda scene: OpenwopClient(base_url, **options)


# fmt: off
ROWS = [
    # -- settings --------------------------------------------------------------------------------
    Row("base URL without a scheme", client("openwop.example.com"), ConfigurationError,
        ("has no scheme",), ("https://openwop.example.com",)),
    Row("base URL with a wrong scheme", client("ftp://openwop.example.com"), ConfigurationError,
        ("uses 'ftp'",), ("http or https",)),
    Row("malformed base URL (no host)", client("http://"), ConfigurationError,
        ("has no host name",), ("write it as 'https://openwop.example.com'",)),
    Row("malformed base URL (bad port)", client("http://openwop.example.com:99999"), ConfigurationError,
        ("invalid port",), ("from 1 to 65535",)),
    Row("base URL with a query", client("https://openwop.example.com/?key=1"), ConfigurationError,
        ("must not carry a query",), ("only the origin",)),
    Row("empty API key", client("https://openwop.example.com", api_key=""), ConfigurationError,
        ("api_key is empty",), ("set the host's API key, or pass None",)),
    Row("API key with a 'Bearer ' prefix", client("https://openwop.example.com", api_key="Bearer abc"),
        ConfigurationError, ("starts with 'Bearer '",), ("pass the key alone",)),
    Row("API key with whitespace inside", client("https://openwop.example.com", api_key="abc def"),
        ConfigurationError, ("whitespace",), ("paste the key alone",)),
    Row("Authorization in extra headers", client("https://openwop.example.com", headers={"Authorization": "x"}),
        ConfigurationError, ("Authorization header",), ("api_key=",)),
    Row("negative timeout", client("https://openwop.example.com", timeout=-1), ConfigurationError,
        ("timeout", "-1"), ("positive number of seconds",)),
    Row("timeout that is not a number (NaN)", client("https://openwop.example.com", timeout=float("nan")),
        ConfigurationError, ("timeout", "nan"), ("positive number of seconds",)),
    Row("CA bundle that does not exist", client("https://openwop.example.com", verify="/nonexistent/ca.pem"),
        ConfigurationError, ("verify", "no CA bundle at '/nonexistent/ca.pem'"), ("pass an existing PEM file",)),
    Row("retry policy out of range", client("https://openwop.example.com", retry={"max_attempts": 0}),
        ConfigurationError, ("not a valid retry policy", "max_attempts"), ("greater than or equal to 1",)),
    Row("retry attempts above the bound", client("https://openwop.example.com", retry={"max_attempts": 101}),
        ConfigurationError, ("not a valid retry policy", "max_attempts"), ("less than or equal to 100",)),
    # -- credentials -----------------------------------------------------------------------------
    Row("missing API key", lambda s: OpenwopClient(s.host.base_url, retry=ONE_TRY).runs_create("conformance-noop"),
        AuthenticationError, ("HTTP 401", "Missing credentials"), ("Check the API key",)),
    Row("wrong API key",
        lambda s: OpenwopClient(s.host.base_url, api_key="wrong-key-1", retry=ONE_TRY).runs_create("conformance-noop"),
        AuthenticationError, ("HTTP 401",), ("Check the API key",)),
    Row("unreachable host",
        lambda s: OpenwopClient(f"http://127.0.0.1:{free_port()}", retry=ONE_TRY).runs_get("run_1"),
        TransportError, ("Could not connect to http://127.0.0.1:",), ("Check that the base URL is right",)),
    # -- arguments -------------------------------------------------------------------------------
    Row("unknown workflow", lambda s: s.client.runs_create("no-such-workflow"), NotFoundError,
        ("workflow_not_found", "no-such-workflow"), ("Check the workflow id",)),
    Row("unknown run", lambda s: s.client.runs_get("run_does_not_exist"), NotFoundError,
        ("run_not_found",), ("Check the run id",)),
    Row("inputs JSON cannot carry (a datetime)",
        lambda s: s.client.runs_create("conformance-identity", {"when": datetime.datetime(2026, 1, 1)}),
        InvalidArgumentError, ("inputs['when'] is a datetime",), ("convert it to a string",)),
    Row("inputs JSON cannot carry (NaN)", lambda s: s.client.runs_create("conformance-noop", {"x": float("nan")}),
        InvalidArgumentError, ("inputs['x'] is nan",), ("use a finite number",)),
    Row("inputs that are not an object", lambda s: s.client.runs_create("conformance-noop", [1, 2]),  # type: ignore[arg-type]
        InvalidArgumentError, ("inputs must be a JSON object",), ("a dict of name -> value",)),
    Row("inputs of the wrong type", lambda s: s.client.runs_create("conformance-delay", {"delayMs": "soon"}),
        InvalidRequestError, ("Input 'delayMs'", "must be of type integer"), ("Fix the request",)),
    Row("required input missing", lambda s: s.client.runs_create("conformance-delay", {}),
        InvalidRequestError, ("Input 'delayMs' is required",), ("pass it in 'inputs'",)),
    Row("oversized inputs (over 1 MiB)",
        lambda s: s.client.runs_create("conformance-identity", {"payload": {"blob": "x" * 1_100_000}}),
        ApiError, ("HTTP 413 payload_too_large",), ("keep the request body", "maxRequestBodyBytes")),
    Row("unknown stream mode", lambda s: list(s.client.runs_events(s.finished_run, stream_mode="everything")),
        InvalidArgumentError, ("stream_mode ['everything'] is not one of",), ("updates",)),
    Row("dedup without a scope", lambda s: s.client.runs_create("conformance-noop", dedup=True),
        InvalidArgumentError, ("dedup=True needs a scope_id",), ("scope_id",)),
    Row("webhook to plain http on the internet",
        lambda s: s.client.webhooks_register("http://hooks.example.com/openwop", ["run.completed"]),
        InvalidRequestError, ("webhook_url_rejected",), ("Fix the request",)),
    # -- fork --------------------------------------------------------------------------------------
    Row("branch fork without a sequence", lambda s: s.client.runs_fork(s.finished_run, mode="branch"),
        InvalidArgumentError, ("needs from_seq",), ("the sequence to branch from",)),
    Row("negative fork sequence", lambda s: s.client.runs_fork(s.finished_run, mode="branch", from_seq=-1),
        InvalidArgumentError, ("from_seq must be an integer >= 0",), ("an event sequence",)),
    Row("fork sequence past the end", lambda s: s.client.runs_fork(s.finished_run, mode="branch", from_seq=999),
        InvalidRequestError, ("from_seq_out_of_range",), ("Fix the request",)),
    Row("replay fork with an overlay",
        lambda s: s.client.runs_fork(s.finished_run, mode="replay", tags=["x"]),
        InvalidArgumentError, ("overlays are only allowed with mode='branch'",), ("mode='branch'",)),
    # -- interrupts ------------------------------------------------------------------------------
    Row("resume value the gate refuses",
        lambda s: s.client.interrupts_resolve_by_run(s.waiting_run(), "gate", {"action": "maybe"}),
        InvalidRequestError, ("Approval action 'maybe' is not allowed",), ("use one of ['accept', 'reject']",)),
    Row("interrupt resolved twice (by run)", Scene.resolve_twice, InterruptNotFoundError,
        ("interrupt_not_found",), ("resolved already",)),
    Row("interrupt resolved twice (by token)", Scene.resolve_token_twice, InterruptNotFoundError,
        ("already resolved",), ("resolved already",)),
    Row("interrupt resolved after its token expired", Scene.resolve_expired, GoneError,
        ("interrupt_expired",), ("resolve it by run and node with an API key",)),
    Row("bad token (forged signature)", Scene.forged_token, AuthenticationError,
        ("interrupt_token_invalid", "signature does not verify"), ("exactly as the host issued it",)),
    Row("bad token (not a token)",
        lambda s: s.client.interrupts_resolve_by_token("not-a-token", {"action": "accept"}),
        AuthenticationError, ("interrupt_token_invalid",), ("exactly as the host issued it",)),
    Row("empty token", lambda s: s.client.interrupts_inspect_by_token(""), InvalidArgumentError,
        ("token must be a non-empty string",), ("non-empty string",)),
    # -- what the host answers ---------------------------------------------------------------------
    Row("non-JSON error body (text)", lambda s: s.injected(FailRule(route="*", status=503, body="text")),
        ServerError, ("HTTP 503", "non-JSON body"), ("retried automatically", "Quote the trace id")),
    Row("HTML error body from a proxy", lambda s: s.injected(FailRule(route="*", status=502, body="html")),
        ServerError, ("HTTP 502", "non-JSON (text/html"), ("Quote the trace id",)),
    Row("truncated JSON in a 200", lambda s: answering(200, b'{"runId": "r1", "sta', "application/json").runs_get("r1"),
        ResponseFormatError, ("answered HTTP 200 with invalid JSON",), ("may point at something that is not",)),
    Row("HTML page in a 200", lambda s: answering(200, b"<html><body>Sign in</body></html>", "text/html").runs_get("r"),
        ResponseFormatError, ("answered HTTP 200 with an HTML page",), ("may point at something that is not",)),
    Row("JSON of the wrong shape in a 200", lambda s: answering(200, b"[1, 2]", "application/json").runs_get("r"),
        ResponseFormatError, ("not a valid RunSnapshot",), ("may point at something that is not",)),
    Row("an events URL that is not an event stream (nor a poll endpoint)",
        lambda s: list(answering(200, b"<html>portal</html>", "text/html").runs_events("r1")),
        ResponseFormatError, ("with an HTML page",), ("may point at something that is not",)),
    Row("unknown terminal status", lambda s: answering(
        200, b'{"runId": "r1", "workflowId": "w", "status": "timed-out"}', "application/json"
    ).wait_for_run("r1").raise_for_status(), RunFailedError, ("ended timed-out",), ("Check the run on the host",)),
]
# fmt: on


@pytest.fixture(scope="module")
def scene(rel_host: DevHost) -> Iterator[Scene]:
    with DevHost(api_key=API_KEY, workflows_dir=WORKFLOWS_DIR, token_ttl_seconds=1.0) as short_lived:
        made = Scene(rel_host, short_lived)
        yield made
        made.client.close()


def test_the_table_has_at_least_thirty_rows() -> None:
    assert len(ROWS) >= 30
    assert len({row.name for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_bad_input_fails_naming_the_cause_and_the_fix(scene: Scene, row: Row) -> None:
    with pytest.raises(row.error) as caught:
        row.act(scene)

    text = str(caught.value)
    for words in row.cause:
        assert words in text, f"cause {words!r} not named in: {text}"
    for words in row.fix:
        assert words in text, f"fix {words!r} not named in: {text}"
    assert API_KEY not in text
    assert "wrong-key-1" not in text
    for token in scene.tokens:
        assert token_secret_part(token) not in text, "an interrupt token leaked into the message"


# -- tolerated: the client goes on ---------------------------------------------------------------------


def sse_answer(frames: str, snapshot: dict[str, Any]) -> OpenwopClient:
    """A client on a "host" whose event stream carries ``frames`` and whose run snapshot is ``snapshot``."""

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, content=frames.encode(), headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=snapshot)

    return OpenwopClient("https://openwop.example.com", retry=ONE_TRY, transport=httpx.MockTransport(respond))


STREAM = (
    ": a comment\n\n"
    'id: 0\nevent: run.started\ndata: {"type": "run.started", "sequence": 0, "runId": "r1"}\n\n'
    "event: node.completed\ndata: {this is not json\n\n"  # a malformed frame
    'event: vendor.custom\ndata: {"type": "vendor.custom", "runId": "r1"}\n\n'  # unknown type, no sequence
    'id: 1\nevent: acme.progress\ndata: {"type": "acme.progress", "seq": 1, "data": {"pct": 50}}\n\n'  # legacy names
    "retry: 10\n\n"
    'id: 2\nevent: run.completed\ndata: {"type": "run.completed", "sequence": 2, "runId": "r1"}\n\n'
)


def test_malformed_frames_and_unknown_event_types_are_tolerated() -> None:
    with sse_answer(STREAM, {"runId": "r1", "workflowId": "w", "status": "completed"}) as tolerant:
        events = list(tolerant.runs_events("r1"))
    assert [(e.sequence, e.type) for e in events] == [(0, "run.started"), (1, "acme.progress"), (2, "run.completed")]
    assert events[1].payload == {"pct": 50}  # legacy seq/data read as sequence/payload


@pytest.mark.parametrize("status", ["timed-out", "archived", "expired"])
def test_an_unknown_status_ends_the_wait_instead_of_spinning(status: str) -> None:
    snapshot = {"runId": "r1", "workflowId": "w", "status": status}
    with sse_answer("", snapshot) as tolerant:
        result = tolerant.wait_for_run("r1", timeout=10)
    assert result.outcome == "terminal-unknown"
    assert result.status == status
