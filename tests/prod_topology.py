"""The production topology on one machine: real processes in a temporary folder, each in its own process group.

    Postgres     the Debian ``postgresql`` server, a throwaway cluster (``initdb``), databases ``airflow`` and
                 ``prefect``; run as the ``postgres`` user when we are root (it refuses to run as root)
    Redis        ``redis-server``, the Celery broker
    Airflow      Postgres metadata database, ``CeleryExecutor``: api-server, scheduler, dag-processor, two
                 ``airflow triggerer`` and two ``airflow celery worker`` processes (from ``.venv-airflow``)
    Prefect      ``prefect server start`` on Postgres (asyncpg), a ``process`` work pool and two
                 ``prefect worker`` processes (from ``.venv-prefect``)
    OpenWOP      the local host ``openwop-devhost`` (from ``.venv-core``), unless a running one is passed in

Used by the topology tests (``tests/airflow/test_prod_topology.py``), by ``make prod`` (``scripts/prod.sh``:
``python tests/prod_topology.py``) and meant for ``make bench``. Only the standard library is imported, so it
runs in any of the project's environments. Missing ``postgresql`` / ``redis-server`` are installed with
``apt-get`` when we are root (as on CI); otherwise the error says what to install.

Every process is stopped by its PID with its whole process group (SIGTERM, SIGKILL after a grace period), see
``process_hygiene``. A failing bring-up raises :class:`TopologyError` with the tails of the logs of the
processes involved, without HTTP access lines.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_hygiene import start_process, stop_process_tree

REPO = Path(__file__).resolve().parents[1]
ALL_COMPONENTS = ("postgres", "redis", "devhost", "airflow", "prefect")
#: The OpenWOP API key of ``make prod`` unless ``PROD_API_KEY`` sets one (documented, so no secret).
DEFAULT_API_KEY = "dev-key"
#: The environment variables of ``make prod`` that choose each service's port.
PORT_VARIABLES = {
    "postgres": "PROD_POSTGRES_PORT",
    "redis": "PROD_REDIS_PORT",
    "devhost": "PROD_OPENWOP_PORT",
    "airflow": "PROD_AIRFLOW_PORT",
    "prefect": "PROD_PREFECT_PORT",
}
#: Lines left out of the logs that a failure shows: per-request access lines drown the cause.
ACCESS_LINE_MARKERS = (
    "http.access",
    '" 200',
    '" 201',
    '" 204',
    '" 304',
    "GET /api/v2/monitor/health",
    "uvicorn.access",
)


class TopologyError(RuntimeError):
    """The topology could not be brought up (or a process of it died); the message carries the relevant logs."""


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``127.0.0.1:port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on now (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str, timeout: float = 3.0) -> int | None:
    """The HTTP status ``url`` answers with, ``None`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _postgres_bin() -> Path | None:
    """The folder of the newest installed PostgreSQL server binaries (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def ensure_system_packages() -> None:
    """Install the Debian ``postgresql`` and ``redis-server`` packages when they are missing (root only)."""
    missing = []
    if _postgres_bin() is None:
        missing.append("postgresql")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if not missing:
        return
    if os.geteuid() != 0:
        raise TopologyError(
            f"{' and '.join(missing)} not installed: run `sudo apt-get install -y {' '.join(missing)}` (Debian "
            "packages), then try again"
        )
    print(f"prod-topology: installing {' '.join(missing)} with apt-get", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise TopologyError(f"`{' '.join(args)}` failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


class Topology:
    """The processes of the production topology, their ports, environments and logs.

    ``root``: the folder for data and logs (a new temporary one by default, removed by :meth:`stop_all`).
    ``ports``: wanted ports by service (``postgres``, ``redis``, ``devhost``, ``airflow``, ``prefect``); a wanted
    port that is taken is an error naming it, an unnamed one is picked free. ``devhost_url``/``api_key``: use a
    running OpenWOP host instead of starting one. ``airflow_dags``: the DAGs folder (default
    ``example_dags/airflow``). ``airflow_env``: extra ``AIRFLOW__*`` settings for every Airflow process.
    ``prefect_env``: extra ``PREFECT_*`` settings for the Prefect server, CLI and workers;
    ``prefect_worker_limit``: each worker's ``--limit`` (concurrent flow runs; none by default).
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        ports: dict[str, int] | None = None,
        devhost_url: str | None = None,
        api_key: str = DEFAULT_API_KEY,
        workflows_dir: Path | None = None,
        airflow_dags: Path | None = None,
        airflow_env: dict[str, str] | None = None,
        celery_workers: int = 2,
        worker_concurrency: int = 4,
        triggerers: int = 2,
        prefect_workers: int = 2,
        prefect_worker_limit: int | None = None,
        prefect_env: dict[str, str] | None = None,
        work_pool: str = "openwop-process-pool",
        prefect_block: str = "openwop-local",
        airflow_venv: Path = REPO / ".venv-airflow",
        prefect_venv: Path = REPO / ".venv-prefect",
        core_venv: Path = REPO / ".venv-core",
        verbose: bool = True,
    ) -> None:
        self.verbose = verbose
        self._started = time.monotonic()
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="openwop-prod-")) if root is None else root
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ports: dict[str, int] = {}
        for name in ("postgres", "redis", "devhost", "airflow", "prefect"):
            wanted = (ports or {}).get(name)
            self.ports[name] = wanted if wanted else free_port()
        self._wanted_ports = dict(ports or {})
        self.api_key = api_key
        self._devhost_url = devhost_url
        self._start_devhost = devhost_url is None
        self.workflows_dir = workflows_dir
        self.airflow_dags = airflow_dags or REPO / "example_dags" / "airflow"
        self.airflow_extra_env = dict(airflow_env or {})
        self.celery_workers = celery_workers
        self.worker_concurrency = worker_concurrency
        self.triggerers = triggerers
        self.prefect_workers = prefect_workers
        self.prefect_worker_limit = prefect_worker_limit
        self.prefect_extra_env = dict(prefect_env or {})
        self.work_pool = work_pool
        self.prefect_block = prefect_block
        self.airflow_venv = airflow_venv
        self.prefect_venv = prefect_venv
        self.core_venv = core_venv
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        #: ``{process name: triggerer job id}`` of the triggerers started here.
        self.triggerer_jobs: dict[str, int] = {}
        self._pg_dir: Path | None = None
        self._pg_bin: Path | None = None
        self._secret = secrets.token_hex(16)  # the API server's secret key and JWT secret
        self._airflow_checked = False

    def say(self, message: str) -> None:
        """A progress line on stderr (with the seconds since the start), when ``verbose``."""
        if self.verbose:
            print(f"    [{time.monotonic() - self._started:5.0f}s] {message}", file=sys.stderr, flush=True)

    # ── URLs ──────────────────────────────────────────────────────────────────

    @property
    def devhost_url(self) -> str:
        """The OpenWOP host's base URL: the one passed in, or the one started here."""
        return self._devhost_url or f"http://127.0.0.1:{self.ports['devhost']}"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['airflow']}"

    @property
    def prefect_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prefect']}"

    @property
    def prefect_api_url(self) -> str:
        return f"{self.prefect_url}/api"

    def postgres_url(self, database: str, driver: str = "") -> str:
        """A URL of one of the cluster's databases (user ``postgres``, no password: trust on loopback)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{self.ports['postgres']}/{database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    # ── processes ─────────────────────────────────────────────────────────────

    def start(
        self, name: str, args: list[str], *, env: dict[str, str] | None = None, **popen: Any
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process in its own process group; its output goes to ``logs/<name>.log``."""
        with open(self.logs / f"{name}.log", "ab") as log:
            process = start_process(
                args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **popen
            )
        self.processes[name] = process
        return process

    def run(self, name: str, args: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
        """Run a command to completion (output appended to ``logs/<name>.log``); a failure raises with it."""
        try:
            result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise self.error(f"`{' '.join(args)}` did not finish within {timeout:.0f}s", [name]) from exc
        with open(self.logs / f"{name}.log", "a") as log:
            log.write(f"$ {' '.join(args)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise self.error(f"`{' '.join(args)}` failed (exit {result.returncode})", [name])
        return result.stdout

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop one process and its group with ``sig`` (SIGKILL: a crash, nothing cleans up)."""
        stop_process_tree(self.processes[name], sig=sig)

    def stop_all(self) -> None:
        """Stop every process, all at once but the databases last (they outlive their clients), then remove
        the temporary folder if we made it."""
        databases = [n for n in ("postgres", "redis") if n in self.processes]
        clients = [n for n in self.processes if n not in databases]
        for group in (clients, databases):
            threads = [threading.Thread(target=self._stop, args=(name,)) for name in group]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)

    def _stop(self, name: str) -> None:
        with contextlib.suppress(Exception):
            stop_process_tree(self.processes[name], grace=15.0)

    def check_alive(self, names: Iterable[str] | None = None) -> None:
        """Raise with its log if one of the processes has exited."""
        for name in names or list(self.processes):
            process = self.processes[name]
            if process.poll() is not None:
                raise self.error(f"{name} exited (code {process.returncode})", [name])

    def wait_until(
        self,
        what: str,
        predicate: Callable[[], Any],
        timeout: float,
        *,
        watch: Iterable[str] = (),
        every: float = 1,
        describe: Callable[[], str] | None = None,
    ) -> Any:
        """Poll ``predicate`` until it returns something true; raise with the watched processes' logs on a
        timeout or when one of them exits, led by ``describe()`` (what was seen instead) when given."""
        watch = list(watch)
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            self.check_alive(watch)
            if time.monotonic() > deadline:
                seen = f"; seen instead: {describe()}" if describe else ""
                raise self.error(f"timed out after {timeout:.0f}s waiting for {what}{seen}", watch)
            time.sleep(every)

    # ── logs ──────────────────────────────────────────────────────────────────

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, name: str, chars: int = 4000) -> str:
        """The end of a process's log without HTTP access lines."""
        lines = [line for line in self.log(name).splitlines() if not any(m in line for m in ACCESS_LINE_MARKERS)]
        return "\n".join(lines)[-chars:]

    def error(self, message: str, names: Iterable[str] = ()) -> TopologyError:
        """A :class:`TopologyError` with the tails of the named processes' logs (all of them when none)."""
        names = list(names) or list(self.processes)
        parts = [message]
        for name in names:
            parts.append(f"===== {self.logs / (name + '.log')}\n{self.log_tail(name)}")
        return TopologyError("\n".join(parts))

    # ── Postgres ──────────────────────────────────────────────────────────────

    def _port(self, service: str, what: str) -> int:
        """The service's port, checked free: a chosen one that is taken is an error naming it; a picked one
        that something took meanwhile is picked again."""
        port = self.ports[service]
        if port_is_free(port):
            return port
        if service in self._wanted_ports:
            raise TopologyError(
                f"port {port} for {service} is taken: stop whatever listens there, or choose another, "
                f"e.g. {what}={port + 1} make prod"
            )
        self.ports[service] = free_port()
        return self.ports[service]

    def start_postgres(self) -> None:
        """A throwaway cluster in its own folder, owned by ``postgres`` when we are root; databases ``airflow``
        and ``prefect``. Durability is off (fsync): the cluster dies with the topology anyway."""
        ensure_system_packages()
        self._pg_bin = _postgres_bin()
        assert self._pg_bin is not None
        port = self._port("postgres", PORT_VARIABLES["postgres"])
        self._pg_dir = Path(tempfile.mkdtemp(prefix="openwop-pg-"))
        data = self._pg_dir / "data"
        user: dict[str, Any] = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self._pg_dir, pw.pw_uid, pw.pw_gid)
            user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(self._pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            capture_output=True,
            text=True,
            check=False,
            cwd=self._pg_dir,
            **user,
        )
        if result.returncode != 0:
            raise TopologyError(f"initdb failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(self._pg_dir),
            "max_connections": "400",
            "shared_buffers": "128MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        args = [str(self._pg_bin / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self.start("postgres", args, cwd=self._pg_dir, **user)
        self.wait_until("Postgres to accept connections", lambda: self._pg_ready(), 60, watch=["postgres"], every=0.3)
        for database in ("airflow", "prefect"):
            self.psql("postgres", f"CREATE DATABASE {database}")
        self.say(f"Postgres up on port {port} (data in {self._pg_dir})")

    def _pg_ready(self) -> bool:
        assert self._pg_bin is not None
        ready = self._pg_bin / "pg_isready"
        args = [str(ready), "-h", "127.0.0.1", "-p", str(self.ports["postgres"]), "-U", "postgres"]
        return subprocess.run(args, capture_output=True, check=False).returncode == 0

    def psql(self, database: str, sql: str) -> list[list[str]]:
        """Run SQL with ``psql`` and return the rows (text fields)."""
        args = ["psql", "-h", "127.0.0.1", "-p", str(self.ports["postgres"]), "-U", "postgres", "-d", database]
        args += ["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql]
        result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
        if result.returncode != 0:
            raise TopologyError(f"psql on {database} failed for {sql!r}:\n{result.stderr}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    # ── Redis ─────────────────────────────────────────────────────────────────

    def start_redis(self) -> None:
        """``redis-server`` on its port, keeping its files in the topology's folder (no persistence)."""
        ensure_system_packages()
        port = self._port("redis", PORT_VARIABLES["redis"])
        folder = self.root / "redis"
        folder.mkdir(exist_ok=True)
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.start("redis", args)

        def ping() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
            return False

        self.wait_until("Redis to answer PING", ping, 30, watch=["redis"], every=0.2)
        self.say(f"Redis up on port {port}")

    # ── the OpenWOP host ──────────────────────────────────────────────────────

    def start_devhost(self) -> None:
        """``openwop-devhost`` with the topology's API key (and extra workflows, if any)."""
        port = self._port("devhost", PORT_VARIABLES["devhost"])
        args = [str(self.core_venv / "bin" / "openwop-devhost"), "--host", "127.0.0.1", "--port", str(port)]
        args += ["--api-key", self.api_key, "--log-level", "warning"]
        if self.workflows_dir is not None:
            args += ["--workflows", str(self.workflows_dir)]
        self.start("devhost", args)
        url = f"{self.devhost_url}/.well-known/openwop"
        self.wait_until("the OpenWOP host", lambda: http_status(url) == 200, 60, watch=["devhost"], every=0.3)
        self.say(f"OpenWOP host up on {self.devhost_url}")

    # ── Airflow ───────────────────────────────────────────────────────────────

    def airflow_task_logs(self, dag_id: str) -> Path:
        """The folder of one DAG's task logs (``run_id=*/task_id=*/attempt=N.log``, and a trigger's lines of
        that try in ``attempt=N.log.trigger.<job>.log``)."""
        return self.root / "airflow-home" / "logs" / f"dag_id={dag_id}"

    def airflow_task_problems(self, dag_id: str, task_id: str) -> dict[int, list[str]]:
        """The warnings and errors of each try of a task (``{try number: ["level: event (exc_type: text)"]}``),
        read from its own log and its triggers': why a try failed."""
        problems: dict[int, list[str]] = {}
        for path in sorted(self.airflow_task_logs(dag_id).glob(f"run_id=*/task_id={task_id}/attempt=*.log")):
            attempt = int(path.name.removeprefix("attempt=").partition(".")[0])  # attempt=2.log.trigger.7.log: 2
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(record, dict) or record.get("level") not in ("warning", "error", "critical"):
                    continue
                details = record.get("error_detail") or []
                causes = "; ".join(f"{d.get('exc_type')}: {d.get('exc_value')}" for d in details if isinstance(d, dict))
                problems.setdefault(attempt, []).append(
                    f"{record['level']}: {record.get('event')}" + (f" ({causes})" if causes else "")
                )
        for attempt, failure in self._celery_failures(dag_id, task_id).items():
            problems.setdefault(attempt, []).append(f"error: its Celery workload raised {failure}")
        return problems

    def _celery_failures(self, dag_id: str, task_id: str) -> dict[int, str]:
        """``{try number: exception}`` for the tries of a task whose Celery workload itself failed: the task's
        process never ran it (say its calls to the execution API timed out), so its own log says nothing."""
        tries: dict[str, int] = {}  # Celery task id -> try number
        failures: dict[int, str] = {}
        marker = f"/task_id={task_id}/attempt="
        for path in sorted(self.logs.glob("airflow-celery-worker-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if "Executing workload in Celery" in line and f"'dag_id={dag_id}/" in line and marker in line:
                    celery_id = line.partition("] [")[2].partition("]")[0]
                    tries[celery_id] = int(line.partition(marker)[2].partition(".")[0])
                elif "raised unexpected:" in line:
                    celery_id = line.partition("execute_workload[")[2].partition("]")[0]
                    if celery_id in tries:
                        failures[tries[celery_id]] = line.partition("raised unexpected: ")[2].partition(" [")[0]
        return failures

    def airflow_env(self) -> dict[str, str]:
        """The environment of every Airflow process (settings from here only, not from the calling shell)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PREFECT_", "VIRTUAL_ENV"))}
        home = self.root / "airflow-home"
        home.mkdir(exist_ok=True)
        env = {
            **base,
            "PYTHONUNBUFFERED": "1",  # logs written as they happen: a failure shows the last ones
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.airflow_dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres_url("airflow", "psycopg2"),
            "AIRFLOW__CELERY__BROKER_URL": self.redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres_url("airflow"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.ports["airflow"]),
            "AIRFLOW__API__BASE_URL": self.airflow_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": self._secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_OPENWOP_DEFAULT": json.dumps(
                {"conn_type": "openwop", "host": self.devhost_url, "password": self.api_key}
            ),
        }
        env.update(self.airflow_extra_env)
        return env

    def _airflow(self) -> str:
        """The ``airflow`` command of the Airflow environment, checked once for the Celery provider and drivers."""
        path = self.airflow_venv / "bin" / "airflow"
        if self._airflow_checked:
            return str(path)
        if not path.exists():
            raise TopologyError(f"{path} not found: build the Airflow environment with ./scripts/setup-envs.sh airflow")
        check = subprocess.run(
            [str(self.airflow_venv / "bin" / "python"), "-c", "import airflow.providers.celery, psycopg2, asyncpg"],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise TopologyError(
                f"{self.airflow_venv} lacks the Celery provider or the Postgres drivers "
                f"({check.stderr.strip().splitlines()[-1:]}): rebuild it with ./scripts/setup-envs.sh airflow "
                '(extras "airflow,celery")'
            )
        self._airflow_checked = True
        return str(path)

    def start_airflow(self) -> None:
        """Migrate the metadata database, serialise the DAGs, then start the API server, scheduler,
        dag-processor, the triggerers and the Celery workers; return once all of them are up."""
        airflow = self._airflow()
        self._port("airflow", PORT_VARIABLES["airflow"])
        env = self.airflow_env()
        self.run("airflow-db-migrate", [airflow, "db", "migrate"], env=env, timeout=600)
        self.say("Airflow metadata database migrated")
        self.run("airflow-dags-reserialize", [airflow, "dags", "reserialize"], env=env, timeout=300)
        for component in ("api-server", "scheduler", "dag-processor"):
            self.start(f"airflow-{component}", [airflow, component], env=env)
        for i in range(1, self.celery_workers + 1):
            own = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            args = [airflow, "celery", "worker", "--celery-hostname", f"worker{i}@%h"]
            args += ["--concurrency", str(self.worker_concurrency)]
            self.start(f"airflow-celery-worker-{i}", args, env=own)
        for i in range(1, self.triggerers + 1):
            self.start_triggerer(f"airflow-triggerer-{i}")
        airflow_names = [n for n in self.processes if n.startswith("airflow-")]
        health = f"{self.airflow_url}/api/v2/monitor/health"
        self.wait_until("the Airflow API server", lambda: http_status(health) == 200, 300, watch=airflow_names)
        for i in range(1, self.celery_workers + 1):
            name = f"airflow-celery-worker-{i}"
            self.wait_until(f"{name} to be ready", lambda n=name: " ready." in self.log(n), 180, watch=airflow_names)
        self.say(f"Airflow up on {self.airflow_url}")

    def start_triggerer(self, name: str) -> int:
        """Start an ``airflow triggerer`` (its own trigger-log port) and return its job id, once it heartbeats
        (one at a time, so that each job id is known to belong to its process)."""
        env = {**self.airflow_env(), "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
        before = set(self.airflow_triggerer_jobs())
        self.start(name, [self._airflow(), "triggerer"], env=env)

        def new_job() -> int | None:
            fresh = set(self.airflow_triggerer_jobs()) - before - set(self.triggerer_jobs.values())
            return min(fresh) if fresh else None

        self.triggerer_jobs[name] = self.wait_until(f"{name} to heartbeat", new_job, 180, watch=[name])
        self.say(f"{name} up (triggerer job {self.triggerer_jobs[name]})")
        return self.triggerer_jobs[name]

    def airflow_triggerer_jobs(self) -> dict[int, str]:
        """``{job id: hostname}`` of the triggerers that heartbeat as running."""
        rows = self.psql(
            "airflow", "select id, hostname from job where job_type = 'TriggererJob' and state = 'running'"
        )
        return {int(job_id): host for job_id, host in rows}

    # ── Prefect ───────────────────────────────────────────────────────────────

    def prefect_env(self) -> dict[str, str]:
        """The environment of the Prefect server, its CLI and workers."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PREFECT_", "VIRTUAL_ENV"))}
        home = self.root / "prefect-home"
        home.mkdir(exist_ok=True)
        env = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.prefect_api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": self.postgres_url("prefect", "asyncpg"),
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(self.ports["prefect"]),
            "OPENWOP_BASE_URL": self.devhost_url,
            "OPENWOP_API_KEY": self.api_key,
        }
        env.update(self.prefect_extra_env)
        return env

    def start_prefect_server(self) -> None:
        """``prefect server start`` on the Postgres database (it migrates it on start)."""
        prefect = self.prefect_venv / "bin" / "prefect"
        if not prefect.exists():
            raise TopologyError(f"{prefect} not found: build it with ./scripts/setup-envs.sh prefect")
        port = self._port("prefect", PORT_VARIABLES["prefect"])
        args = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        self.start("prefect-server", args, env=self.prefect_env())

    def finish_prefect(self) -> None:
        """Wait for the server, register the OpenWOP blocks, save the credentials block, create the process
        work pool and start the workers."""
        prefect = str(self.prefect_venv / "bin" / "prefect")
        env = self.prefect_env()
        health = f"{self.prefect_api_url}/health"
        self.wait_until("the Prefect server", lambda: http_status(health) == 200, 300, watch=["prefect-server"])
        self.run("prefect-setup", [prefect, "block", "register", "-m", "openwop_prefect"], env=env)
        helper = [str(self.prefect_venv / "bin" / "python"), str(REPO / "scripts" / "ui_support.py")]
        self.run("prefect-setup", [*helper, "prefect-block", self.prefect_block], env=env)
        self.run("prefect-setup", [prefect, "work-pool", "create", self.work_pool, "--type", "process"], env=env)
        for i in range(1, self.prefect_workers + 1):
            args = [prefect, "worker", "start", "--pool", self.work_pool, "--name", f"prefect-worker-{i}"]
            if self.prefect_worker_limit is not None:
                args += ["--limit", str(self.prefect_worker_limit)]
            self.start(f"prefect-worker-{i}", args, env=env)
        names = [f"prefect-worker-{i}" for i in range(1, self.prefect_workers + 1)]
        self.wait_until(
            f"{self.prefect_workers} Prefect workers polling {self.work_pool}",
            lambda: all("started!" in self.log(n).lower() or "polling" in self.log(n).lower() for n in names),
            120,
            watch=["prefect-server", *names],
        )
        self.say(f"Prefect up on {self.prefect_url}, {len(names)} workers on {self.work_pool}")

    # ── everything ────────────────────────────────────────────────────────────

    def up(self, components: Iterable[str] = ALL_COMPONENTS) -> Topology:
        """Bring up the chosen components (Postgres and Redis as the others need them); on failure stop what
        was started and raise."""
        wanted = set(components)
        unknown = wanted - set(ALL_COMPONENTS)
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}; choose from {', '.join(ALL_COMPONENTS)}")
        if wanted & {"airflow", "prefect"}:
            wanted.add("postgres")
        if "airflow" in wanted:
            wanted.add("redis")
        services = {"postgres", "redis", "airflow", "prefect"} & wanted
        if "devhost" in wanted and self._start_devhost:
            services.add("devhost")
        for service in sorted(services & set(self._wanted_ports)):
            self._port(service, PORT_VARIABLES[service])  # a taken port is an error before anything starts
        try:
            if "postgres" in wanted:
                self.start_postgres()
            if "redis" in wanted:
                self.start_redis()
            if "devhost" in wanted and self._start_devhost:
                self.start_devhost()
            if "prefect" in wanted:
                self.start_prefect_server()  # starts while Airflow migrates
            if "airflow" in wanted:
                self.start_airflow()
            if "prefect" in wanted:
                self.finish_prefect()
        except BaseException:
            self.stop_all()
            raise
        return self

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def summary(self) -> str:
        """What runs where, for a person."""
        lines = [f"  folder       {self.root} (logs in logs/)"]
        if "postgres" in self.processes:
            lines.append(f"  Postgres     {self.postgres_url('airflow')} and .../prefect")
        if "redis" in self.processes:
            lines.append(f"  Redis        {self.redis_url}")
        # the documented default is no secret; a key of one's own is not printed (this can land in a CI log)
        key = self.api_key if self.api_key == DEFAULT_API_KEY else "yours (PROD_API_KEY), not shown"
        lines.append(f"  OpenWOP host {self.devhost_url}   API key: {key}")
        if "airflow-api-server" in self.processes:
            airflow = sorted(n.removeprefix("airflow-") for n in self.processes if n.startswith("airflow-"))
            lines.append(f"  Airflow      {self.airflow_url}   (no login; CeleryExecutor; {', '.join(airflow)})")
        if "prefect-server" in self.processes:
            workers = [n for n in self.processes if n.startswith("prefect-worker-")]
            lines.append(f"  Prefect      {self.prefect_url}   (work pool {self.work_pool}: {', '.join(workers)};")
            lines.append(f"               credentials block {self.prefect_block!r})")
        return "\n".join(lines)


@contextlib.contextmanager
def topology(components: Iterable[str] = ALL_COMPONENTS, **kwargs: Any) -> Iterator[Topology]:
    """A brought-up :class:`Topology`, stopped at the end of the block."""
    topo = Topology(**kwargs)
    topo.up(components)
    try:
        yield topo
    finally:
        topo.stop_all()


def main(argv: list[str]) -> int:
    """``make prod``: bring everything up, print the URLs, wait for Ctrl-C, stop everything."""
    import argparse

    parser = argparse.ArgumentParser(prog="make prod", description=__doc__.split("\n\n")[0])
    parser.add_argument("components", nargs="*", default=list(ALL_COMPONENTS), help=", ".join(ALL_COMPONENTS))
    args = parser.parse_args(argv)
    ports = {service: int(os.environ[var]) for service, var in PORT_VARIABLES.items() if os.environ.get(var)}
    topo = Topology(ports=ports, api_key=os.environ.get("PROD_API_KEY", DEFAULT_API_KEY))
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        print(f"==> bringing up {', '.join(args.components)} in {topo.root}", flush=True)
        topo.up(args.components)
        print(f"\nProduction topology up ({time.monotonic() - started:.0f}s). Press Ctrl-C to stop everything.\n")
        print(topo.summary(), flush=True)
        while True:
            time.sleep(2)
            topo.check_alive()
    except KeyboardInterrupt:
        print("\n==> stopping", flush=True)
        return 0
    except TopologyError as exc:
        print(f"make prod: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stopping_at = time.monotonic()
        topo.stop_all()
        print(f"    stopped in {time.monotonic() - stopping_at:.0f}s, {topo.root} removed", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
