"""Prefect as production runs it: ``prefect server start`` on Postgres, a ``process`` work pool served by two
``prefect worker`` processes (``prod_topology``), and the local OpenWOP host in this process (to count its runs).

The shipped flow is deployed with its module entrypoint (``openwop_prefect.flows:run_openwop_workflow``); each flow
run chooses the saved credentials block by reference (``{"$ref": {"block_document_id": ...}}``, as the UI sends it).

- Cancelling a deployment flow run through Prefect's API (``Cancelling``, what ``prefect flow-run cancel`` sets)
  cancels its remote run.
- An approval is answered through Prefect's resume API (``resume_flow_run`` with the run input): it reaches the
  remote run once and the run completes.
- Fifty flow runs spread over both workers; one worker is killed with SIGKILL while it runs some. What Prefect
  3.9 does then (found here, see docs/deployment.md): a process worker starts each flow run in its own session, so
  the flow-run processes outlive the worker, but they end ``Crashed`` soon after (their link to the dead worker
  breaks); nothing reschedules them. Retrying a crashed flow run (``prefect flow-run retry``: back to
  ``Scheduled``) has the surviving worker run it again under the same flow run id, and it reattaches to its
  remote run. Every flow run completes and the host saw exactly one remote run per flow run.

Measured figures (throughput, per-run latency) are printed, never asserted. On a failure the message carries the
end of the logs of the processes involved, without access lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import LogSort
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Scheduled, State
from prefect.types.entrypoint import EntrypointType
from prefect_support import SECRET_KEY
from process_hygiene import descendants, is_running
from prod_topology import Topology

from openwop_devhost import DevHost
from openwop_prefect import OpenwopCredentials, run_openwop_workflow

pytestmark = pytest.mark.slow

#: Flow runs in the failover test (each one is a Python process the worker starts).
FLOW_RUNS = 50
#: Concurrent flow runs per worker (``prefect worker start --limit``): ten processes at a time on 2 cores.
WORKER_LIMIT = 5
#: How long each remote run of the failover test takes, so that the kill finds some of them in flight.
DELAY_MS = 10000
WORKERS = ("prefect-worker-1", "prefect-worker-2")
STARTED = re.compile(r"(?:Started|Reattached to) OpenWOP run (run_\w+)")
SUBMITTED = re.compile(r"Worker '([\w-]+)' submitting flow run")


@dataclass
class Stack:
    """The running topology, the host, and the deployment under test."""

    topo: Topology
    host: DevHost
    deployment_id: UUID
    block_id: UUID

    def parameters(self, workflow_id: str, inputs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        """Flow-run parameters choosing the saved credentials block by reference."""
        return {
            "credentials": {"$ref": {"block_document_id": str(self.block_id)}},
            "workflow_id": workflow_id,
            "inputs": inputs,
            "check_interval": 1,
            **extra,
        }

    def start(self, workflow_id: str, inputs: dict[str, Any] | None = None, **extra: Any) -> UUID:
        """Create a flow run of the deployment (a worker picks it up) and return its id."""
        flow_run = run_deployment(
            self.deployment_id, parameters=self.parameters(workflow_id, inputs, **extra), timeout=0
        )
        return flow_run.id

    @contextlib.contextmanager
    def logs_on_failure(self, *names: str) -> Iterator[None]:
        """Re-raise a failure with the end of the named processes' logs (server and workers by default)."""
        try:
            yield
        except Exception as exc:
            wanted = list(names) or ["prefect-server", *WORKERS]
            raise AssertionError(f"{exc}\n{self.topo.error('logs of the processes involved', wanted)}") from exc


