"""``OpenwopRunTrigger`` against the local host: its serialised form, resuming from a serialised state,
dropped streams, a host that goes down and comes back, deadlines, errors that are not transient,
``on_kill`` (cancels) versus a plain stop (does not), and clients shared per connection."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import weakref

import pytest
from airflow.triggers.base import TriggerEvent
from airflow_support import API_KEY, connection_json, through_trigger_row

from openwop_airflow.hooks import connection_lookup
from openwop_airflow.hooks.client_cache import shared_client_count
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.triggers.run import OpenwopRunTrigger
from openwop_core import OpenwopClient, resume

CLASSPATH = "openwop_airflow.triggers.run.OpenwopRunTrigger"


async def fire(trigger: OpenwopRunTrigger, timeout: float = 60) -> list[TriggerEvent]:
    """All events the trigger fires (it must fire exactly one and stop)."""

    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return await asyncio.wait_for(collect(), timeout)


def start_run(host, workflow_id: str, inputs: dict | None = None) -> str:
    with OpenwopClient(host.base_url, api_key=API_KEY) as client:
        return client.runs_create(workflow_id, inputs).run_id


class Output:
    """What the trigger logged (Airflow's structlog writes to stdout), accumulated across reads."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd = capfd
        self.seen = ""
        capfd.readouterr()

    @property
    def text(self) -> str:
        out, err = self.capfd.readouterr()
        self.seen += out + err
        return self.seen

    def clear(self) -> None:
        _ = self.text
        self.seen = ""


def test_serialize_round_trip_is_plain_json_without_the_key(devhost):
    """serialize() gives the class path and JSON kwargs that rebuild an equal trigger; no secret in them."""
    trigger = OpenwopRunTrigger(
        run_id="run_1",
        openwop_conn_id="openwop_default",
        last_sequence=7,
        deadline=1_900_000_000.5,
        stop_on_interrupt=True,
        retry={"max_attempts": 3},
        poll_interval=5,
        cancel_on_kill=True,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )
    classpath, kwargs = trigger.serialize()

    assert classpath == CLASSPATH
    assert kwargs == {
        "run_id": "run_1",
        "openwop_conn_id": "openwop_default",
        "last_sequence": 7,
        "deadline": 1_900_000_000.5,
        "stop_on_interrupt": True,
        "retry": {"max_attempts": 3},
        "poll_interval": 5.0,
        "cancel_on_kill": True,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = OpenwopRunTrigger(**through_trigger_row(kwargs))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert API_KEY not in json.dumps(kwargs) + repr(trigger)


async def test_run_fires_one_success_event(devhost, capfd):
    """A run that completes: one ``success`` event, progress logged on the way."""
    log = Output(capfd)
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 300})
    events = await fire(OpenwopRunTrigger(run_id=run_id))

    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success"
    assert payload["run_id"] == run_id
    assert payload["run_status"] == "completed"
    assert isinstance(payload["last_sequence"], int)
    assert f"OpenWOP run {run_id}: run completed" in log.text
    assert f"Waiting for OpenWOP run {run_id} at {devhost.base_url} (from its first event)" in log.text
    json.dumps(payload)


async def test_resumes_from_a_serialised_state_mid_run(devhost, capfd):
    """A first trigger stops at the interrupt; a second one, rebuilt from the first's serialised kwargs
    with its last sequence, follows only the events after it (as after a triggerer restart)."""
    log = Output(capfd)
    run_id = start_run(devhost, "conformance-approval")
    first = OpenwopRunTrigger(run_id=run_id, stop_on_interrupt=True)
    (event,) = await fire(first)
    assert event.payload["status"] == "interrupted"
    assert event.payload["interrupt"]["node_id"] == "gate"
    last_sequence = event.payload["last_sequence"]
    assert isinstance(last_sequence, int)

    with OpenwopClient(devhost.base_url, api_key=API_KEY) as client:
        client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept"))
    log.clear()
    _, kwargs = first.serialize()
    second = OpenwopRunTrigger(**{**kwargs, "last_sequence": last_sequence, "stop_on_interrupt": False})
    (event,) = await fire(second)

    assert event.payload["status"] == "success"
    assert event.payload["last_sequence"] > last_sequence
    assert f"(after event {last_sequence})" in log.text
    assert f"OpenWOP run {run_id}: run completed" in log.text
    assert "run started" not in log.text  # events up to the cursor are not replayed


async def test_dropped_streams_are_resumed_without_losing_or_repeating_events(devhost, capfd):
    """The host cuts every SSE connection after one event: the trigger resumes with Last-Event-ID and
    logs each event once."""
    log = Output(capfd)
    devhost.set_faults(drop_sse_after_events=1)
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 1000})
    (event,) = await fire(OpenwopRunTrigger(run_id=run_id))

    assert event.payload["status"] == "success"
    assert log.text.count(f"OpenWOP run {run_id}: run started") == 1
    assert log.text.count(f"OpenWOP run {run_id}: node delay completed") == 1
    assert log.text.count(f"OpenWOP run {run_id}: run completed") == 1


