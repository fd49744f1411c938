"""Airflow set-up for the trigger benchmarks: a throwaway ``AIRFLOW_HOME`` and the ``openwop_bench``
connection as an ``AIRFLOW_CONN_*`` variable, set before anything imports Airflow (as the provider's tests
do), so ``OpenwopRunTrigger.run()`` can be driven directly, the way a triggerer's event loop drives it."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

CONN_ID = "openwop_bench"


def configure(base_url: str, api_key: str, *, log_level: str = "WARNING") -> None:
    """Point Airflow at a temporary home and define the ``openwop_bench`` connection for ``base_url``.

    Triggers log one line per run at INFO; the benchmarks log at ``log_level`` (WARNING) so 1,000 waits
    do not flood the terminal. Must run before the first ``import airflow``."""
    home = Path(tempfile.mkdtemp(prefix="openwop-bench-airflow-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": log_level,
            "AIRFLOW_CONN_" + CONN_ID.upper(): json.dumps(
                {"conn_type": "openwop", "host": base_url, "password": api_key}
            ),
        }
    )
