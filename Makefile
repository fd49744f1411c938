# Two commands matter (see README): `make demo` runs the main job, `make test` runs every test.
.PHONY: demo test envs lint ui bench soak clean

demo:
	./scripts/demo.sh

test:
	./scripts/run-tests.sh

envs:
	./scripts/setup-envs.sh

lint: envs
	.venv-core/bin/ruff check . && .venv-core/bin/ruff format --check . && .venv-core/bin/mypy openwop_core

clean:
	rm -rf .venv-core .venv-airflow .venv-prefect .pytest_cache .mypy_cache .ruff_cache