async def test_host_down_then_back_is_not_a_failure(devhost, capfd, monkeypatch):
    """The host stops for a while mid-wait (the client gives up reconnecting at once: no retries in
    this connection), then comes back: the trigger keeps trying and reports the real outcome."""
    log = Output(capfd)
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENWOP_DEFAULT",
        connection_json(devhost, retry={"max_attempts": 1, "stream_max_reconnects": 0, "initial_backoff": 0.2}),
    )
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 2500})
    waiting = asyncio.create_task(fire(OpenwopRunTrigger(run_id=run_id)))
    while "run started" not in log.text:  # noqa: ASYNC110 (polling captured output, not a condition)
        await asyncio.sleep(0.02)
    await asyncio.to_thread(devhost.stop)
    await asyncio.sleep(1.5)
    await asyncio.to_thread(devhost.start)
    (event,) = await waiting

    assert event.payload["status"] == "success"
    assert "lost contact with the host" in log.text


async def test_server_errors_while_waiting_are_retried(devhost, capfd, monkeypatch):
    """503s on the snapshot (no client-level retries left) are transient: never reported as a failed run."""
    log = Output(capfd)
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, retry={"max_attempts": 1}))
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 500})
    devhost.set_faults(fail_requests=[{"route": "GET /v1/runs/{runId}", "status": 503, "count": 3}])
    (event,) = await fire(OpenwopRunTrigger(run_id=run_id))

    assert event.payload["status"] == "success"
    assert log.text.count("lost contact with the host") == 3


async def test_polling_mode_on_a_host_without_sse(devhost):
    """poll_interval: reads snapshots only (works where /events answers 404)."""
    devhost.set_faults(sse_unavailable=True)
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 500})
    (event,) = await fire(OpenwopRunTrigger(run_id=run_id, poll_interval=0.1))

    assert event.payload["status"] == "success"


async def test_deadline_fires_a_timeout_event_and_leaves_the_run_alone(devhost):
    """Past the deadline: a ``timeout`` event (the operator decides about cancelling, not the trigger)."""
    run_id = start_run(devhost, "conformance-cancellable", {"delayMs": 60000})
    (event,) = await fire(OpenwopRunTrigger(run_id=run_id, deadline=time.time() + 1, cancel_on_kill=True))

    assert event.payload["status"] == "timeout"
    assert event.payload["run_status"] == "running"
    assert devhost.get_run(run_id)["status"] == "running"


async def test_failed_run_fires_an_error_event_with_the_remote_error(devhost):
    run_id = start_run(devhost, "conformance-failure")
    (event,) = await fire(OpenwopRunTrigger(run_id=run_id))

    assert event.payload["status"] == "error"
    assert event.payload["run_status"] == "failed"
    assert event.payload["error"]["code"] == "conformance_test_failure"
    assert event.payload["error"]["message"] == "Intentional conformance failure"


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ({"api_key": "wrong-key"}, "unauthenticated"),
        ({"missing": True}, "OpenwopConnectionException"),
    ],
    ids=["rejected-key", "missing-connection"],
)
async def test_errors_that_retrying_cannot_fix_end_the_wait(devhost, monkeypatch, conn, expected):
    """A rejected key or a missing connection: an ``error`` event without run status, at once."""
    run_id = start_run(devhost, "conformance-cancellable", {"delayMs": 60000})
    if conn.get("missing"):
        monkeypatch.delenv("AIRFLOW_CONN_OPENWOP_DEFAULT")
    else:
        monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, api_key=conn["api_key"]))
    (event,) = await fire(OpenwopRunTrigger(run_id=run_id), timeout=30)

    assert event.payload["status"] == "error"
    assert event.payload["run_status"] is None
    assert event.payload["error"]["code"] == expected
    assert API_KEY not in json.dumps(event.payload)


async def test_unknown_run_ends_the_wait_with_run_not_found(devhost):
    (event,) = await fire(OpenwopRunTrigger(run_id="run_does_not_exist"))

    assert event.payload["status"] == "error"
    assert event.payload["error"]["code"] == "run_not_found"


