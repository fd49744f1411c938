#!/usr/bin/env bash
# `make ui`: the real Airflow and Prefect UIs on this machine, wired to a local OpenWOP host, to click around in.
#
#   local OpenWOP host  http://127.0.0.1:3737  (openwop-devhost; another port if 3737 is taken)
#   Airflow 3           http://127.0.0.1:8080  (api-server, scheduler, dag-processor, triggerer; SQLite,
#                                               LocalExecutor; no login; DAGs from example_dags/airflow;
#                                               AIRFLOW_CONN_OPENWOP_DEFAULT -> the local host)
#   Prefect 3           http://127.0.0.1:4200  (prefect server; OpenWOP blocks registered, a credentials
#                                               block "openwop-local" saved for the local host)
#
# State lives in .airflow-home/ and .prefect-home/ (git-ignored; delete them to start afresh), the
# processes' logs in .airflow-home/ui-logs/. Ctrl-C stops everything this script started.
# Ports and key: OPENWOP_PORT, AIRFLOW_PORT, PREFECT_PORT, UI_API_KEY (default dev-key); OPENWOP_WORKFLOWS=DIR
# adds your own *.json workflow definitions to the local host (openwop-devhost --workflows DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

./scripts/setup-envs.sh core airflow prefect

STARTED=$SECONDS
API_KEY="${UI_API_KEY:-dev-key}"
AF_PORT="${AIRFLOW_PORT:-8080}"
PF_PORT="${PREFECT_PORT:-4200}"
BLOCK_NAME="openwop-local"
CORE_PY="$ROOT/.venv-core/bin/python"
HELP="$ROOT/scripts/ui_support.py"
LOGS="$ROOT/.airflow-home/ui-logs"
mkdir -p "$LOGS" "$ROOT/.prefect-home"
PIDFILE="$ROOT/.airflow-home/ui.pid"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "ui: make ui is already running from this checkout (pid $(cat "$PIDFILE")); stop it with Ctrl-C first" >&2
  exit 1
fi
echo $$ >"$PIDFILE"

# Settings for the three stacks come from this script only, not from the calling shell.
for name in $(compgen -e); do
  case "$name" in AIRFLOW*|PREFECT_*) unset "$name" ;; esac
done

for spec in "Airflow:$AF_PORT:AIRFLOW_PORT" "Prefect:$PF_PORT:PREFECT_PORT"; do
  IFS=: read -r what port var <<<"$spec"
  if ! "$CORE_PY" "$HELP" free "$port"; then
    echo "ui: port $port (for $what) is taken: stop whatever listens there, or run e.g. $var=$((port + 1)) make ui" >&2
    exit 1
  fi
done
OPENWOP_PORT_WANTED="${OPENWOP_PORT:-3737}"
OPENWOP_PORT="$("$CORE_PY" "$HELP" port "$OPENWOP_PORT_WANTED")"
OPENWOP_URL="http://127.0.0.1:$OPENWOP_PORT"
AIRFLOW_URL="http://127.0.0.1:$AF_PORT"
PREFECT_URL="http://127.0.0.1:$PF_PORT"

# ---------------------------------------------------------------------------------------------- processes
declare -A PIDS=()   # name -> pid; each process leads its own process group (setsid), so a stop reaches its children
ORDER=()

start() { # start NAME COMMAND...: run in the background, output to $LOGS/NAME.log
  local name="$1"; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  PIDS[$name]=$!
  ORDER+=("$name")
}

stopping=0
stop_all() {
  local rc=$?
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  if [ ${#ORDER[@]} -gt 0 ]; then
    local t0=$SECONDS name pid
    echo
    echo "==> stopping ${ORDER[*]}"
    for name in "${ORDER[@]}"; do
      kill -TERM -- "-${PIDS[$name]}" 2>/dev/null || true
    done
    for _ in $(seq 1 40); do
      local left=0
      for name in "${ORDER[@]}"; do
        kill -0 -- "-${PIDS[$name]}" 2>/dev/null && left=1
      done
      [ "$left" = 0 ] && break
      sleep 0.5
    done
    for name in "${ORDER[@]}"; do
      if kill -0 -- "-${PIDS[$name]}" 2>/dev/null; then
        echo "    $name did not stop in 20s: killing it"
        kill -KILL -- "-${PIDS[$name]}" 2>/dev/null || true
      fi
    done
    wait 2>/dev/null || true
    echo "    stopped in $((SECONDS - t0))s (state kept in .airflow-home/ and .prefect-home/)"
  fi
  rm -f "$PIDFILE"
  exit "$rc"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { # fail NAME MESSAGE: show the end of NAME's log and stop
  echo "ui: $2" >&2
  echo "---- last lines of $LOGS/$1.log" >&2
  tail -n 30 "$LOGS/$1.log" >&2 || true
  exit 1
}

wait_http() { # wait_http NAME URL SECONDS
  local rc=0
  "$CORE_PY" "$HELP" wait "$2" "$3" "${PIDS[$1]}" || rc=$?
  case $rc in
    0) ;;
    2) fail "$1" "$1 exited while starting" ;;
    *) fail "$1" "$1 did not answer at $2 within $3s" ;;
  esac
}

# ---------------------------------------------------------------------------------------------- OpenWOP host
echo "==> local OpenWOP host on $OPENWOP_URL"
[ "$OPENWOP_PORT" = "$OPENWOP_PORT_WANTED" ] || echo "    (port $OPENWOP_PORT_WANTED is taken, so another one)"
devhost_args=(--host 127.0.0.1 --port "$OPENWOP_PORT" --api-key "$API_KEY" --run-pages public)
[ -n "${OPENWOP_WORKFLOWS:-}" ] && devhost_args+=(--workflows "$(cd "$OPENWOP_WORKFLOWS" && pwd)")
start openwop-devhost "$ROOT/.venv-core/bin/openwop-devhost" "${devhost_args[@]}"
wait_http openwop-devhost "$OPENWOP_URL/.well-known/openwop" 60

