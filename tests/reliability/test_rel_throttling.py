"""Throttling and outages: a 429 then a 503 burst (each with ``Retry-After``) on every route the client
calls, a ``Retry-After`` longer than the policy accepts, a create whose answer is lost after the host made
the run, and a host that refuses connections for seconds and comes back.

Proved with the host's own request log (arrival times): the client waits at least ``Retry-After`` before
the next attempt on that route (never less), each logical operation has exactly one effect (one run per
create, one fork, one registration...), and waits resume where they were.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from reliability_support import API_KEY, Gap, as_triples, describe_mismatch, record, retry_gaps, wait_until

from openwop_core import AsyncOpenwopClient, OpenwopClient, RateLimitedError, RunEvent, resume
from openwop_devhost import DevHost, FailRule

RETRY_AFTER = 1  # seconds, on every injected answer


@dataclass
class Fixtures:
    """Runs, interrupts, an artifact and a webhook prepared (without faults) for the per-route calls."""

    done: str
    waiting: str
    token_inspect: str
    token_resolve: str
    to_pause: str
    to_resume: str
    to_cancel: str
    bulk: tuple[str, str]
    artifact: tuple[str, str]
    webhook: str


def prepare(host: DevHost, client: OpenwopClient) -> Fixtures:
    def create(workflow_id: str, inputs: dict[str, Any] | None = None) -> str:
        return client.runs_create(workflow_id, inputs).run_id

    done = create("conformance-multi-node")
    artifact_run = create("devhost-artifact", {"data": {"k": 1}})
    waiting = [create("conformance-approval") for _ in range(3)]
    long_runs = [create("conformance-cancellable", {"delayMs": 60_000}) for _ in range(5)]
    for run_id in (done, artifact_run):
        host.wait_for_status(run_id)
    for run_id in waiting:
        host.wait_for_status(run_id, {"waiting-approval"})
    for run_id in long_runs:
        host.wait_for_status(run_id, {"running"})
    client.runs_pause(long_runs[1], drain_policy="immediate")
    [created] = [e for e in host.events(artifact_run) if e["type"] == "artifact.created"]
    webhook = client.webhooks_register("http://127.0.0.1:9/never", ["run.completed"], tags=["rel-no-such-tag"])
    client.discovery_capabilities()  # cached for runs_fork, so its discovery call does not share a route
    return Fixtures(
        done=done,
        waiting=waiting[0],
        token_inspect=host.open_interrupts(waiting[1])[0]["token"],
        token_resolve=host.open_interrupts(waiting[2])[0]["token"],
        to_pause=long_runs[0],
        to_resume=long_runs[1],
        to_cancel=long_runs[2],
        bulk=(long_runs[3], long_runs[4]),
        artifact=(artifact_run, created["payload"]["artifactId"]),
        webhook=webhook.webhook_id,
    )


def routes(f: Fixtures) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """Every route the client calls: ``name -> (METHOD /concrete/path, call(client))``. The call returns
    a value or an awaitable (async client); an event stream is read to its end."""

    def events(c: Any) -> Any:
        stream = c.runs_events(f.done)
        if isinstance(c, AsyncOpenwopClient):

            async def drain() -> list[RunEvent]:
                return [e async for e in stream]

            return drain()
        return list(stream)

    return {
        "discovery": ("GET /.well-known/openwop", lambda c: c.discovery_capabilities()),
        "openapi": ("GET /v1/openapi.json", lambda c: c.discovery_openapi()),
        "workflow": ("GET /v1/workflows/conformance-noop", lambda c: c.workflows_get("conformance-noop")),
        "create": ("POST /v1/runs", lambda c: c.runs_create("conformance-noop", tags=["rel-throttled"])),
        "get": (f"GET /v1/runs/{f.done}", lambda c: c.runs_get(f.done)),
        "cancel": (f"POST /v1/runs/{f.to_cancel}/cancel", lambda c: c.runs_cancel(f.to_cancel)),
        "bulk-cancel": ("POST /v1/runs:bulk-cancel", lambda c: c.runs_bulk_cancel(list(f.bulk))),
        "pause": (f"POST /v1/runs/{f.to_pause}:pause", lambda c: c.runs_pause(f.to_pause)),
        "resume": (f"POST /v1/runs/{f.to_resume}:resume", lambda c: c.runs_resume(f.to_resume)),
        "fork": (f"POST /v1/runs/{f.done}:fork", lambda c: c.runs_fork(f.done, mode="replay")),
        "events": (f"GET /v1/runs/{f.done}/events", events),
        "poll": (f"GET /v1/runs/{f.done}/events/poll", lambda c: c.runs_poll_events(f.done, timeout_seconds=1)),
        "resolve": (
            f"POST /v1/runs/{f.waiting}/interrupts/gate",
            lambda c: c.interrupts_resolve_by_run(f.waiting, "gate", resume.approval("accept")),
        ),
        "inspect-token": (
            f"GET /v1/interrupts/{f.token_inspect}",
            lambda c: c.interrupts_inspect_by_token(f.token_inspect),
        ),
        "resolve-token": (
            f"POST /v1/interrupts/{f.token_resolve}",
            lambda c: c.interrupts_resolve_by_token(f.token_resolve, resume.approval("accept")),
        ),
        "artifact": (
            f"GET /v1/runs/{f.artifact[0]}/artifacts/{f.artifact[1]}",
            lambda c: c.artifacts_get(*f.artifact),
        ),
        "webhook-register": (
            "POST /v1/webhooks",
            lambda c: c.webhooks_register("http://127.0.0.1:9/other", ["run.failed"], tags=["rel-no-such-tag"]),
        ),
        "webhook-unregister": (f"DELETE /v1/webhooks/{f.webhook}", lambda c: c.webhooks_unregister(f.webhook)),
    }


def burst_on(route: str) -> list[FailRule]:
    """A 429 then a 503, both with Retry-After, before the route answers for real."""
    return [
        FailRule(route=route, status=429, count=1, retry_after=RETRY_AFTER),
        FailRule(route=route, status=503, count=1, retry_after=RETRY_AFTER),
    ]


def logged_path(route: str) -> tuple[str, str]:
    """How the host's request log shows a route (interrupt tokens are redacted there)."""
    method, path = route.split(" ", 1)
    if path.startswith("/v1/interrupts/"):
        path = "/v1/interrupts/<redacted>"
    return method, path


