#!/usr/bin/env bash
# Build the project's virtual environments from pyproject.toml (idempotent; fast with uv).
#   .venv-core       openwop_core + the local host + dev tools (no Airflow, no Prefect)
#   .venv-airflow    + the newest apache-airflow (3.x), the standard provider, and the Celery and Postgres
#                    providers (extra "celery") for the production topology (make prod, tests/prod_topology.py)
#   .venv-airflow31  + apache-airflow 3.1.x, the oldest Airflow the provider supports
#   .venv-prefect    + the newest prefect (3.x)
#   .venv-all        everything in one environment, as `pip install "openwop-integrations[all]"` resolves it:
#                    the newest Airflow beside the newest Prefect that installs with it (3.7.7 today)
# Airflow 3.3 and Prefect >= 3.7.8 pin incompatible fastapi ranges, so the newest of each live apart.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (fast installer) with pip"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi
UV="$(command -v uv || echo "$PYTHON -m uv")"

envs="${*:-core airflow airflow31 prefect all}"
for env in $envs; do
  venv=".venv-$env"
  pins=()
  case "$env" in
    core) extras="dev" ;;
    airflow) extras="airflow,celery,dev" ;;
    airflow31) extras="airflow,dev"; pins=("apache-airflow==3.1.*") ;;
    prefect) extras="prefect,dev" ;;
    all) extras="all,dev" ;;
    *) echo "unknown environment: $env (use core, airflow, airflow31, prefect or all)" >&2; exit 2 ;;
  esac
  stamp="$venv/.installed-$({ cat pyproject.toml; echo "${pins[*]:-}"; } | sha1sum | cut -c1-12)"
  if [ -f "$stamp" ]; then
    continue
  fi
  echo "==> $venv: installing openwop-integrations[$extras] ${pins[*]:-}"
  [ -x "$venv/bin/python" ] || $UV venv --quiet --python "$PYTHON" "$venv"
  VIRTUAL_ENV="$venv" $UV pip install --quiet -e ".[$extras]" ${pins[@]+"${pins[@]}"}
  rm -f "$venv"/.installed-*
  touch "$stamp"
done
