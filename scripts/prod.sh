#!/usr/bin/env bash
# `make prod`: the production topology on this machine, until Ctrl-C (tests/prod_topology.py does the work).
#
#   Postgres (Debian postgresql; a throwaway cluster), Redis (redis-server), the local OpenWOP host,
#   Airflow 3 on Postgres with the CeleryExecutor: api-server, scheduler, dag-processor, two triggerers and two
#   Celery workers (DAGs from example_dags/airflow, no login, AIRFLOW_CONN_OPENWOP_DEFAULT -> the local host),
#   Prefect 3 server on Postgres with a process work pool and two workers (credentials block "openwop-local").
#
# Missing postgresql / redis-server packages are installed with apt-get (as root). Everything lives in a new
# temporary folder (printed; logs in its logs/), removed with the processes on Ctrl-C. Ports are picked free;
# to choose them set PROD_AIRFLOW_PORT, PROD_PREFECT_PORT, PROD_OPENWOP_PORT, PROD_POSTGRES_PORT,
# PROD_REDIS_PORT (a taken one is an error). PROD_API_KEY sets the OpenWOP API key (default dev-key).
# Arguments choose components: `./scripts/prod.sh airflow` starts Postgres, Redis and Airflow only.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-envs.sh core airflow prefect
exec .venv-core/bin/python tests/prod_topology.py "$@"
