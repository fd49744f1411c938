"""Airflow as production runs it: Postgres metadata database, CeleryExecutor with two Celery workers, two
triggerers, the scheduler, the dag-processor and the API server, each its own process (``prod_topology``).

Many deferred ``OpenwopRunOperator`` tasks wait in both triggerers; one triggerer is killed with SIGKILL while
they wait. The surviving triggerer takes over the orphaned waits once Airflow's triggerer health check declares
the dead one gone: every task succeeds, and the host saw exactly one remote run per task. The tasks have retries,
as in production: a try that fails (its reason is printed with the figures) is retried and reattaches to its
run. The time from the kill to each orphaned wait noticing its finished run is measured and printed (no timing
assertions).

A task waiting in a Celery worker (not deferred) survives that worker's SIGKILL: its retry reattaches to the
same run. Questions asked in Airflow (``on_interrupt="ask_in_airflow"``, deferred and parked) are answered
through the REST API and reach their runs once.
"""

from __future__ import annotations

import json
import statistics
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from airflow_support import API_KEY, scheduler_settled
from process_hygiene import command_line, descendants
from prod_topology import Topology

from openwop_core import OpenwopClient, resume
from openwop_devhost import DevHost

pytestmark = pytest.mark.slow

#: Deferred tasks in the failover test: enough to spread over both triggerers, small enough for CI on 2 cores.
TASKS = 100
DAG_ID = "openwop_topology_failover"
WORKER_DAG_ID = "openwop_topology_worker_kill"
HITL_DAG_ID = "openwop_topology_ask_in_airflow"
#: Seconds without a task heartbeat after which the scheduler fails a task whose worker died (default 300).
TASK_HEARTBEAT_TIMEOUT = 30
#: Seconds without a heartbeat after which Airflow hands a triggerer's triggers to another one (default 30).
HEALTH_CHECK_THRESHOLD = 10
DAG_FILE = textwrap.dedent(
    f'''
    """{TASKS} deferred OpenWOP waits, each on an approval answered by the test; one wait in a Celery worker;
    two approvals asked in Airflow (one deferred, one parked)."""
    from datetime import timedelta

    import pendulum
    from airflow.sdk import DAG

    from openwop_airflow.operators.run import OpenwopRunOperator

    START = pendulum.datetime(2024, 1, 1, tz="UTC")
    with DAG("{DAG_ID}", schedule=None, start_date=START, catchup=False, max_active_tasks={TASKS}):
        for i in range({TASKS}):
            OpenwopRunOperator(
                task_id=f"wait_{{i:03d}}",
                workflow_id="conformance-approval",
                deferrable=True,
                retries=2,
                retry_delay=timedelta(seconds=1),
            )

    with DAG("{WORKER_DAG_ID}", schedule=None, start_date=START, catchup=False):
        OpenwopRunOperator(
            task_id="waits_in_worker",
            workflow_id="conformance-approval",
            deferrable=False,
            retries=2,
            retry_delay=timedelta(seconds=1),
        )

    with DAG("{HITL_DAG_ID}", schedule=None, start_date=START, catchup=False):
        for task_id, deferrable in (("asked_deferred", True), ("asked_parked", False)):
            OpenwopRunOperator(
                task_id=task_id,
                workflow_id="conformance-approval",
                on_interrupt="ask_in_airflow",
                deferrable=deferrable,
            )
    '''
)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Topology, DevHost]]:
    """The Airflow production topology wired to a local OpenWOP host in this process (to count its runs)."""
    root = tmp_path_factory.mktemp("prod-topology")
    dags = root / "dags"
    dags.mkdir()
    (dags / "openwop_topology.py").write_text(DAG_FILE)
    with DevHost(api_key=API_KEY) as host:
        topo = Topology(
            root / "topology",
            devhost_url=host.base_url,
            api_key=API_KEY,
            airflow_dags=dags,
            airflow_env={
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_THRESHOLD),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            },
        )
        try:
            topo.up(["airflow"])
            yield topo, host
        finally:
            topo.stop_all()


