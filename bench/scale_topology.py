"""Scale on the production topology (``tests/prod_topology.py``: Postgres, Redis, Airflow with the CeleryExecutor
and two triggerers, a Prefect server on Postgres with two process workers), measured from outside as an operator
would see it.

Airflow (``--waits``, default 1,000): one DAG run of a mapped deferred ``OpenwopRunOperator`` (``.expand``) on
``conformance-approval`` runs; the tasks go through the scheduler and the Celery workers, create their runs and
defer, spread over both triggerers. Then:

1. the waits held by each triggerer, and each triggerer's RSS (its process tree: the ``airflow triggerer``
   supervisor and its trigger runner) minus its RSS before the DAG run;
2. idle CPU of each triggerer over 15 s (one whole keepalive period of the host) with every wait open;
3. half the runs are answered at 100 per second: completion noticed = the time the task instance left
   ``deferred`` in the metadata database (its trigger fired and the triggerer recorded it; polled every 0.2 s,
   each run matched to its mapped task by the ``i`` in its inputs) minus the run's ``completedAt`` on the host,
   p50/p99; beside it the same from the triggerer's ``Trigger fired event`` log line, for the runs whose
   trigger log has one (the trigger's own latency, without the triggerer's round trip to the database);
4. the triggerer holding more of the rest is killed with SIGKILL; the time until the survivor is assigned all
   the orphaned waits (Airflow's health check, ``triggerer_health_check_threshold`` = 10 s here), its RSS and
   idle CPU holding them all;
5. the other half answered at 100 per second: completion noticed on the survivor, p50/p99; every task succeeds
   and the host saw one run per task.

Prefect (``--flow-runs``, default 200): the shipped flow deployed by module entrypoint to the process work
pool; that many flow runs of ``conformance-delay`` (1 s on the host) created at once through the API with the
credentials block chosen by reference; throughput (flow runs completed per minute), created-to-running and
created-to-completed p50/p99 (Prefect's own timestamps), one remote run per flow run. The work runs in
``.venv-prefect`` (``bench/scale_prefect_runs.py``); Airflow and Prefect cannot share an environment.

The local OpenWOP host runs in this process (it counts its runs and answers no faster than asked). Figures are
printed and written to the ``scale`` section of docs/benchmarks.md; no goals are asserted by the issue beyond
correctness, which is reported.

    .venv-bench/bin/python -m bench.scale_topology [--waits 1000] [--flow-runs 200] [--only airflow|prefect]
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench._common import API_KEY, ROOT, header, machine_line, options, percentile, publish, table

sys.path.insert(0, str(ROOT / "tests"))
from prod_topology import Topology

from openwop_core import OpenwopClient, resume
from openwop_devhost import DevHost

MB = 1024 * 1024
DAG_ID = "openwop_scale"
#: Answers (hence finished runs) per second in the completion phases.
FINISH_RATE = 100
#: The keepalive period of the host: the idle window covers one whole period.
KEEPALIVE = 15.0
HEALTH_CHECK_THRESHOLD = 10
#: Concurrent flow runs per Prefect worker (``prefect worker start --limit``).
PREFECT_WORKER_LIMIT = 5
FIRED = re.compile(r'"timestamp":"([^"]+)".*"event":"Trigger fired event".*?\'run_id\': \'(run_\w+)\'')


def dag_file(waits: int) -> str:
    """One DAG of ``waits`` mapped deferred waits on approvals."""
    return textwrap.dedent(
        f'''
        """{waits} deferred OpenWOP waits (a mapped operator), each on an approval the benchmark answers."""
        import pendulum
        from airflow.sdk import DAG

        from openwop_airflow.operators.run import OpenwopRunOperator

        with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False,
                 max_active_tasks={waits}):
            OpenwopRunOperator.partial(
                task_id="wait", workflow_id="conformance-approval", deferrable=True, max_active_tis_per_dag={waits}
            ).expand(inputs=[{{"i": i}} for i in range({waits})])
        '''
    )


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    proc = psutil.Process(pid)
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its live descendants."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def idle_cpu(pids: dict[str, int], window: float) -> dict[str, float]:
    """Percent of one core each process tree used over ``window`` seconds."""
    before = {name: tree_cpu(pid) for name, pid in pids.items()}
    time.sleep(window)
    return {name: 100.0 * (tree_cpu(pid) - before[name]) / window for name, pid in pids.items()}


def epoch(stamp: str) -> float:
    """Seconds since the epoch of an ISO-8601 timestamp (``Z`` allowed)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class DeferralWatch(threading.Thread):
    """Polls the mapped task instances every 0.2 s and notes when each first leaves ``deferred``."""

    def __init__(self, topo: Topology) -> None:
        super().__init__(daemon=True)
        self.topo = topo
        self.left: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            rows = self.topo.psql(
                "airflow",
                f"select map_index, state from task_instance where dag_id = '{DAG_ID}' and state <> 'deferred'",
            )
            now = time.time()
            for map_index, _state in rows:
                self.left.setdefault(int(map_index), now)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


