#!/usr/bin/env bash
# The whole test suite: lint and types, then each part in its own environment, then one summary line.
#   core tests     -> .venv-core     (openwop_core and the local host, no scheduler installed)
#   tests/core     -> .venv-py310, .venv-py313 (the client's unit tests on Python 3.10 and 3.13)
#   airflow tests  -> .venv-airflow  (provider, trigger, example DAGs, real dag.test / triggerer)
#                  -> .venv-airflow31 (the same on Airflow 3.1, without the tests of Airflow 3.3+ behaviour
#                     (marker airflow33) and without the slow production-shaped ones, which run on 3.3)
#   prefect tests  -> .venv-prefect  (blocks, tasks, flows under Prefect's test harness)
#                  -> .venv-all      (the same on the Prefect that installs beside Airflow 3.3, in one environment)
#   tests/reliability (faults, bad input, secrets, TLS) -> its core part with core, airflow/ and prefect/ with theirs
#   production topology (tests/prod_topology.py) -> tests/airflow/test_prod_topology.py (.venv-airflow) and
#                  tests/prefect/test_prod_topology_prefect.py (.venv-prefect); TOPOLOGY=0 leaves them out
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-envs.sh || exit 1

failed_steps=()
results=$(mktemp -d)

echo "==> ruff"
.venv-core/bin/ruff check . || failed_steps+=("ruff check")
.venv-core/bin/ruff format --check . >/dev/null || { .venv-core/bin/ruff format --check . ; failed_steps+=("ruff format"); }
echo "==> mypy"
.venv-core/bin/mypy openwop_core openwop_devhost || failed_steps+=("mypy openwop_core openwop_devhost")
[ -d openwop_airflow ] && { .venv-airflow/bin/mypy openwop_airflow || failed_steps+=("mypy openwop_airflow"); }
[ -d openwop_prefect ] && { .venv-prefect/bin/mypy openwop_prefect || failed_steps+=("mypy openwop_prefect"); }

run_suite() {
  local name="$1" venv="$2"; shift 2
  echo "==> tests: $name ($venv)"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$results/$name.xml" "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then echo "tests $name (exit $rc)" >> "$results/failed"; fi
}

# Two lanes run side by side: most of each suite's time is spent waiting (on runs, triggers, servers), so two
# lanes on two cores take about 60% of the wall time of one (TEST_LANES=1 runs them one after the other).
# Each suite keeps its own temp Airflow/Prefect homes and free ports, so they do not meet.
# The production-topology suites (Postgres, Redis, Celery, two triggerers; a Prefect server on Postgres with two
# workers) run last in each lane, where they meet each other and the Prefect suites rather than the Airflow ones
# (a loaded LocalExecutor has races of its own).
# TOPOLOGY=0 leaves them out (`make test-prod` runs them alone).
topology() { [ "${TOPOLOGY:-1}" != "0" ]; }
lane_a() {
  run_suite core .venv-core tests --ignore=tests/airflow --ignore=tests/prefect \
    --ignore=tests/reliability/airflow --ignore=tests/reliability/prefect ${PYTEST_ARGS:-}
  [ -d tests/airflow ] && run_suite airflow .venv-airflow tests/airflow tests/reliability/airflow \
    --ignore=tests/airflow/test_prod_topology.py ${PYTEST_ARGS:-}
  [ -d tests/prefect ] && run_suite prefect-beside-airflow .venv-all tests/prefect tests/reliability/prefect \
    --ignore=tests/prefect/test_prod_topology_prefect.py ${PYTEST_ARGS:-}
  topology && run_suite prod-topology-airflow .venv-airflow tests/airflow/test_prod_topology.py ${PYTEST_ARGS:-}
}
lane_b() {
  # the fast part of it on the oldest and the newest Python the package supports (about a minute each)
  run_suite core-py310 .venv-py310 tests/core ${PYTEST_ARGS:-}
  run_suite core-py313 .venv-py313 tests/core ${PYTEST_ARGS:-}
  [ -d tests/airflow ] && run_suite airflow31 .venv-airflow31 tests/airflow tests/reliability/airflow \
    --ignore=tests/airflow/test_prod_topology.py -m "not airflow33 and not slow" ${PYTEST_ARGS:-}
  [ -d tests/prefect ] && run_suite prefect .venv-prefect tests/prefect tests/reliability/prefect \
    --ignore=tests/prefect/test_prod_topology_prefect.py ${PYTEST_ARGS:-}
  topology && run_suite prod-topology-prefect .venv-prefect tests/prefect/test_prod_topology_prefect.py ${PYTEST_ARGS:-}
}
# Postgres and Redis (Debian packages) for the topology suites, installed once here rather than by both lanes
# at the same time (apt's lock); nothing is done when they are there.
if topology; then
  .venv-core/bin/python -c "import sys; sys.path.insert(0, 'tests'); import prod_topology as t; t.ensure_system_packages()" \
    || failed_steps+=("installing postgresql and redis-server for the topology suites")
fi
started=$(date +%s)
if [ "${TEST_LANES:-2}" = "1" ]; then
  lane_a; lane_b
else
  echo "==> lane B (Python 3.10/3.13, Airflow 3.1, Prefect, Prefect topology) runs beside lane A; its output follows lane A's"
  lane_b > "$results/lane-b.log" 2>&1 &
  lane_b_pid=$!
  lane_a
  wait "$lane_b_pid"
  cat "$results/lane-b.log"
fi
echo "==> tests took $(( $(date +%s) - started ))s wall"
[ -f "$results/failed" ] && mapfile -t -O "${#failed_steps[@]}" failed_steps < "$results/failed"

.venv-core/bin/python - "$results" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    root = ET.parse(f).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        for k in total:
            total[k] += int(s.get(k, 0))
        print(f"  {f.stem}: {s.get('tests')} tests, {s.get('failures')} failures, {s.get('errors')} errors, {s.get('skipped')} skipped, {float(s.get('time', 0)):.0f}s")
bad = total["failures"] + total["errors"]
passed = total["tests"] - bad - total["skipped"]
print(f"{passed} passed, {bad} failed, {total['skipped']} skipped")
PY
rm -rf "$results"

if [ ${#failed_steps[@]} -ne 0 ]; then
  echo "FAILED: ${failed_steps[*]}"
  exit 1
fi
echo "all green"