def airflow_api(topo: Topology) -> httpx.Client:
    """A REST API client with a token, as a user gets one (no login: simple auth manager, all admins)."""
    token = httpx.get(f"{topo.airflow_url}/auth/token", timeout=30).json()["access_token"]
    return httpx.Client(base_url=topo.airflow_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture
def dag_runs(topology: tuple[Topology, DevHost]) -> Iterator[list[tuple[str, str]]]:
    """The DAG runs a test triggers (``(dag_id, dag_run_id)``): one still going when the test ends is marked
    failed, so that a failed test leaves no task starting remote runs while the next test counts them."""
    triggered: list[tuple[str, str]] = []
    yield triggered
    fail_unfinished(topology[0], triggered)


def fail_unfinished(topo: Topology, dag_runs: list[tuple[str, str]]) -> None:
    """Mark each of these DAG runs that is still ``queued`` or ``running`` failed, through the REST API."""
    with airflow_api(topo) as api:
        for dag_id, dag_run_id in dag_runs:
            path = f"/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}"
            if api.get(path).json().get("state") in ("queued", "running"):
                api.patch(path, json={"state": "failed"}).raise_for_status()


def task_states(topo: Topology, dag_id: str, dag_run_id: str) -> dict[str, tuple[str, int | None]]:
    """``{task_id: (state, triggerer job id of its trigger or None)}`` of one DAG run."""
    rows = topo.psql(
        "airflow",
        "select ti.task_id, coalesce(ti.state, 'none'), coalesce(t.triggerer_id, -1) from task_instance ti "
        f"left join trigger t on ti.trigger_id = t.id where ti.dag_id = '{dag_id}' and ti.run_id = '{dag_run_id}'",
    )
    return {task: (state, None if int(job) < 0 else int(job)) for task, state, job in rows}


@pytest.mark.timeout(1500, method="thread")
def test_deferred_waits_survive_a_triggerer_killed_mid_wait(topology, dag_runs, capsys):
    """A hundred waits spread over both triggerers; SIGKILL to the one holding more; every run is answered at
    once. The survivor takes over the orphaned waits; every task succeeds with one remote run each."""
    topo, host = topology
    airflow_names = [n for n in topo.processes if n.startswith("airflow-")]
    with airflow_api(topo) as api:
        response = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
        assert response.status_code == 200, response.text
        dag_run_id = response.json()["dag_run_id"]
        dag_runs.append((DAG_ID, dag_run_id))

        def all_deferred_in_a_triggerer() -> dict[str, tuple[str, int | None]] | None:
            states = task_states(topo, DAG_ID, dag_run_id)
            ended = {t: s for t, (s, _) in states.items() if s in ("failed", "success", "upstream_failed", "skipped")}
            if ended:  # none of them can wait any more: fail now, not after the timeout
                why = {t: topo.airflow_task_problems(DAG_ID, t) for t in sorted(ended)[:3]}
                raise topo.error(
                    f"tasks ended before every wait was deferred: {ended}; their logs' warnings and errors: "
                    f"{json.dumps(why, indent=1)}",
                    airflow_names,
                )
            held = [s for s in states.values() if s[0] == "deferred" and s[1] is not None]
            return states if len(held) == TASKS else None

        def described() -> str:
            """How many tasks are in each (state, triggerer job) pair now."""
            return str(dict(Counter(task_states(topo, DAG_ID, dag_run_id).values()).most_common()))

        started = time.monotonic()
        states = topo.wait_until(
            f"all {TASKS} tasks to wait deferred in a triggerer",
            all_deferred_in_a_triggerer,
            900,
            watch=airflow_names,
            describe=described,
        )
        deferred_after = time.monotonic() - started
        assert host.runs_created("conformance-approval") == TASKS

        held_by = {
            name: [t for t, (_, job) in states.items() if job == jid] for name, jid in topo.triggerer_jobs.items()
        }
        assert all(held_by.values()), f"one triggerer holds every wait: { {n: len(t) for n, t in held_by.items()} }"
        victim = max(held_by, key=lambda name: len(held_by[name]))
        (survivor,) = [name for name in held_by if name != victim]
        orphans = set(held_by[victim])

        noticed: dict[str, float] = {}
        picked_up: dict[str, float] = {}  # orphaned waits seen assigned to the surviving triggerer
        taken_over: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            """Note when each task leaves ``deferred`` (its trigger fired) and when the survivor first holds
            every orphaned wait still deferred."""
            survivor_job = topo.triggerer_jobs[survivor]
            while not stop.is_set() and len(noticed) < TASKS:
                now = time.monotonic()
                states = task_states(topo, DAG_ID, dag_run_id)
                for task, (state, job) in states.items():
                    if state != "deferred":
                        noticed.setdefault(task, now)
                    elif task in orphans and job == survivor_job:
                        picked_up.setdefault(task, now)
                orphaned = [t for t in orphans if states[t][0] == "deferred" and states[t][1] != survivor_job]
                if not taken_over and not orphaned:
                    taken_over.append(now)
                time.sleep(0.2)

        killed_at = time.monotonic()
        topo.kill(victim)  # SIGKILL to its process group: no clean-up runs, its triggers stay assigned to it
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            with OpenwopClient(host.base_url, api_key=API_KEY) as client, ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda run_id: client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept")),
                        host.run_ids(),
                    )
                )
            answered_at = time.monotonic()
            topo.wait_until(
                "every task to notice its finished run",
                lambda: len(noticed) == TASKS,
                300,
                watch=[n for n in airflow_names if n != victim],
            )
        finally:
            stop.set()
            watcher.join(timeout=30)

        def all_done() -> dict[str, tuple[str, int | None]] | None:
            states = task_states(topo, DAG_ID, dag_run_id)
            done = all(state in ("success", "failed", "upstream_failed") for state, _ in states.values())
            return states if done else None

        final = topo.wait_until("every task to finish", all_done, 900, watch=[n for n in airflow_names if n != victim])
        finished_after = time.monotonic() - answered_at

    failed = {task: state for task, (state, _) in final.items() if state != "success"}
    why = {t: topo.airflow_task_problems(DAG_ID, t) for t in sorted(failed)[:3]}
    assert not failed, (
        f"tasks did not succeed: {failed}; {json.dumps(why, indent=1)}\n{topo.error('logs', airflow_names)}"
    )
    tries = dict(
        topo.psql(
            "airflow",
            f"select task_id, try_number from task_instance where dag_id = '{DAG_ID}' and run_id = '{dag_run_id}'",
        )
    )
    retried = {  # a try that failed (the environment, not the failover): what its log says, printed below
        task: topo.airflow_task_problems(DAG_ID, task).get(1, ["(no warning or error in its log)"])[-1]
        for task, try_number in sorted(tries.items())
        if int(try_number) > 1
    }
    assert host.runs_created("conformance-approval") == TASKS  # exactly one remote run per task
    logs = [p.read_text(errors="replace") for p in topo.airflow_task_logs(DAG_ID).parent.rglob("*.log")]
    assert API_KEY not in "".join(logs) + "".join(topo.log(name) for name in topo.processes)

    orphan_lags = [noticed[t] - killed_at for t in orphans]
    survivor_lags = [noticed[t] - killed_at for t in noticed if t not in orphans]
    pickup_lags = [noticed[t] - picked_up[t] for t in picked_up]
    figures = {
        "tasks": TASKS,
        "held_before_kill": {name: len(tasks) for name, tasks in held_by.items()},
        "all_deferred_s": round(deferred_after, 1),
        "health_check_threshold_s": HEALTH_CHECK_THRESHOLD,
        "kill_to_takeover_s": round(taken_over[0] - killed_at, 1) if taken_over else None,
        "kill_to_all_answered_s": round(answered_at - killed_at, 2),
        "orphans_kill_to_noticed_s": {
            "p50": round(statistics.median(orphan_lags), 1),
            "max": round(max(orphan_lags), 1),
        },
        "orphans_picked_up_to_noticed_s": {  # only those seen assigned to the survivor before they fired
            "p50": round(statistics.median(pickup_lags), 1) if pickup_lags else None,
            "max": round(max(pickup_lags), 1) if pickup_lags else None,
            "seen_picked_up": len(pickup_lags),
        },
        "survivors_kill_to_noticed_s": {
            "p50": round(statistics.median(survivor_lags), 2),
            "max": round(max(survivor_lags), 2),
        },
        "answers_to_all_success_s": round(finished_after, 1),
        "retried": retried,
    }
    with capsys.disabled():
        print(f"\n[topology failover] {json.dumps(figures)}")
    (Path(topo.root) / "figures.json").write_text(json.dumps(figures))