@pytest.fixture(scope="module")
def prefect_server() -> None:
    """Overrides the suite's temporary Prefect server (``tests/prefect/conftest.py``): this module talks to the
    topology's server instead, and need not wait for another one to start."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Postgres, the Prefect server and two workers (``--limit``), a host here, the block and the deployment."""
    root = tmp_path_factory.mktemp("prod-topology-prefect")
    with DevHost(api_key=SECRET_KEY) as host:
        topo = Topology(
            root / "topology",
            devhost_url=host.base_url,
            api_key=SECRET_KEY,
            prefect_worker_limit=WORKER_LIMIT,
            # Poll every second (default 10 s) and do not take runs ahead of time (the default prefetch lets one
            # worker claim runs it cannot start yet while the other idles).
            prefect_env={"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"},
        )
        try:
            topo.up(["prefect"])
            with temporary_settings({PREFECT_API_URL: topo.prefect_api_url}):
                block_id = OpenwopCredentials.load(topo.prefect_block)._block_document_id
                assert block_id is not None
                deployment_id = run_openwop_workflow.deploy(
                    name="topology",
                    work_pool_name=topo.work_pool,
                    entrypoint_type=EntrypointType.MODULE_PATH,
                    print_next_steps=False,
                    ignore_warnings=True,
                )
                yield Stack(topo, host, deployment_id, block_id)
        finally:
            topo.stop_all()


# -- reading what Prefect recorded -----------------------------------------------------------------


