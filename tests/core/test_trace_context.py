"""Trace context (``openwop_core.tracing``): every request of one operation carries one trace id, continuing the
active OpenTelemetry span when there is one; the local host records what it received."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from core_helpers import call
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from openwop_core import AsyncOpenwopClient, NotFoundError, OpenwopClient, TraceContext, trace_operation
from openwop_devhost import DevHost, Faults

DELAY = {"delayMs": 300}


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """An SDK tracer provider (set once per process, as OpenTelemetry allows) exporting to memory."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


def traceparents(host: DevHost, run_id: str | None = None) -> list[str]:
    """The ``traceparent`` of every API request the host received (about ``run_id`` and the creates, if given)."""
    seen = []
    for entry in host.requests:
        if entry["path"].startswith("/_devhost") or entry["path"].startswith("/.well-known"):
            continue
        if run_id is None or run_id in entry["path"] or entry["path"] == "/v1/runs":
            seen.append(entry["headers"].get("traceparent", ""))
    return seen


def trace_ids(host: DevHost, run_id: str | None = None) -> set[str]:
    return {value.split("-")[1] for value in traceparents(host, run_id)}


async def test_one_operation_one_trace(client: Any, host: DevHost) -> None:
    with trace_operation() as operation:
        created = await call(client.runs_create("conformance-delay", DELAY))
        result = await call(client.wait_for_run(created.run_id, timeout=30))
        await call(client.runs_get(created.run_id))
    assert result.trace_id == operation.trace_id
    assert len(traceparents(host, created.run_id)) >= 3  # create, snapshot, stream, final read
    assert trace_ids(host, created.run_id) == {operation.trace_id}
    # the parent span of every request is the operation's (one virtual client span)
    assert {value.split("-")[2] for value in traceparents(host, created.run_id)} == {operation.span_id}


async def test_each_wait_is_an_operation_of_its_own(client: Any, host: DevHost) -> None:
    first = await call(client.runs_create("conformance-delay", DELAY))
    second = await call(client.runs_create("conformance-noop"))
    host.clear_requests()
    one = await call(client.wait_for_run(first.run_id, timeout=30))
    two = await call(client.wait_for_run(second.run_id, timeout=30))
    assert trace_ids(host, first.run_id) == {one.trace_id}
    assert trace_ids(host, second.run_id) == {two.trace_id}
    assert one.trace_id != two.trace_id


async def test_the_active_span_is_continued(client: Any, host: DevHost, exporter: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("openwop-tests")
    with tracer.start_as_current_span("airflow-task") as span:
        context = span.get_span_context()
        with trace_operation():
            created = await call(client.runs_create("conformance-delay", DELAY))
            result = await call(client.wait_for_run(created.run_id, timeout=30))
    trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
    assert result.trace_id == trace_id
    assert set(traceparents(host, created.run_id)) == {f"00-{trace_id}-{span_id}-01"}
    assert trace_id in {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}


async def test_a_span_alone_is_continued_without_an_operation(
    client: Any, host: DevHost, exporter: InMemorySpanExporter
) -> None:
    with trace.get_tracer("openwop-tests").start_as_current_span("user-span") as span:
        created = await call(client.runs_create("conformance-noop"))
        await call(client.runs_get(created.run_id))
    assert trace_ids(host, created.run_id) == {format(span.get_span_context().trace_id, "032x")}


async def test_a_known_trace_id_is_continued(client: Any, host: DevHost) -> None:
    """A trigger in another process continues the trace its operator started, from the trace id alone."""
    created = await call(client.runs_create("conformance-noop"))
    host.clear_requests()
    with trace_operation("0af7651916cd43dd8448eb211c80319c"):
        result = await call(client.wait_for_run(created.run_id, timeout=30))
    assert result.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert trace_ids(host, created.run_id) == {"0af7651916cd43dd8448eb211c80319c"}
    with pytest.raises(ValueError, match="32 lowercase hex"):
        with trace_operation("not-a-trace"):
            pass


async def test_requests_outside_operations_get_traces_of_their_own(client: Any, host: DevHost) -> None:
    created = await call(client.runs_create("conformance-noop"))
    await call(client.runs_get(created.run_id))
    assert len(trace_ids(host, created.run_id)) == 2


async def test_an_error_names_the_operations_trace(client: Any) -> None:
    with trace_operation() as operation:
        with pytest.raises(NotFoundError) as caught:
            await call(client.runs_get("run-that-does-not-exist"))
    assert caught.value.trace_id == operation.trace_id
    assert f"trace={operation.trace_id}" in str(caught.value)


def test_a_stream_keeps_its_trace_across_reconnects() -> None:
    with (
        DevHost(faults=Faults(drop_sse_after_events=1)) as host,
        OpenwopClient(host.base_url, api_key=host.api_key) as client,
    ):
        created = client.runs_create("conformance-multi-node")
        events = list(client.runs_events(created.run_id))
        streams = [e for e in host.requests if e["path"].endswith("/events")]
    assert events[-1].type == "run.completed"
    assert len(streams) >= 2  # it reconnected
    assert len({e["headers"]["traceparent"].split("-")[1] for e in streams}) == 1


async def test_concurrent_operations_do_not_mix(host: DevHost) -> None:
    async with AsyncOpenwopClient(host.base_url, api_key=host.api_key) as client:

        async def run_one() -> tuple[str, str]:
            with trace_operation() as operation:
                created = await client.runs_create("conformance-delay", DELAY)
                await client.wait_for_run(created.run_id, timeout=30)
            return created.run_id, operation.trace_id

        runs = await asyncio.gather(*(run_one() for _ in range(3)))
    assert len({trace_id for _, trace_id in runs}) == 3
    for run_id, trace_id in runs:  # (the creates are told apart by nothing in the request log: left out)
        assert {e["headers"]["traceparent"].split("-")[1] for e in host.requests if run_id in e["path"]} == {trace_id}


async def test_a_fixed_traceparent_still_wins(host: DevHost) -> None:
    fixed = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with OpenwopClient(host.base_url, api_key=host.api_key, traceparent=fixed) as client:
        with trace_operation():
            created = client.runs_create("conformance-noop")
            client.wait_for_run(created.run_id, timeout=30)
    assert set(traceparents(host, created.run_id)) == {fixed}


def test_trace_context_headers() -> None:
    context = TraceContext.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
    assert context is not None and not context.sampled
    assert context.headers() == {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
    assert TraceContext.parse("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None
    assert TraceContext.parse("garbage") is None


def test_without_opentelemetry_nothing_is_imported(tmp_path: Path) -> None:
    """In a process where OpenTelemetry cannot be imported, operations work the same (minus the span) and the
    client never tries to import it."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # any import of it now fails
        from openwop_core import OpenwopClient, trace_operation
        from openwop_devhost import DevHost
        with DevHost() as host, OpenwopClient(host.base_url, api_key=host.api_key) as client:
            with trace_operation() as operation:
                run = client.runs_create("conformance-noop")
                result = client.wait_for_run(run.run_id, timeout=30)
            seen = {e["headers"]["traceparent"].split("-")[1] for e in host.requests if run.run_id in e["path"]}
            other = client.wait_for_run(run.run_id, timeout=30)
        assert seen == {operation.trace_id} == {result.trace_id}, (seen, operation)
        assert other.trace_id != result.trace_id
        assert not any(name.startswith("opentelemetry.") for name in sys.modules), "imported OpenTelemetry"
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
