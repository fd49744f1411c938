#!/usr/bin/env bash
# Build the project's virtual environments from pyproject.toml (idempotent; fast with uv).
#   .venv-core       openwop_core + the local host + dev tools (no Airflow, no Prefect)
#   .venv-airflow    + the newest apache-airflow (3.x), the standard provider, and the Celery and Postgres
#                    providers (extra "celery") for the production topology (make prod, tests/prod_topology.py),
#                    and the OpenLineage provider (extra "openlineage")
#   .venv-airflow31  + apache-airflow 3.1.x, the oldest Airflow the provider supports (+ OpenLineage)
#   .venv-prefect    + the newest prefect (3.x)
#   .venv-all        everything in one environment, as `pip install "openwop-integrations[all]"` resolves it:
#                    the newest Airflow beside the newest Prefect that installs with it (3.7.7 today)
#   .venv-py310      openwop_core + the local host + dev tools on Python 3.10 (the oldest requires-python allows)
#   .venv-py313      the same on Python 3.13 (the newest tested); the others use the default python3
# Airflow 3.3 and Prefect >= 3.7.8 pin incompatible fastapi ranges, so the newest of each live apart.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (fast installer) with pip"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi
UV="$(command -v uv || echo "$PYTHON -m uv")"

# An interpreter for Python X.Y: a pyenv install, else a working pythonX.Y on PATH, else one uv knows or can
# download (uv's own search stops at pyenv's shims, which fail for a version that is not pyenv's global one).
find_python() {
  local version="$1" candidate
  for candidate in $(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/$version".* 2>/dev/null | sort -V -r); do
    [ -x "$candidate/bin/python$version" ] && { echo "$candidate/bin/python$version"; return; }
  done
  candidate="$(command -v "python$version" || true)"
  if [ -n "$candidate" ] && "$candidate" -c "import sys" >/dev/null 2>&1; then
    echo "$candidate"
    return
  fi
  $UV python find --python-preference only-managed "$version" 2>/dev/null \
    || { $UV python install --quiet "$version" >&2 && $UV python find --python-preference only-managed "$version"; } \
    || {
      echo "no Python $version found (pyenv, python$version on PATH, uv-managed) and uv could not download one;" \
        "install it (pyenv install $version, or uv python install $version where uv can download its builds)," \
        "or build the other environments only: ./scripts/setup-envs.sh core airflow ..." >&2
      return 1
    }
}

envs="${*:-core airflow airflow31 prefect all py310 py313}"
for env in $envs; do
  venv=".venv-$env"
  pins=()
  python="$PYTHON"
  case "$env" in
    core) extras="dev" ;;
    py310 | py313) extras="dev"; python="$(find_python "3.${env#py3}")" ;;
    airflow) extras="airflow,celery,openlineage,dev" ;;
    airflow31) extras="airflow,openlineage,dev"; pins=("apache-airflow==3.1.*") ;;
    prefect) extras="prefect,dev" ;;
    all) extras="all,dev" ;;
    *) echo "unknown environment: $env (use core, airflow, airflow31, prefect, all, py310 or py313)" >&2; exit 2 ;;
  esac
  stamp="$venv/.installed-$({ cat pyproject.toml; echo "${pins[*]:-}"; } | sha1sum | cut -c1-12)"
  if [ -f "$stamp" ]; then
    continue
  fi
  echo "==> $venv: installing openwop-integrations[$extras] ${pins[*]:-}"
  [ -x "$venv/bin/python" ] || $UV venv --quiet --python "$python" "$venv"
  VIRTUAL_ENV="$venv" $UV pip install --quiet -e ".[$extras]" ${pins[@]+"${pins[@]}"}
  rm -f "$venv"/.installed-*
  touch "$stamp"
done
