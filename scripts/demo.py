"""The main job: OpenWOP workflows run end to end from a real Airflow and a real Prefect against a local host.

1. starts the local OpenWOP host (``openwop_devhost.DevHost``) on a free loopback port;
2. Airflow: a throwaway ``AIRFLOW_HOME`` with SQLite, ``airflow db migrate``, then ``airflow dags test``
   for every DAG in ``example_dags/airflow`` (deferral included; the approval DAG answers its own interrupt);
3. Prefect: every flow in ``example_dags/prefect`` in ephemeral mode (the approval flow is answered through
   Prefect's resume API, as a person in the UI would);
4. prints one line per OpenWOP run: workflow, run id, status, duration, outputs.

Run it with ``make demo``. It cleans up what it started and exits non-zero if any step fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"
PREFECT_PY = ROOT / ".venv-prefect" / "bin" / "python"
API_KEY = "demo-key-not-a-secret"


def _step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def _captured(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(capture_output=True, text=True)`` in a session of its own: on a timeout or an interruption
    (Ctrl-C, a test's timeout) its whole process group is killed, children included (an ephemeral Prefect
    server, Airflow's helpers), not only the command."""
    with subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=10)
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _run(cmd: list[str], env: dict[str, str], *, label: str, timeout: float = 600, echo: bool = False) -> float:
    """Run one command, show its last lines on failure (its indented lines with ``echo``), return its wall time."""
    started = time.monotonic()
    proc = _captured(cmd, env, timeout)
    took = time.monotonic() - started
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise SystemExit(f"demo: {label} failed (exit {proc.returncode}) after {took:.0f}s:\n{tail}")
    if echo:
        print("\n".join(line for line in proc.stdout.splitlines() if line.startswith("    ")), flush=True)
    print(f"    {label}: ok in {took:.1f}s", flush=True)
    return took


def airflow_env(base_url: str, home: Path) -> dict[str, str]:
    """Environment for a throwaway Airflow: SQLite under ``home``, our example DAGs, the openwop connection."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags" / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_OPENWOP_DEFAULT": json.dumps({"conn_type": "openwop", "host": base_url, "password": API_KEY}),
        }
    )
    return env


def airflow_dag_ids(env: dict[str, str]) -> list[str]:
    """The example DAG ids, as Airflow itself parses them (``dags reserialize``, then ``dags list``)."""
    airflow = [str(AIRFLOW_PY), "-m", "airflow", "dags"]
    for command in ([*airflow, "reserialize"], [*airflow, "list", "-o", "json", "--columns", "dag_id,tags"]):
        proc = _captured(command, env, 300)
        if proc.returncode != 0:
            raise SystemExit(f"demo: {' '.join(command[2:])} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    listed = next((line for line in proc.stdout.splitlines() if line.startswith("[{")), "[]")
    dags = json.loads(listed)
    if not dags:
        raise SystemExit(f"demo: Airflow found no DAGs in {env['AIRFLOW__CORE__DAGS_FOLDER']}:\n{proc.stdout[-2000:]}")
    # DAGs that wait for a person in Airflow's own UI are shown by `make ui`, not run unattended here.
    return sorted(d["dag_id"] for d in dags if "human-in-the-loop" not in _tag_names(d))


def _tag_names(dag: dict[str, object]) -> set[str]:
    """Tag names of a listed DAG (Airflow lists tags as objects with a ``name``)."""
    tags = dag.get("tags")
    return {t["name"] if isinstance(t, dict) else str(t) for t in tags} if isinstance(tags, list) else set()


def run_airflow(base_url: str) -> None:
    """Every example DAG through ``airflow dags test`` (the trigger runs inline, as in a triggerer)."""
    home = Path(tempfile.mkdtemp(prefix="openwop-demo-airflow-"))
    try:
        env = airflow_env(base_url, home)
        _run([str(AIRFLOW_PY), "-m", "airflow", "db", "migrate"], env, label="airflow db migrate")
        for dag_id in airflow_dag_ids(env):
            _run([str(AIRFLOW_PY), "-m", "airflow", "dags", "test", dag_id], env, label=f"airflow dags test {dag_id}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_prefect(base_url: str) -> None:
    """Every example flow in one ephemeral Prefect process (``scripts/demo_prefect.py``)."""
    home = Path(tempfile.mkdtemp(prefix="openwop-demo-prefect-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            {
                "PREFECT_HOME": str(home),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOGGING_LEVEL": "WARNING",
                # the temporary server starts in ~10 s here, but a busy 2-core machine needs more than the 20 s default
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
                "OPENWOP_BASE_URL": base_url,
                "OPENWOP_API_KEY": API_KEY,
            }
        )
        _run([str(PREFECT_PY), str(ROOT / "scripts" / "demo_prefect.py")], env, label="prefect flows", echo=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def summary(host: object) -> list[dict[str, object]]:
    """One row per OpenWOP run the host saw."""
    rows = []
    for run_id in host.run_ids():  # type: ignore[attr-defined]
        snap = host.get_run(run_id)  # type: ignore[attr-defined]
        rows.append(
            {
                "workflow": snap.get("workflowId"),
                "run_id": run_id,
                "status": snap.get("status"),
                "duration_ms": snap.get("durationMs") or _duration_ms(snap),
                "outputs": snap.get("variables", {}),
            }
        )
    return rows


def _duration_ms(snap: dict[str, object]) -> int | None:
    from datetime import datetime

    start, end = snap.get("startedAt"), snap.get("completedAt") or snap.get("endedAt")
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return int((parse(end) - parse(start)).total_seconds() * 1000)


def main(parts: tuple[str, ...] = ("airflow", "prefect")) -> list[dict[str, object]]:
    """Run the demo; returns the summary rows (the test of this entry point reads them)."""
    from openwop_devhost import DevHost

    with DevHost(api_key=API_KEY) as host:
        _step(f"local OpenWOP host at {host.base_url}")
        if "airflow" in parts:
            _step("Airflow: example DAGs with airflow dags test")
            run_airflow(host.base_url)
        if "prefect" in parts:
            _step("Prefect: example flows (ephemeral Prefect)")
            run_prefect(host.base_url)
        rows = summary(host)
    _step(f"{len(rows)} OpenWOP runs")
    print(f"    {'workflow':34} {'run id':38} {'status':10} {'ms':>6}  outputs")
    for row in rows:
        outputs = json.dumps(row["outputs"], default=str)
        outputs = outputs if len(outputs) <= 60 else outputs[:57] + "..."
        print(
            f"    {row['workflow']!s:34} {row['run_id']!s:38} {row['status']!s:10} {row['duration_ms']!s:>6}  {outputs}"
        )
    bad = [r for r in rows if r["status"] not in ("completed", "cancelled", "failed")]
    if not rows or bad:
        raise SystemExit(f"demo: {len(bad)} runs did not finish: {bad}")
    return rows


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("airflow", "prefect"))
