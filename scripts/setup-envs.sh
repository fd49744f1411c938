#!/usr/bin/env bash
# Build the project's virtual environments from pyproject.toml (idempotent; fast with uv).
#   .venv-core     openwop_core + the local host + dev tools (no Airflow, no Prefect)
#   .venv-airflow  + apache-airflow (3.x) and the standard provider
#   .venv-prefect  + the newest prefect (3.x)
# Airflow 3.3 and Prefect >= 3.7.8 pin incompatible fastapi ranges, so they live apart.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (fast installer) with pip"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi
UV="$(command -v uv || echo "$PYTHON -m uv")"

envs="${*:-core airflow prefect}"
for env in $envs; do
  venv=".venv-$env"
  case "$env" in
    core) extras="dev" ;;
    airflow) extras="airflow,dev" ;;
    prefect) extras="prefect,dev" ;;
    *) echo "unknown environment: $env (use core, airflow or prefect)" >&2; exit 2 ;;
  esac
  stamp="$venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ -f "$stamp" ]; then
    continue
  fi
  echo "==> $venv: installing openwop-integrations[$extras]"
  [ -x "$venv/bin/python" ] || $UV venv --quiet --python "$PYTHON" "$venv"
  VIRTUAL_ENV="$venv" $UV pip install --quiet -e ".[$extras]"
  rm -f "$venv"/.installed-*
  touch "$stamp"
done