class AirflowScale:
    """The Airflow half: bring-up, the DAG run, the phases above."""

    def __init__(self, topo: Topology, host: DevHost, waits: int) -> None:
        self.topo, self.host, self.waits = topo, host, waits
        self.figures: dict[str, Any] = {"waits": waits}

    def psql_one(self, sql: str) -> list[list[str]]:
        return self.topo.psql("airflow", sql)

    def held(self) -> dict[int, int]:
        """``{triggerer job id: deferred waits assigned to it}``."""
        rows = self.psql_one(
            "select coalesce(t.triggerer_id, -1), count(*) from task_instance ti "
            f"join trigger t on ti.trigger_id = t.id where ti.dag_id = '{DAG_ID}' and ti.state = 'deferred' group by 1"
        )
        return {int(job): int(n) for job, n in rows}

    def states(self) -> dict[str, int]:
        rows = self.psql_one(
            f"select coalesce(state, 'none'), count(*) from task_instance where dag_id = '{DAG_ID}' group by 1"
        )
        return {state: int(n) for state, n in rows}

    def fired_at(self) -> dict[str, float]:
        """``{run id: epoch seconds}`` at which a triggerer logged that the run's trigger fired (each trigger's
        own log file, ``...attempt=N.log.trigger.<id>.log``, whichever triggerer ran it)."""
        found: dict[str, float] = {}
        for path in (self.topo.root / "airflow-home" / "logs").rglob("*.log.trigger.*"):
            for line in path.read_text(errors="replace").splitlines():
                if (match := FIRED.search(line)) is not None:
                    found.setdefault(match.group(2), epoch(match.group(1)))
        return found

    def answer(self, client: OpenwopClient, run_ids: list[str]) -> float:
        """Answer the runs' approvals at ``FINISH_RATE`` per second; returns how long it took."""
        started = time.monotonic()

        def one(i_run: tuple[int, str]) -> None:
            i, run_id = i_run
            delay = started + i / FINISH_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept"))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one, enumerate(run_ids)))
        return time.monotonic() - started

    def noticed(
        self, watch: DeferralWatch, run_ids: list[str], timeout: float = 300
    ) -> tuple[list[float], list[float]]:
        """Wait until every run's task instance left ``deferred``; seconds from each run's ``completedAt`` to
        that, and to its ``Trigger fired event`` log line where the trigger's log has one."""
        index = {run_id: int(self.host.get_run(run_id)["inputs"]["i"]) for run_id in run_ids}
        deadline = time.monotonic() + timeout
        while not all(i in watch.left for i in index.values()) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(2)  # the last log lines reach their files
        fired = self.fired_at()
        in_db, in_log = [], []
        for run_id, i in index.items():
            completed = self.host.get_run(run_id).get("completedAt")
            if not completed:
                continue
            if i in watch.left:
                in_db.append(watch.left[i] - epoch(completed))
            if run_id in fired:
                in_log.append(fired[run_id] - epoch(completed))
        return in_db, in_log

    def wait_quiet(self, pid: int, below: float = 10.0, timeout: float = 300) -> float:
        """Wait until a triggerer's tree uses under ``below``% of a core for 2 s; returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if idle_cpu({"t": pid}, 2.0)["t"] < below:
                break
        return time.monotonic() - started

    def run(self) -> None:
        topo, host, figures = self.topo, self.host, self.figures
        names = list(topo.triggerer_jobs)
        pids = {name: topo.processes[name].pid for name in names}
        rss_before = {name: tree_rss(pid) for name, pid in pids.items()}
        token = httpx.get(f"{topo.airflow_url}/auth/token", timeout=30).json()["access_token"]
        api = httpx.Client(base_url=topo.airflow_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        response = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
        response.raise_for_status()
        started = time.monotonic()
        watch = [n for n in topo.processes if n.startswith("airflow-")]
        topo.wait_until(
            f"all {self.waits} tasks deferred in a triggerer",
            lambda: sum(n for job, n in self.held().items() if job >= 0) == self.waits or None,
            3600,
            watch=watch,
            every=2,
        )
        figures["trigger_dag_run_to_all_deferred_s"] = round(time.monotonic() - started, 1)
        for pid in pids.values():
            self.wait_quiet(pid)
        held = self.held()
        by_name = {name: held.get(job, 0) for name, job in topo.triggerer_jobs.items()}
        figures["held"] = by_name
        figures["rss_added_mb"] = {n: round((tree_rss(p) - rss_before[n]) / MB, 1) for n, p in pids.items()}
        figures["rss_total_mb"] = {n: round(tree_rss(p) / MB, 1) for n, p in pids.items()}
        figures["idle_cpu_pct"] = {n: round(v, 2) for n, v in idle_cpu(pids, KEEPALIVE).items()}

        run_ids = [r for r in host.run_ids() if host.get_run(r).get("workflowId") == "conformance-approval"]
        figures["remote_runs_at_defer"] = len(run_ids)
        first, rest = run_ids[: len(run_ids) // 2], run_ids[len(run_ids) // 2 :]
        leaving = DeferralWatch(topo)
        leaving.start()
        with OpenwopClient(host.base_url, api_key=API_KEY) as client:
            figures["answer_first_half_s"] = round(self.answer(client, first), 1)
            in_db, in_log = self.noticed(leaving, first)
            figures["noticed_both_ms"] = self.lag_figures(in_db, len(first))
            figures["fired_both_ms"] = self.lag_figures(in_log, len(first))

            held = self.held()
            by_name = {name: held.get(job, 0) for name, job in topo.triggerer_jobs.items()}
            victim = max(by_name, key=lambda n: by_name[n])
            (survivor,) = [n for n in names if n != victim]
            survivor_job = topo.triggerer_jobs[survivor]
            figures["held_before_kill"] = by_name
            killed = time.monotonic()
            topo.kill(victim)
            topo.wait_until(
                "the surviving triggerer to hold every remaining wait",
                lambda: set(self.held()) <= {survivor_job} or None,
                600,
                watch=[n for n in watch if n != victim],
                every=0.5,
            )
            figures["kill_to_takeover_s"] = round(time.monotonic() - killed, 1)
            figures["takeover_to_quiet_s"] = round(self.wait_quiet(pids[survivor]), 1)
            figures["survivor_holds"] = sum(self.held().values())
            figures["survivor_rss_total_mb"] = round(tree_rss(pids[survivor]) / MB, 1)
            figures["survivor_idle_cpu_pct"] = round(idle_cpu({survivor: pids[survivor]}, KEEPALIVE)[survivor], 2)
            figures["answer_second_half_s"] = round(self.answer(client, rest), 1)
            in_db, in_log = self.noticed(leaving, rest)
            figures["noticed_survivor_ms"] = self.lag_figures(in_db, len(rest))
            figures["fired_survivor_ms"] = self.lag_figures(in_log, len(rest))
        leaving.stop()

        topo.wait_until(
            "every task to finish",
            lambda: ((s := self.states()) and set(s) <= {"success", "failed", "upstream_failed"}) or None,
            900,
            watch=[n for n in watch if n in topo.processes and topo.processes[n].poll() is None],
            every=2,
        )
        figures["task_states"] = self.states()
        figures["remote_runs_at_end"] = host.runs_created("conformance-approval")
        api.close()

    @staticmethod
    def lag_figures(lags: list[float], expected: int) -> dict[str, Any]:
        ms = [1000 * v for v in lags]
        return {
            "runs": expected,
            "noticed": len(ms),
            "p50": round(percentile(ms, 50)) if ms else None,
            "p99": round(percentile(ms, 99)) if ms else None,
            "max": round(max(ms)) if ms else None,
        }


def airflow_part(waits: int, root: Path) -> dict[str, Any]:
    """Bring up Airflow's part of the topology around a host in this process and measure it."""
    dags = root / "dags"
    dags.mkdir(parents=True)
    (dags / "openwop_scale.py").write_text(dag_file(waits))
    with DevHost(api_key=API_KEY, keepalive_interval=KEEPALIVE) as host:
        topo = Topology(
            root / "airflow",
            devhost_url=host.base_url,
            api_key=API_KEY,
            airflow_dags=dags,
            worker_concurrency=8,
            airflow_env={
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_THRESHOLD),
                "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, waits)),
                "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, waits)),
                "AIRFLOW__CORE__PARALLELISM": "64",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            },
        )
        try:
            topo.up(["airflow"])
            scale = AirflowScale(topo, host, waits)
            started = time.monotonic()
            try:
                scale.run()
            finally:
                scale.figures["phase_s"] = round(time.monotonic() - started, 1)
                print(f"[scale airflow] {json.dumps(scale.figures)}", flush=True)
            return scale.figures
        finally:
            topo.stop_all()