# ---------------------------------------------------------------------------------------------- Prefect (starts while Airflow migrates)
echo "==> Prefect server on $PREFECT_URL"
export PREFECT_HOME="$ROOT/.prefect-home"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_API_URL="$PREFECT_URL/api"
start prefect-server "$ROOT/.venv-prefect/bin/prefect" server start --host 127.0.0.1 --port "$PF_PORT"

# ---------------------------------------------------------------------------------------------- Airflow
echo "==> Airflow on $AIRFLOW_URL"
export AIRFLOW_HOME="$ROOT/.airflow-home"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/example_dags/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$AIRFLOW_URL/execution/"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$AF_PORT"
export AIRFLOW__API__BASE_URL="$AIRFLOW_URL"
export AIRFLOW__API__WORKERS=1
secret="$("$CORE_PY" -c 'import secrets; print(secrets.token_hex(16))')"
export AIRFLOW__API__SECRET_KEY="$secret"
export AIRFLOW__API_AUTH__JWT_SECRET="$secret"
export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=2
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
export AIRFLOW_CONN_OPENWOP_DEFAULT="{\"conn_type\": \"openwop\", \"host\": \"$OPENWOP_URL\", \"password\": \"$API_KEY\"}"
AIRFLOW="$ROOT/.venv-airflow/bin/airflow"

t0=$SECONDS
"$AIRFLOW" db migrate >"$LOGS/airflow-db-migrate.log" 2>&1 || fail airflow-db-migrate "airflow db migrate failed"
# A connection stored in the database too, so Admin -> Connections lists one to open and Test
# (openwop_default comes from the environment variable, which the UI does not list). The port has its own
# field: with an empty one, the list's Test button sends port 0 and Airflow refuses the test (HTTP 400).
cat >"$AIRFLOW_HOME/ui-connections.json" <<EOF
{"openwop_local": {"conn_type": "openwop", "host": "http://127.0.0.1", "port": $OPENWOP_PORT, "password": "$API_KEY",
                   "description": "The local OpenWOP host started by make ui", "extra": "{\"timeout\": 30}"}}
EOF
"$AIRFLOW" connections import --overwrite "$AIRFLOW_HOME/ui-connections.json" >"$LOGS/airflow-connections.log" 2>&1 \
  || fail airflow-connections "could not store the openwop_local connection"
echo "    database ready in $((SECONDS - t0))s"
for component in api-server scheduler dag-processor triggerer; do
  start "airflow-$component" "$AIRFLOW" "$component"
done

# ---------------------------------------------------------------------------------------------- readiness
wait_http prefect-server "$PREFECT_URL/api/health" 240
export OPENWOP_BASE_URL="$OPENWOP_URL" OPENWOP_API_KEY="$API_KEY"
"$ROOT/.venv-prefect/bin/prefect" block register -m openwop_prefect >"$LOGS/prefect-blocks.log" 2>&1 \
  || fail prefect-blocks "prefect block register -m openwop_prefect failed"
"$ROOT/.venv-prefect/bin/python" "$HELP" prefect-block "$BLOCK_NAME" >>"$LOGS/prefect-blocks.log" 2>&1 \
  || fail prefect-blocks "could not save the $BLOCK_NAME credentials block"
unset OPENWOP_BASE_URL OPENWOP_API_KEY
echo "    Prefect ready; blocks registered, credentials block \"$BLOCK_NAME\" saved"
wait_http airflow-api-server "$AIRFLOW_URL/api/v2/monitor/health" 300
for component in scheduler dag-processor triggerer; do
  kill -0 "${PIDS[airflow-$component]}" 2>/dev/null || fail "airflow-$component" "airflow $component exited"
done
echo "    Airflow ready"

cat <<EOF

OpenWOP UIs are up ($((SECONDS - STARTED))s). Press Ctrl-C to stop everything.

  Local OpenWOP host  $OPENWOP_URL   API key: $API_KEY
      OPENWOP_BASE_URL=$OPENWOP_URL OPENWOP_API_KEY=$API_KEY .venv-core/bin/openwop runs create conformance-identity --inputs '{"payload": {"hello": "world"}}' --wait

  Airflow  $AIRFLOW_URL   (no login)
      DAGs example_openwop_*: open one, Trigger, then the task's Logs and its "OpenWOP run" link
      (the local host's page of the run: status, nodes, events, the pending question).
      Connections: openwop_default (from AIRFLOW_CONN_OPENWOP_DEFAULT, not listed in the UI) and
      openwop_local (Admin -> Connections; Test is enabled), both pointing at the local host.

  Prefect  $PREFECT_URL
      Blocks -> "$BLOCK_NAME" (OpenWOP Credentials for the local host). Run an example flow against this server:
      PREFECT_API_URL=$PREFECT_URL/api OPENWOP_BLOCK=$BLOCK_NAME .venv-prefect/bin/python example_dags/prefect/run_and_wait.py
      then Runs -> the flow run -> Artifacts.

  Logs: .airflow-home/ui-logs/ (one file per process)
EOF

# Stay in the foreground until Ctrl-C; stop everything if one of the processes dies.
while sleep 2; do
  for name in "${ORDER[@]}"; do
    if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
      fail "$name" "$name exited unexpectedly"
    fi
  done
done
