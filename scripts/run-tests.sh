#!/usr/bin/env bash
# The whole test suite: lint and types, then each part in its own environment, then one summary line.
#   core tests     -> .venv-core     (openwop_core and the local host, no scheduler installed)
#   airflow tests  -> .venv-airflow  (provider, trigger, example DAGs, real dag.test / triggerer)
#                  -> .venv-airflow31 (the same on Airflow 3.1, without the tests of Airflow 3.3+ behaviour
#                     (marker airflow33) and without the slow production-shaped ones, which run on 3.3)
#   prefect tests  -> .venv-prefect  (blocks, tasks, flows under Prefect's test harness)
#                  -> .venv-all      (the same on the Prefect that installs beside Airflow 3.3, in one environment)
#   tests/reliability (faults, bad input, secrets, TLS) -> its core part with core, airflow/ and prefect/ with theirs
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
  if [ $rc -ne 0 ]; then failed_steps+=("tests $name (exit $rc)"); fi
}

run_suite core .venv-core tests --ignore=tests/airflow --ignore=tests/prefect \
  --ignore=tests/reliability/airflow --ignore=tests/reliability/prefect ${PYTEST_ARGS:-}
# the production-topology tests (Postgres, Celery, two triggerers) run with `make test-prod` (docs/deployment.md)
[ -d tests/airflow ] && run_suite airflow .venv-airflow tests/airflow tests/reliability/airflow \
  --ignore=tests/airflow/test_prod_topology.py ${PYTEST_ARGS:-}
[ -d tests/airflow ] && run_suite airflow31 .venv-airflow31 tests/airflow tests/reliability/airflow \
  --ignore=tests/airflow/test_prod_topology.py -m "not airflow33 and not slow" ${PYTEST_ARGS:-}
[ -d tests/prefect ] && run_suite prefect .venv-prefect tests/prefect tests/reliability/prefect ${PYTEST_ARGS:-}
[ -d tests/prefect ] && run_suite prefect-beside-airflow .venv-all tests/prefect tests/reliability/prefect ${PYTEST_ARGS:-}

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