def task_row(topo: Topology, dag_id: str, task_id: str) -> tuple[str, str, int]:
    """``(task instance id, state, try number)`` of the DAG's only run's task."""
    ((ti_id, state, try_number),) = topo.psql(
        "airflow",
        f"select id, coalesce(state, 'none'), try_number from task_instance "
        f"where dag_id = '{dag_id}' and task_id = '{task_id}'",
    )
    return ti_id, state, int(try_number)


def worker_running(topo: Topology, ti_id: str) -> str | None:
    """The Celery worker process (name) whose descendants include the supervisor of task instance ``ti_id``."""
    for name, process in topo.processes.items():
        if not name.startswith("airflow-celery-worker-") or process.poll() is not None:
            continue
        if any(f"supervisor: {ti_id}" in command_line(pid) for pid in descendants(process.pid)):
            return name
    return None


def attempt_log(topo: Topology, dag_id: str, task_id: str, attempt: int) -> str:
    logs = topo.airflow_task_logs(dag_id)
    return "".join(
        p.read_text(errors="replace") for p in logs.glob(f"run_id=*/task_id={task_id}/attempt={attempt}.log")
    )


@pytest.mark.timeout(900, method="thread")
def test_a_retry_after_a_celery_worker_killed_mid_wait_reattaches_to_its_run(topology, dag_runs, capsys):
    """The task waits in the worker (not deferred); SIGKILL to that Celery worker's process group. The scheduler
    fails the task once its heartbeat is missing; the retry, on the other worker, reattaches to the same run."""
    topo, host = topology
    airflow_names = [n for n in topo.processes if n.startswith("airflow-") and topo.processes[n].poll() is None]
    before = host.runs_created("conformance-approval")
    with airflow_api(topo) as api:
        response = api.post(f"/api/v2/dags/{WORKER_DAG_ID}/dagRuns", json={"logical_date": None})
        assert response.status_code == 200, response.text
        dag_runs.append((WORKER_DAG_ID, response.json()["dag_run_id"]))

    def waiting_in_a_worker() -> tuple[str, str] | None:
        if host.runs_created("conformance-approval") != before + 1:
            return None
        ti_id, state, _ = task_row(topo, WORKER_DAG_ID, "waits_in_worker")
        worker = worker_running(topo, ti_id) if state == "running" else None
        return (ti_id, worker) if worker else None

    _, victim = topo.wait_until("the task to wait in a Celery worker", waiting_in_a_worker, 300, watch=airflow_names)
    (run_id,) = host.run_ids()[before:]
    assert host.open_interrupts(run_id), "the run should wait on its approval"
    killed_at = time.monotonic()
    topo.kill(victim)  # SIGKILL to the worker, its supervisor and the task process: no clean-up runs
    alive = [n for n in airflow_names if n != victim]

    def retry_reattached() -> bool:
        _, state, try_number = task_row(topo, WORKER_DAG_ID, "waits_in_worker")
        return (
            try_number >= 2
            and state == "running"
            and "reattached" in attempt_log(topo, WORKER_DAG_ID, "waits_in_worker", try_number)
        )

    topo.wait_until("the retry to reattach to the run", retry_reattached, 300, watch=alive)
    reattached_after = time.monotonic() - killed_at
    with OpenwopClient(host.base_url, api_key=API_KEY) as client:
        client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept"))

    def finished() -> str | None:
        _, state, _ = task_row(topo, WORKER_DAG_ID, "waits_in_worker")
        return state if state in ("success", "failed") else None

    state = topo.wait_until("the retry to finish", finished, 300, watch=alive)
    _, _, try_number = task_row(topo, WORKER_DAG_ID, "waits_in_worker")
    retry_log = attempt_log(topo, WORKER_DAG_ID, "waits_in_worker", try_number)
    assert state == "success", topo.error(f"the retry ended {state}", alive)
    assert host.runs_created("conformance-approval") == before + 1  # no second remote run
    assert f"OpenWOP run {run_id} (reattached)" in retry_log
    assert f"OpenWOP run {run_id} (started)" in attempt_log(topo, WORKER_DAG_ID, "waits_in_worker", 1)
    figures = {
        "killed_worker": victim,
        "task_heartbeat_timeout_s": TASK_HEARTBEAT_TIMEOUT,
        "kill_to_retry_reattached_s": round(reattached_after, 1),
        "retry_try_number": try_number,
    }
    with capsys.disabled():
        print(f"\n[topology worker kill] {json.dumps(figures)}")