def read_runs(ids: list[UUID]) -> dict[UUID, FlowRun]:
    """The flow runs as the Prefect API has them now."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids))
    return {run.id: run for run in runs}


def state_of(flow_run_id: UUID) -> State[Any] | None:
    return read_runs([flow_run_id])[flow_run_id].state


def run_logs(ids: list[UUID]) -> dict[UUID, list[str]]:
    """Every log message Prefect stored for the flow runs, oldest first, by flow run."""
    found: dict[UUID, list[str]] = {i: [] for i in ids}
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                limit=200,
                offset=offset,
                sort=LogSort.TIMESTAMP_ASC,
            )
            for log in page:
                if log.flow_run_id is not None:
                    found[log.flow_run_id].append(log.message)
            if len(page) < 200:
                return found
            offset += 200


def state_counts(ids: list[UUID]) -> str:
    """How many of the flow runs are in each state now (what a timed-out wait saw instead)."""
    return str(dict(Counter(run.state_name for run in read_runs(ids).values()).most_common()))


def ended(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_final()


def abandoned(run: FlowRun, *, after: float = 60.0) -> bool:
    """A flow run that the killed worker claimed and nobody runs any more: past ``Scheduled``, not ended, no live
    process, and no state change for ``after`` seconds (a flow-run process killed while it started stays
    ``Pending``/``Submitting`` for ever: ``prefect flow-run retry`` refuses it until it is marked crashed)."""
    if run.state is None or ended(run) or run.state.type == StateType.SCHEDULED:
        return False
    pid = (run.infrastructure_pid or "").rsplit(":", 1)[-1]  # "host:pid"
    if pid.isdigit() and is_running(int(pid)):  # not a zombie: the processes of a dead worker end under pytest
        return False
    return (datetime.now(timezone.utc) - run.state.timestamp).total_seconds() > after


def figures_of(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 1), "max": round(max(values), 1)} if values else {}


# -- the tests (the worker kill last: it leaves one worker) ----------------------------------------


@pytest.mark.timeout(600, method="thread")
def test_cancelling_a_deployment_run_through_the_api_cancels_its_remote_run(stack, capsys):
    topo, host = stack.topo, stack.host
    before = set(host.run_ids())
    with stack.logs_on_failure():
        flow_run_id = stack.start("conformance-cancellable", {"delayMs": 60000})
        started = time.monotonic()

        def remote_run() -> str | None:
            new = [r for r in host.run_ids() if r not in before]
            return new[0] if new and host.get_run(new[0])["status"] == "running" else None

        run_id = topo.wait_until("the remote run to start", remote_run, 300, watch=["prefect-server", *WORKERS])
        running_after = time.monotonic() - started
        with get_client(sync_client=True) as client:  # what `prefect flow-run cancel` does
            client.set_flow_run_state(flow_run_id, State(type=StateType.CANCELLING))
        cancelled_at = time.monotonic()
        topo.wait_until(
            "the remote run to be cancelled",
            lambda: host.get_run(run_id)["status"] == "cancelled",
            120,
            watch=["prefect-server"],
        )
        remote_cancelled_after = time.monotonic() - cancelled_at
        state = topo.wait_until(
            "the flow run to end", lambda: (s := state_of(flow_run_id)) and s.is_final() and s, 120, every=0.5
        )
        assert state.type == StateType.CANCELLED, f"{state.type}: {state.message}"
        assert [r for r in host.run_ids() if r not in before] == [run_id]  # one remote run
    with capsys.disabled():
        figures = {
            "created_to_remote_running_s": round(running_after, 1),
            "cancel_to_remote_cancelled_s": round(remote_cancelled_after, 1),
        }
        print(f"\n[prefect topology cancel] {json.dumps(figures)}")


@pytest.mark.timeout(600, method="thread")
def test_an_approval_answered_through_the_resume_api_reaches_the_run_once(stack, capsys):
    topo, host = stack.topo, stack.host
    before = set(host.run_ids())
    with stack.logs_on_failure():
        flow_run_id = stack.start("conformance-approval", on_interrupt="pause")
        started = time.monotonic()
        topo.wait_until(
            "the flow run to pause for the approval",
            lambda: (s := state_of(flow_run_id)) is not None and s.is_paused(),
            300,
            watch=["prefect-server", *WORKERS],
        )
        paused_after = time.monotonic() - started

        def answered() -> bool:
            try:  # what the Resume dialog sends; the form's schema may not be saved yet: try again shortly
                resume_flow_run(flow_run_id, run_input={"action": "accept", "answered_by": "topology-test"})
            except Exception:
                return False
            return True

        topo.wait_until("the resume API to take the answer", answered, 60, every=0.5)
        answered_at = time.monotonic()
        state = topo.wait_until(
            "the flow run to end", lambda: (s := state_of(flow_run_id)) and s.is_final() and s, 180, every=0.5
        )
        completed_after = time.monotonic() - answered_at
        assert state.type == StateType.COMPLETED, f"{state.type}: {state.message}"
        (run_id,) = [r for r in host.run_ids() if r not in before]  # one remote run
        approvals = [e["payload"] for e in host.events(run_id) if e["type"] == "approval.received"]
        assert [a["action"] for a in approvals] == ["accept"], approvals  # the answer reached the run once
        assert host.get_run(run_id)["status"] == "completed"
        assert host.open_interrupts(run_id) == []
    with capsys.disabled():
        figures = {"created_to_paused_s": round(paused_after, 1), "answer_to_completed_s": round(completed_after, 1)}
        print(f"\n[prefect topology approval] {json.dumps(figures)}")


@pytest.mark.timeout(1200, method="thread")
def test_fifty_deployment_runs_over_two_workers_survive_one_killed(stack, capsys):
    """Fifty flow runs; SIGKILL to the worker process (its group) once it runs a few of them. Its flow runs end
    ``Crashed``; retried (``prefect flow-run retry``), the surviving worker reattaches each to its remote run."""
    topo, host = stack.topo, stack.host
    before = set(host.run_ids())
    victim, survivor = WORKERS
    orphans: list[int] = []
    with stack.logs_on_failure():
        created_at: dict[UUID, float] = {}
        for _ in range(FLOW_RUNS):
            flow_run_id = stack.start("conformance-delay", {"delayMs": DELAY_MS})
            created_at[flow_run_id] = time.monotonic()
        ids = list(created_at)
        first_created = min(created_at.values())

        def victim_busy() -> list[UUID] | None:
            """The victim's running flow runs, once two of them run and one follows its remote run."""
            pids = {str(pid) for pid in descendants(topo.processes[victim].pid)}
            runs = read_runs(ids).values()
            mine = [r.id for r in runs if r.state_type == StateType.RUNNING and r.infrastructure_pid in pids]
            following = [i for i, messages in run_logs(mine).items() if STARTED.search("\n".join(messages))]
            return mine if len(mine) >= 2 and following else None

        topo.wait_until(
            f"{victim} to run flow runs",
            victim_busy,
            600,
            watch=["prefect-server", *WORKERS],
            every=1,
            describe=lambda: state_counts(ids),
        )
        orphans = descendants(topo.processes[victim].pid)
        os.killpg(topo.processes[victim].pid, signal.SIGKILL)  # the worker's group: its flow runs have their own
        killed_at = time.monotonic()
        in_flight = [run for run in read_runs(ids).values() if not ended(run)]

        first = topo.wait_until(
            "every flow run to end, or to be left behind by the killed worker",
            lambda: (runs := read_runs(ids)) and all(ended(r) or abandoned(r) for r in runs.values()) and runs,
            900,
            watch=["prefect-server", survivor],
            describe=lambda: state_counts(ids),
        )
        first_done = time.monotonic()
        stuck = [i for i, run in first.items() if not ended(run)]
        crashed = [i for i, run in first.items() if run.state is not None and run.state.type == StateType.CRASHED]
        with get_client(sync_client=True) as client:
            for flow_run_id in stuck:  # what the "detect zombie flows" automation (or a person) does
                client.set_flow_run_state(flow_run_id, State(type=StateType.CRASHED, message="no process"), force=True)
            for flow_run_id in crashed + stuck:  # what `prefect flow-run retry <id>` does
                client.set_flow_run_state(flow_run_id, Scheduled(message="Retried via CLI"), force=True)
        crashed += stuck
        final = topo.wait_until(
            "the retried flow runs to end",
            lambda: (runs := read_runs(ids)) and all(ended(r) for r in runs.values()) and runs,
            600,
            watch=["prefect-server", survivor],
            describe=lambda: state_counts(ids),
        )
        all_done = time.monotonic()

        not_completed = {str(i): f"{r.state_name}: {r.state.message if r.state else ''}" for i, r in final.items()}
        not_completed = {i: s for i, s in not_completed.items() if not s.startswith("Completed")}
        assert not not_completed, f"flow runs did not complete: {not_completed}"

        logs = run_logs(ids)
        remote_of = {i: set(STARTED.findall("\n".join(messages))) for i, messages in logs.items()}
        several = {str(i): sorted(runs) for i, runs in remote_of.items() if len(runs) != 1}
        assert not several, f"flow runs that followed no or several remote runs: {several}"
        new_runs = [r for r in host.run_ids() if r not in before]
        assert len(new_runs) == FLOW_RUNS, f"{len(new_runs)} remote runs for {FLOW_RUNS} flow runs"
        assert {next(iter(runs)) for runs in remote_of.values()} == set(new_runs)  # one remote run each
        # One remote run per flow run (above) makes a retry that finds a run reattach to it; count them. (A run
        # left pending by the killed worker never started one: its retry starts it.)
        reattached = sum(1 for i in crashed if "Reattached to OpenWOP run" in "\n".join(logs[i]))
        ran_again = {str(i): final[i].run_count for i in crashed if final[i].run_count < (1 if i in stuck else 2)}
        assert not ran_again, f"retried flow runs that did not run again (run counts): {ran_again}"
        workers_of = {i: SUBMITTED.findall("\n".join(messages)) for i, messages in logs.items()}
        ran = {name: sum(1 for names in workers_of.values() if name in names) for name in WORKERS}
        assert all(ran.values()), f"flow runs submitted by each worker: {ran}"
        for flow_run_id in crashed:
            assert workers_of[flow_run_id][-1] == survivor, workers_of[flow_run_id]
        for name in ("prefect-server", *WORKERS):
            assert SECRET_KEY not in topo.log(name)

    for pid in orphans:  # flow-run processes of the killed worker that are still alive (none expected)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    latencies = []
    for flow_run_id, run in final.items():
        if flow_run_id not in crashed and run.end_time is not None:
            latencies.append((run.end_time - run.created).total_seconds() if run.created else 0.0)
    figures = {
        "flow_runs": FLOW_RUNS,
        "worker_limit": WORKER_LIMIT,
        "remote_run_s": DELAY_MS / 1000,
        "submitted_by": ran,
        "in_flight_at_kill": len(in_flight),
        "crashed_with_worker": len(crashed) - len(stuck),
        "left_pending_by_worker": len(stuck),
        "retried_and_reattached": reattached,
        "crash_message": next((first[i].state.message for i in crashed if first[i].state), None),
        "killed_worker_processes": len(orphans),
        "created_to_kill_s": round(killed_at - first_created, 1),
        "created_to_first_pass_done_s": round(first_done - first_created, 1),
        "retry_to_all_completed_s": round(all_done - first_done, 1),
        "throughput_flow_runs_per_min": round(FLOW_RUNS / ((first_done - first_created) / 60), 1),
        "created_to_completed_s_not_crashed": figures_of(latencies),
    }
    with capsys.disabled():
        print(f"\n[prefect topology 50 runs] {json.dumps(figures)}")