def check_effects(host: DevHost, f: Fixtures, table: dict[str, Any], results: dict[str, Any], runs_before: int) -> None:
    """Every route answered, waited at least Retry-After twice, and did its thing exactly once."""
    log = host.requests
    gaps = retry_gaps(log)
    for name, (route, _) in table.items():
        method, path = logged_path(route)
        mine = [e for e in log if e["method"] == method and e["path"] == path]
        statuses = [e["status"] for e in mine]
        assert len(statuses) == 3 and statuses[:2] == [429, 503] and 200 <= statuses[2] < 300, (name, statuses)
        route_gaps = [g for g in gaps if (g.method, g.path) == (method, path)]
        assert [g.status for g in route_gaps] == [429, 503], name
        assert all(g.seconds >= RETRY_AFTER for g in route_gaps), (name, route_gaps)
    assert host.runs_created() == runs_before + 2  # one create, one fork: never a duplicate
    assert host.runs_created("conformance-noop") == 1
    assert results["fork"].source_run_id == f.done
    assert results["cancel"].status in ("cancelling", "cancelled")
    assert all(item.ok for item in results["bulk-cancel"].results)
    assert results["resolve"].node_id == "gate"
    assert results["resolve-token"].node_id == "gate"
    assert [e.type for e in results["events"]][-1] == "run.completed"
    assert results["webhook-register"].webhook_id


def expect_all_gaps_honoured(gaps: list[Gap]) -> None:
    assert gaps
    assert min(g.seconds for g in gaps) >= RETRY_AFTER, min(gaps, key=lambda g: g.seconds)


