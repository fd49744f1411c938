"""Pure pieces of the devhost: tokens, route patterns, the graph walk, SSE parameter parsing."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwop_devhost.engine.tokens import TokenExpired, TokenInvalid, TokenSigner
from openwop_devhost.engine.walk import GraphWalk
from openwop_devhost.errors import ApiError
from openwop_devhost.faults import FailRule
from openwop_devhost.http.routing import resolve
from openwop_devhost.http.sse import parse_buffer_ms, parse_stream_modes
from openwop_devhost.workflows.catalogue import builtin_workflows
from openwop_devhost.workflows.loading import parse_workflow

ids = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(run_id=ids, node_id=ids, interrupt_id=ids)
def test_token_round_trip(run_id: str, node_id: str, interrupt_id: str) -> None:
    signer = TokenSigner(b"k" * 32, ttl_seconds=60)
    token, _ = signer.issue(run_id, node_id, interrupt_id)
    claims = signer.verify(token)
    assert (claims.run_id, claims.node_id, claims.interrupt_id) == (run_id, node_id, interrupt_id)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=10_000), replacement=st.sampled_from("AQgw-_x."))
def test_any_tampering_is_rejected(position: int, replacement: str) -> None:
    signer = TokenSigner(b"s" * 32, ttl_seconds=60)
    token, _ = signer.issue("run_1", "gate", "int_1")
    index = position % len(token)
    if token[index] == replacement:
        return
    tampered = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(TokenInvalid):
        signer.verify(tampered)


def test_token_expiry_and_foreign_secret() -> None:
    signer = TokenSigner(b"a" * 32, ttl_seconds=0.05)
    token, _ = signer.issue("r", "n", "i")
    with pytest.raises(TokenInvalid):
        TokenSigner(b"b" * 32).verify(token)
    time.sleep(0.06)
    with pytest.raises(TokenExpired):
        signer.verify(token)
    with pytest.raises(ValueError, match="token_ttl_seconds"):
        TokenSigner(ttl_seconds=0)


@pytest.mark.parametrize(
    ("route", "request_line", "expected"),
    [
        ("*", "GET /anything", True),
        ("POST /v1/runs", "POST /v1/runs", True),
        ("POST /v1/runs", "POST /v1/runs/x/cancel", False),
        ("POST /v1/runs", "GET /v1/runs", False),
        ("GET /v1/runs/{runId}", "GET /v1/runs/run_1", True),
        ("GET /v1/runs/{runId}", "GET /v1/runs/run_1/events", False),
        ("/v1/runs/{runId}/events", "GET /v1/runs/r/events", True),
        ("POST /v1/runs*", "POST /v1/runs:bulk-cancel", True),
        ("* /v1/webhooks", "DELETE /v1/webhooks", True),
        ("post /v1/runs", "POST /v1/runs", True),
    ],
)
def test_fail_rule_route_patterns(route: str, request_line: str, expected: bool) -> None:
    method, path = request_line.split(" ", 1)
    assert FailRule(route=route).matches(method, path) is expected


def test_routing_decodes_single_segments_and_colon_verbs() -> None:
    route, params = resolve("POST", "/v1/runs/run%2Fa%3Ab:fork")
    assert route.name == "fork_run" and params == {"runId": "run/a:b"}
    route, params = resolve("GET", "/v1/runs/a%20b/events?streamMode=debug")
    assert route.name == "stream_events" and params == {"runId": "a b"}
    route, _ = resolve("POST", "/v1/runs:bulk-cancel")
    assert route.name == "bulk_cancel"
    with pytest.raises(ApiError) as caught:
        resolve("GET", "/v1/runs/a/b/c")
    assert caught.value.status == 404
    with pytest.raises(ApiError) as caught:
        resolve("PUT", "/v1/runs/abc")
    assert caught.value.status == 405


def test_stream_parameter_parsing() -> None:
    assert parse_stream_modes(None) == ("updates",)
    assert parse_stream_modes("updates,messages,updates") == ("updates", "messages")
    assert parse_buffer_ms("7000") == 5000
    with pytest.raises(ApiError):
        parse_buffer_ms("-1")


def test_graph_walk_loop_and_join() -> None:
    loopback = builtin_workflows()["conformance-approval-reject-loopback"]
    walk = GraphWalk(loopback)
    assert walk.next_ready() == "start"
    assert walk.record("start", "success")
    assert walk.next_ready() == "gate"
    assert walk.record("gate", "failed")  # reject handled by the any_failed edge
    assert walk.next_ready() == "revise"
    walk.record("revise", "success")
    assert walk.next_ready() == "gate"
    assert not walk.record("gate", "success")  # nothing follows an accepted gate
    assert walk.next_ready() is None
    join = parse_workflow(
        {
            "id": "join",
            "nodes": [{"id": n, "typeId": "core.noop"} for n in ("a", "b", "c")],
            "edges": [{"source": "a", "target": "c"}, {"source": "b", "target": "c"}],
        }
    )
    walk = GraphWalk(join)
    assert [walk.next_ready(), walk.next_ready()] == ["a", "b"]
    walk.record("a", "success")
    assert walk.next_ready() is None  # c waits for both all_success edges
    walk.record("b", "success")
    assert walk.next_ready() == "c"
    walk = GraphWalk(join)
    walk.next_ready()
    walk.next_ready()
    assert not walk.record("a", "failed")  # unhandled failure
    walk.record("b", "success")
    assert walk.next_ready() is None and walk.never_executed() == ["c"]