def hitl_diagnosis(topo: Topology, host: DevHost, dag_run_id: str | None, before: set[str]) -> str:
    """What a failure of the ask-in-Airflow test needs (best effort, each part on its own): the HITL requests as
    the REST API lists them, the task instances and their triggers, the attempts' logs, the host's view of the
    new runs, then the log tails of the scheduler, the triggerers and the Celery workers."""
    parts = []

    def part(title: str, read: Callable[[], object]) -> None:
        try:
            body = read()
        except Exception as exc:  # a diagnosis must not hide the failure it explains
            body = f"(could not read: {type(exc).__name__}: {exc})"
        parts.append(f"===== {title}\n{body if isinstance(body, str) else json.dumps(body, indent=1, default=str)}")

    if dag_run_id is not None:

        def hitl_details() -> object:
            with airflow_api(topo) as api:
                listed = api.get(f"/api/v2/dags/{HITL_DAG_ID}/dagRuns/{dag_run_id}/hitlDetails").json()
            keep = ("task_id", "map_index", "response_received", "chosen_options", "params_input", "responded_by_user")
            return [
                {k: v for k, v in d.items() if k in keep or k.endswith("_at")} for d in listed.get("hitl_details", [])
            ]

        part("HITL requests (REST API)", hitl_details)
    part(
        "task instances (task, state, try, next_method, trigger id, triggerer job)",
        lambda: topo.psql(
            "airflow",
            "select ti.task_id, coalesce(ti.state, 'none'), ti.try_number, coalesce(ti.next_method, ''), "
            "coalesce(ti.trigger_id, -1), coalesce(t.triggerer_id, -1) from task_instance ti left join trigger t "
            f"on ti.trigger_id = t.id where ti.dag_id = '{HITL_DAG_ID}'",
        ),
    )
    part("triggerer jobs running", topo.airflow_triggerer_jobs)
    part(
        "host: new runs (status, events)",
        lambda: {
            run_id: {
                "status": host.get_run(run_id)["status"],
                "events": [e["type"] for e in host.events(run_id)],
                "open_interrupts": len(host.open_interrupts(run_id)),
            }
            for run_id in host.run_ids()
            if run_id not in before
        },
    )
    logs = topo.airflow_task_logs(HITL_DAG_ID)
    for path in sorted(logs.rglob("attempt=*.log")):
        part(str(path.relative_to(logs)), lambda p=path: p.read_text(errors="replace")[-3000:])
    names = [n for n in topo.processes if n.startswith(("airflow-scheduler", "airflow-triggerer", "airflow-celery"))]
    return "\n".join(parts) + "\n" + str(topo.error("process logs", names))