def test_sync_client_honours_retry_after_on_every_route(fresh_host: DevHost) -> None:
    with OpenwopClient(fresh_host.base_url, api_key=API_KEY) as client:  # the default retry policy
        fixtures = prepare(fresh_host, client)
        table = routes(fixtures)
        runs_before = fresh_host.runs_created()
        fresh_host.clear_requests()
        fresh_host.set_faults(fail_requests=[rule for route, _ in table.values() for rule in burst_on(route)])
        with ThreadPoolExecutor(max_workers=len(table)) as pool:
            futures = {name: pool.submit(call, client) for name, (_, call) in table.items()}
            results = {name: future.result(timeout=60) for name, future in futures.items()}
    check_effects(fresh_host, fixtures, table, results, runs_before)
    expect_all_gaps_honoured(retry_gaps(fresh_host.requests))


def test_async_client_honours_retry_after_on_every_route(fresh_host: DevHost) -> None:
    with OpenwopClient(fresh_host.base_url, api_key=API_KEY) as setup:
        fixtures = prepare(fresh_host, setup)
    table = routes(fixtures)

    async def scenario() -> dict[str, Any]:
        async with AsyncOpenwopClient(fresh_host.base_url, api_key=API_KEY) as client:
            await client.discovery_capabilities()
            runs_before.append(fresh_host.runs_created())
            fresh_host.clear_requests()
            fresh_host.set_faults(fail_requests=[rule for route, _ in table.values() for rule in burst_on(route)])
            names = list(table)
            answers = await asyncio.gather(*(table[name][1](client) for name in names))
            return dict(zip(names, answers, strict=True))

    runs_before: list[int] = []
    results = asyncio.run(scenario())
    check_effects(fresh_host, fixtures, table, results, runs_before[0])
    expect_all_gaps_honoured(retry_gaps(fresh_host.requests))


def test_a_retry_after_longer_than_the_policy_allows_raises_instead_of_waiting_less(fresh_host: DevHost) -> None:
    fresh_host.set_faults(fail_requests=[FailRule(route="POST /v1/runs", status=429, count=1, retry_after=30)])
    with OpenwopClient(fresh_host.base_url, api_key=API_KEY, retry={"max_retry_after": 5}) as client:
        with pytest.raises(RateLimitedError) as caught:
            client.runs_create("conformance-noop")
    assert caught.value.retry_after == 30
    assert "HTTP 429" in str(caught.value)
    assert [e["status"] for e in fresh_host.requests if e["path"] == "/v1/runs"] == [429]  # no early retry
    assert fresh_host.runs_created() == 0


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_create_whose_answer_is_lost_makes_exactly_one_run(fresh_host: DevHost, kind: str) -> None:
    """The host makes the run, then its answer is late past the client's timeout (as if lost); the retry
    carries the same Idempotency-Key: it meets ``409 idempotency_in_flight`` (Retry-After honoured) and then
    the replay of the first answer. One run."""
    fresh_host.set_faults(latency_ms=1200)

    def first_post_seen() -> None:
        wait_until(lambda: any(e["path"] == "/v1/runs" for e in fresh_host.requests))
        fresh_host.set_faults(latency_ms=0)  # only the first answer is late

    options: dict[str, Any] = {"api_key": API_KEY, "timeout": 0.4, "retry": {"initial_backoff": 0.05}}
    helper = threading.Thread(target=first_post_seen, daemon=True)
    helper.start()
    if kind == "sync":
        with OpenwopClient(fresh_host.base_url, **options) as client:
            created = client.runs_create("conformance-noop")
    else:

        async def scenario() -> Any:
            async with AsyncOpenwopClient(fresh_host.base_url, **options) as client:
                return await client.runs_create("conformance-noop")

        created = asyncio.run(scenario())
    helper.join(timeout=10)

    posts = [e for e in fresh_host.requests if e["path"] == "/v1/runs"]
    assert fresh_host.runs_created() == 1
    assert created.run_id == fresh_host.run_ids()[0]
    assert created.replayed
    assert len({e["headers"]["idempotency-key"] for e in posts}) == 1  # one logical create, one key
    statuses = [e["status"] for e in posts]
    assert 409 in statuses  # idempotency_in_flight while the first was still being answered
    for gap in retry_gaps_after_conflicts(posts):
        assert gap >= 1.0  # its Retry-After: 1