def prefect_part(flow_runs: int, root: Path) -> dict[str, Any]:
    """Bring up Prefect's part of the topology and measure deployment runs (in ``.venv-prefect``)."""
    with DevHost(api_key=API_KEY) as host:
        topo = Topology(
            root / "prefect",
            devhost_url=host.base_url,
            api_key=API_KEY,
            prefect_worker_limit=PREFECT_WORKER_LIMIT,
            prefect_env={"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"},
        )
        try:
            topo.up(["prefect"])
            before = host.runs_created("conformance-delay")
            out = subprocess.run(
                [
                    str(ROOT / ".venv-prefect" / "bin" / "python"),
                    str(ROOT / "bench" / "scale_prefect_runs.py"),
                    "--flow-runs",
                    str(flow_runs),
                    "--block",
                    topo.prefect_block,
                    "--pool",
                    topo.work_pool,
                    "--worker-limit",
                    str(PREFECT_WORKER_LIMIT),
                ],
                env={**topo.prefect_env(), "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"scale_prefect_runs failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
            figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            figures["remote_runs"] = host.runs_created("conformance-delay") - before
            print(f"[scale prefect] {json.dumps(figures)}", flush=True)
            return figures
        finally:
            topo.stop_all()


def lag_cell(lag: dict[str, Any]) -> str:
    """``p50 / p99 / max ms (noticed of runs)``."""
    return f"{lag['p50']} / {lag['p99']} / {lag['max']} ms ({lag['noticed']} of {lag['runs']})"


def airflow_table(f: dict[str, Any]) -> str:
    """The Airflow figures as a Markdown table."""
    names = sorted(f["held"])

    def per(key: str, fmt: str = "{}") -> str:
        return ", ".join(fmt.format(f[key][n]) for n in names)

    rss = ", ".join(f"{f['rss_total_mb'][n]} / +{f['rss_added_mb'][n]} MB" for n in names)
    survivor = f"{f['survivor_holds']:,} / {f['survivor_rss_total_mb']} MB / {f['survivor_idle_cpu_pct']}%"
    rows = [
        ["deferred waits (mapped task instances) held per triggerer", per("held", "{:,}")],
        ["DAG run triggered to all waits deferred (scheduler, Celery)", f"{f['trigger_dag_run_to_all_deferred_s']} s"],
        ["RSS per triggerer (process tree) / added by its waits", rss],
        ["idle CPU per triggerer over 15 s, % of one core", per("idle_cpu_pct", "{}%")],
        [f"noticed on both, {FINISH_RATE} runs/s finishing: p50 / p99 / max", lag_cell(f["noticed_both_ms"])],
        ["the same, trigger fired (log line, where the trigger log has one)", lag_cell(f["fired_both_ms"])],
        ["SIGKILL of one triggerer to the survivor holding every wait", f"{f['kill_to_takeover_s']} s"],
        ["takeover to the survivor quiet again (orphaned waits restarted)", f"{f['takeover_to_quiet_s']} s"],
        ["survivor after takeover: waits / RSS / idle CPU", survivor],
        [f"noticed on the survivor, {FINISH_RATE} runs/s: p50 / p99 / max", lag_cell(f["noticed_survivor_ms"])],
        ["the same, trigger fired (log line, where the trigger log has one)", lag_cell(f["fired_survivor_ms"])],
        ["task states at the end / remote runs on the host", f"{f['task_states']} / {f['remote_runs_at_end']:,}"],
    ]
    return table(["measure", "value"], rows)


def prefect_table(f: dict[str, Any]) -> str:
    """The Prefect figures as a Markdown table."""

    def spread(key: str) -> str:
        return f"{f[key]['p50']} / {f[key]['p99']} s"

    rows = [
        [
            "flow runs created at once / completed / remote runs",
            f"{f['flow_runs']} / {f['completed']} / {f['remote_runs']}",
        ],
        ["workers x limit", f"2 x {f['worker_limit']}"],
        ["throughput, first created to last completed", f"{f['throughput_per_min']} flow runs/min"],
        ["created to running: p50 / p99", spread("to_running_s")],
        ["running to completed (remote run 1 s): p50 / p99", spread("running_s")],
        ["created to completed: p50 / p99", spread("to_completed_s")],
    ]
    return table(["measure", "value"], rows)


def main() -> int:
    parser = options(__doc__.splitlines()[0], waits=1000, flow_runs=200)
    parser.add_argument("--only", choices=["airflow", "prefect"])
    args = parser.parse_args()
    machine = machine_line()
    print(header("Scale on the production topology"))
    root = Path(tempfile.mkdtemp(prefix="openwop-bench-scale-"))
    blocks: list[str] = []
    if args.only in (None, "airflow"):
        f = airflow_part(args.waits, root)
        blocks.append(
            f"Airflow 3 on Postgres with the CeleryExecutor (2 workers x 8), two triggerers "
            f"(`triggerer_health_check_threshold` {HEALTH_CHECK_THRESHOLD} s, `job_heartbeat_sec` 2), "
            f"one DAG run of {args.waits:,} mapped deferred `OpenwopRunOperator` waits on approvals, host in the "
            f'benchmark process (keepalive {KEEPALIVE:.0f} s); "noticed" is when the task instance left `deferred` '
            f'in the metadata database (polled every 0.2 s) minus the run\'s `completedAt`; "trigger fired" takes '
            f"the trigger's `Trigger fired event` log line instead:\n\n{airflow_table(f)}"
        )
    if args.only in (None, "prefect"):
        f = prefect_part(args.flow_runs, root)
        blocks.append(
            f"Prefect server on Postgres, process work pool with two workers (`--limit {PREFECT_WORKER_LIMIT}`, "
            f"polling every 1 s), the shipped flow deployed by module entrypoint, {args.flow_runs} flow runs of "
            f"`conformance-delay` (1 s on the host) created at once, credentials block by reference:\n\n"
            + prefect_table(f)
        )
    publish(
        "scale",
        "## 6. Scale on the production topology",
        machine,
        blocks,
        blocks,
        write=not args.no_write,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