@pytest.mark.airflow33
@pytest.mark.timeout(1500, method="thread")
def test_questions_asked_in_airflow_are_answered_on_the_rest_api(topology, capsys):
    """``on_interrupt="ask_in_airflow"`` on Postgres and Celery: one task deferred (its question waits in a
    triggerer), one parked in ``awaiting_input``. Each is answered with the call the Required Actions page makes;
    each answer reaches its run once and both tasks succeed.

    A failure (a timed-out wait included: the waits add up to less than the test's timeout, so the message is not
    lost to pytest-timeout) carries :func:`hitl_diagnosis`; each step is printed as it passes."""
    topo, host = topology
    before = set(host.run_ids())
    dag_run_id: str | None = None
    started = time.monotonic()

    def step(what: str) -> None:
        with capsys.disabled():
            print(f"\n    [ask_in_airflow {time.monotonic() - started:5.1f}s] {what}", flush=True)

    try:
        dag_run_id = ask_and_answer_in_airflow(topo, host, before, step)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{hitl_diagnosis(topo, host, dag_run_id, before)}") from exc


def ask_and_answer_in_airflow(topo: Topology, host: DevHost, before: set[str], step: Callable[[str], None]) -> str:
    """The body of the ask-in-Airflow test; returns the DAG run id."""
    alive = [n for n in topo.processes if n.startswith("airflow-") and topo.processes[n].poll() is None]
    with airflow_api(topo) as api:
        response = api.post(f"/api/v2/dags/{HITL_DAG_ID}/dagRuns", json={"logical_date": None})
        assert response.status_code == 200, response.text
        dag_run_id = str(response.json()["dag_run_id"])
        step(f"DAG run {dag_run_id} created")

        def pending(task_id: str, state: str) -> dict | None:
            """The task's question, once it is pending on the Required Actions page with the task in ``state``."""
            if task_row(topo, HITL_DAG_ID, task_id)[1] != state:
                return None
            listed = api.get(
                f"/api/v2/dags/{HITL_DAG_ID}/dagRuns/{dag_run_id}/hitlDetails",
                params={"response_received": "false", "task_id": task_id},
            ).json()["hitl_details"]
            return listed[0] if listed else None

        def settled(task_id: str) -> bool:
            logs = topo.airflow_task_logs(HITL_DAG_ID).rglob(f"task_id={task_id}/attempt=*.log")
            return scheduler_settled(logs, topo.log("airflow-scheduler"), HITL_DAG_ID, task_id)

        for task_id, state in (("asked_deferred", "deferred"), ("asked_parked", "awaiting_input")):
            question = topo.wait_until(
                f"{task_id} to ask in Airflow", lambda t=task_id, s=state: pending(t, s), 300, watch=alive
            )
            step(f"{task_id} asks in Airflow ({state})")
            assert question["subject"] == "Conformance approval"
            topo.wait_until(f"the scheduler to settle {task_id}", lambda t=task_id: settled(t), 120, watch=alive)
            step(f"the scheduler settled {task_id}")
            answered = api.patch(
                f"/api/v2/dags/{HITL_DAG_ID}/dagRuns/{dag_run_id}/taskInstances/{task_id}/-1/hitlDetails",
                json={"chosen_options": ["Approve"], "params_input": {"feedback": "ok"}},
            )
            assert answered.status_code == 200, answered.text
            step(f"{task_id} answered")

    def finished() -> dict[str, str] | None:
        states = {t: task_row(topo, HITL_DAG_ID, t)[1] for t in ("asked_deferred", "asked_parked")}
        return states if all(s in ("success", "failed", "up_for_retry") for s in states.values()) else None

    states = topo.wait_until("both tasks to finish", finished, 300, watch=alive)
    step(f"tasks ended {states}")
    assert states == {"asked_deferred": "success", "asked_parked": "success"}, f"tasks ended {states}"
    new_runs = [r for r in host.run_ids() if r not in before]
    assert len(new_runs) == 2, f"{len(new_runs)} remote runs for 2 tasks"  # one remote run per task
    for run_id in new_runs:
        decisions = [e["payload"]["action"] for e in host.events(run_id) if e["type"] == "approval.received"]
        assert decisions == ["accept"], f"{run_id}: {decisions}"  # the answer reached the run once
        assert host.get_run(run_id)["status"] == "completed"
    return dag_run_id
