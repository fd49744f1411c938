#!/usr/bin/env bash
# The main job (README quick start): build the environments, then run OpenWOP workflows end to end
# from a real Airflow and a real Prefect against a local OpenWOP host, and print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-envs.sh core airflow prefect
exec .venv-core/bin/python scripts/demo.py "$@"