def retry_gaps_after_conflicts(posts: list[dict[str, Any]]) -> list[float]:
    """Seconds between each ``409 idempotency_in_flight`` (Retry-After: 1) and the next attempt."""
    return [later["time"] - entry["time"] for entry, later in itertools.pairwise(posts) if entry["status"] == 409]


OUTAGE_SECONDS = 3.0
OUTAGE_RETRY: dict[str, Any] = {
    "max_attempts": 30,
    "initial_backoff": 0.2,
    "max_backoff": 1.0,
    "stream_max_reconnects": 30,
}


def test_waits_and_creates_ride_out_a_host_that_refuses_connections(fresh_host: DevHost) -> None:
    """Mid-wait the host goes away for three seconds (connections refused, open streams cut), then comes
    back on the same port with its state. A sync and an async wait resume where they were (every event once,
    in order, the real end); a sync and an async create sent during the outage each make exactly one run."""
    host = fresh_host
    with OpenwopClient(host.base_url, api_key=API_KEY) as setup:
        run_id = setup.runs_create("rel-chain", {"count": 30, "delayMs": 4500}).run_id
    host.wait_for_status(run_id, {"running"})
    outcomes: dict[str, Any] = {}
    seen: dict[str, list[RunEvent]] = {"sync": [], "async": []}

    def sync_wait() -> None:
        with OpenwopClient(host.base_url, api_key=API_KEY, retry=OUTAGE_RETRY) as client:
            outcomes["sync wait"] = client.wait_for_run(run_id, timeout=60, on_event=seen["sync"].append)

    def async_wait() -> None:
        async def scenario() -> Any:
            async with AsyncOpenwopClient(host.base_url, api_key=API_KEY, retry=OUTAGE_RETRY) as client:
                return await client.wait_for_run(run_id, timeout=60, on_event=seen["async"].append)

        outcomes["async wait"] = asyncio.run(scenario())

    def sync_create() -> None:
        with OpenwopClient(host.base_url, api_key=API_KEY, retry=OUTAGE_RETRY) as client:
            outcomes["sync create"] = client.runs_create("conformance-noop", tags=["sync-during-outage"])

    def async_create() -> None:
        async def scenario() -> Any:
            async with AsyncOpenwopClient(host.base_url, api_key=API_KEY, retry=OUTAGE_RETRY) as client:
                return await client.runs_create("conformance-noop", tags=["async-during-outage"])

        outcomes["async create"] = asyncio.run(scenario())

    waits = [threading.Thread(target=fn, daemon=True) for fn in (sync_wait, async_wait)]
    for thread in waits:
        thread.start()
    wait_until(lambda: len(seen["sync"]) >= 2 and len(seen["async"]) >= 2)  # both are following the stream
    host.stop()
    creates = [threading.Thread(target=fn, daemon=True) for fn in (sync_create, async_create)]
    for thread in creates:
        thread.start()
    time.sleep(OUTAGE_SECONDS)
    assert not host.running
    host.start()
    for thread in waits + creates:
        thread.join(timeout=60)

    expected = [(e["sequence"], e["type"], e["payload"]) for e in host.events(run_id) if e["type"] != "log.appended"]
    expected = [t for t in expected if t[1] != "node.started"]  # the updates stream mode
    for kind in ("sync", "async"):
        result = outcomes[f"{kind} wait"]
        assert result.status == "completed", kind
        triples = as_triples(seen[kind])
        assert triples == expected, describe_mismatch(triples, expected)
        record(f"outage/{kind} wait", events=len(triples))
    assert outcomes["sync create"].run_id != outcomes["async create"].run_id
    assert host.runs_created("conformance-noop") == 2  # one per logical create
    assert host.runs_created() == 3