async def test_on_kill_cancels_the_run_but_a_plain_stop_does_not(devhost):
    """A triggerer stopping (task cancelled, cleanup runs) leaves the run going; on_kill (a user killed
    the task) cancels it."""
    run_id = start_run(devhost, "conformance-cancellable", {"delayMs": 60000})
    trigger = OpenwopRunTrigger(run_id=run_id, cancel_on_kill=True)
    waiting = asyncio.create_task(fire(trigger))
    await asyncio.sleep(0.5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await trigger.cleanup()
    assert devhost.get_run(run_id)["status"] == "running"

    await trigger.on_kill()
    assert devhost.wait_for_status(run_id)["status"] == "cancelled"


async def test_on_kill_without_cancel_on_kill_leaves_the_run(devhost):
    run_id = start_run(devhost, "conformance-cancellable", {"delayMs": 60000})
    await OpenwopRunTrigger(run_id=run_id, cancel_on_kill=False).on_kill()

    assert devhost.get_run(run_id)["status"] == "running"


async def test_triggers_of_one_connection_share_one_http_client(devhost):
    """Many waits in one triggerer use one client per connection (closed when the last one ends)."""
    run_ids = [start_run(devhost, "conformance-delay", {"delayMs": 800}) for _ in range(5)]
    waits = [asyncio.create_task(fire(OpenwopRunTrigger(run_id=run_id))) for run_id in run_ids]
    await asyncio.sleep(0.4)
    assert shared_client_count() == 1
    events = await asyncio.gather(*waits)

    assert [e[0].payload["status"] for e in events] == ["success"] * 5
    assert shared_client_count() == 0


@pytest.fixture
def counted_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The connection lookups the hooks make, each taking 0.2 s as a round trip through a triggerer's
    supervisor may (it answers them one at a time), then answered by Airflow as usual."""
    lookups: list[str] = []
    airflow_lookup = OpenwopHook.aget_connection

    async def through_the_supervisor(conn_id: str):
        lookups.append(conn_id)
        await asyncio.sleep(0.2)
        return await airflow_lookup(conn_id)

    monkeypatch.setattr(OpenwopHook, "aget_connection", staticmethod(through_the_supervisor))
    return lookups


async def test_waits_starting_together_look_their_connection_up_once(devhost, counted_lookups):
    """A triggerer starting (or taking over a dead one's waits) starts many waits at once: they share one
    lookup of their connection instead of queueing one each, and every one of them finishes."""
    run_ids = [start_run(devhost, "conformance-delay", {"delayMs": 300}) for _ in range(20)]
    events = await asyncio.gather(*(fire(OpenwopRunTrigger(run_id=run_id)) for run_id in run_ids))

    assert [e[0].payload["status"] for e in events] == ["success"] * 20
    assert counted_lookups == ["openwop_default"]


async def test_a_connection_edited_after_a_shared_lookup_reaches_the_waits_starting_after_its_ttl(
    devhost, counted_lookups, monkeypatch
):
    """A wrong key, fixed in the connection: waits starting within ``CONNECTION_TTL`` of the lookup still use
    the answer it got, those starting after it look the connection up again and use the new key."""
    monkeypatch.setattr(connection_lookup, "CONNECTION_TTL", 1.0)
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, api_key="wrong-key"))
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 200})
    (rejected,) = await fire(OpenwopRunTrigger(run_id=run_id))
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost))
    (still_kept,) = await fire(OpenwopRunTrigger(run_id=run_id))
    await asyncio.sleep(1.1)
    (fixed,) = await fire(OpenwopRunTrigger(run_id=run_id))

    assert [e.payload["error"]["code"] for e in (rejected, still_kept)] == ["unauthenticated"] * 2
    assert fixed.payload["status"] == "success"
    assert counted_lookups == ["openwop_default"] * 2


async def test_a_failed_connection_lookup_is_not_kept(devhost, counted_lookups, monkeypatch):
    """A connection missing when one wait starts, then created: the next wait finds it at once."""
    run_id = start_run(devhost, "conformance-delay", {"delayMs": 200})
    monkeypatch.delenv("AIRFLOW_CONN_OPENWOP_DEFAULT")
    (missing,) = await fire(OpenwopRunTrigger(run_id=run_id))
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost))
    (found,) = await fire(OpenwopRunTrigger(run_id=run_id))

    assert missing.payload["error"]["code"] == "OpenwopConnectionException"
    assert found.payload["status"] == "success"
    assert counted_lookups == ["openwop_default"] * 2


async def test_a_wait_stopped_during_the_shared_lookup_does_not_stop_the_others(devhost, counted_lookups):
    """The first wait to ask is stopped (a task cleared) while the lookup is under way: the lookup goes on
    for the waits that asked with it."""
    run_ids = [start_run(devhost, "conformance-delay", {"delayMs": 200}) for _ in range(3)]
    first = asyncio.create_task(fire(OpenwopRunTrigger(run_id=run_ids[0])))
    await asyncio.sleep(0.05)
    others = asyncio.gather(*(fire(OpenwopRunTrigger(run_id=r)) for r in run_ids[1:]))
    await asyncio.sleep(0.05)
    first.cancel()
    events = await others

    assert first.cancelled()
    assert [e[0].payload["status"] for e in events] == ["success"] * 2
    assert counted_lookups == ["openwop_default"]


def test_a_kept_answer_does_not_keep_its_event_loop_alive():
    """``dag.test()`` runs each trigger on a loop of its own: the answer kept for a loop must not keep it."""
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def answer() -> object:
        return object()

    async def look_up() -> object:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return await connection_lookup.shared_connection_lookup("openwop_default", answer)

    asyncio.run(look_up())
    gc.collect()

    assert loops[0]() is None


def test_a_kept_connection_stays_out_of_the_lookups_repr():
    """The kept connection holds the API key: a lookup's repr (a debugger, a log of the cache) omits it."""
    kept = connection_lookup._Lookup(None, connection={"password": API_KEY})

    assert API_KEY not in repr(kept)
