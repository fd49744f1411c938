# Two commands matter (see README): `make demo` runs the main job, `make test` runs every test.
.PHONY: demo test test-prod envs lint ui prod bench soak clean

demo:
	./scripts/demo.sh

test:
	./scripts/run-tests.sh

envs:
	./scripts/setup-envs.sh

ui:
	./scripts/ui.sh

prod:
	./scripts/prod.sh

# The production-topology tests (Airflow: Postgres, Celery, two triggerers; Prefect: server on Postgres, two workers;
# about 10-15 min on 2 cores): not yet in `make test`, see docs/deployment.md. Both run; either failing fails the
# target.
test-prod:
	./scripts/setup-envs.sh core airflow prefect || exit 1; P="-m pytest -q -p no:cacheprovider"; rc=0; .venv-airflow/bin/python $$P tests/airflow/test_prod_topology.py || rc=1; .venv-prefect/bin/python $$P tests/prefect/test_prod_topology_prefect.py || rc=1; exit $$rc

lint: envs
	.venv-core/bin/ruff check . && .venv-core/bin/ruff format --check . && .venv-core/bin/mypy openwop_core openwop_devhost

bench:
	./scripts/setup-bench-env.sh && ./scripts/setup-envs.sh core airflow prefect && .venv-bench/bin/python -m bench

soak:
	export OPENWOP_SOAK=1 P="-m pytest -q -p no:cacheprovider tests/reliability"; .venv-core/bin/python $$P --ignore=tests/reliability/airflow --ignore=tests/reliability/prefect && .venv-airflow/bin/python $$P/airflow && .venv-prefect/bin/python $$P/prefect

clean:
	rm -rf .venv-core .venv-airflow .venv-airflow31 .venv-prefect .venv-all .venv-py310 .venv-py313 .venv-bench .pytest_cache .mypy_cache .ruff_cache
