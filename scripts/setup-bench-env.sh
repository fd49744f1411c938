#!/usr/bin/env bash
# Build the benchmark environment .venv-bench (idempotent; fast with uv, like scripts/setup-envs.sh):
#   the project with the [airflow,testing] extras (client, local host, Airflow trigger)
#   + openwop-client==1.1.1 (the official v1-line SDK, the comparison baseline; installed only here)
#   + psutil (RSS and CPU of the benchmark process)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (fast installer) with pip"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi
UV="$(command -v uv || echo "$PYTHON -m uv")"

venv=".venv-bench"
# httpx-sse: the "httpx-sse alone" row of bench/sse_throughput.py (the client itself does not use it)
extra_pkgs=("openwop-client==1.1.1" "psutil>=5.9" "httpx-sse>=0.4")
stamp="$venv/.installed-$( (cat pyproject.toml; echo "${extra_pkgs[*]}") | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  exit 0
fi
echo "==> $venv: installing openwop-integrations[airflow,testing] ${extra_pkgs[*]}"
[ -x "$venv/bin/python" ] || $UV venv --quiet --python "$PYTHON" "$venv"
VIRTUAL_ENV="$venv" $UV pip install --quiet -e ".[airflow,testing]" "${extra_pkgs[@]}"
rm -f "$venv"/.installed-*
touch "$stamp"
