"""Example: run an OpenWOP workflow from a Prefect flow and use its outputs.

Run it against any OpenWOP host::

    OPENWOP_BASE_URL=http://127.0.0.1:3737 OPENWOP_API_KEY=... python example_dags/prefect/run_and_wait.py
    OPENWOP_BLOCK=my-host python example_dags/prefect/run_and_wait.py   # a saved OpenwopCredentials block

(``openwop-devhost --port 3737`` starts a local host that has the ``conformance-*`` workflows.)
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger

from openwop_prefect import OpenwopCredentials, run_openwop_workflow


@flow(name="openwop-run-and-wait")
def run_and_wait(credentials: OpenwopCredentials, payload: dict[str, Any]) -> dict[str, Any]:
    """Run the echo workflow as a subflow (progress in its logs, a summary artifact), then use its outputs."""
    outputs = run_openwop_workflow(credentials, "conformance-identity", {"payload": payload}, timeout=600)
    get_run_logger().info("The workflow echoed %s", outputs["payload"])
    return outputs


def main(credentials: OpenwopCredentials) -> dict[str, Any]:
    """What ``__main__`` runs (the tests call it with a local host's credentials)."""
    return run_and_wait(credentials, {"report": "nightly", "rows": 42})


def credentials_from_env() -> OpenwopCredentials:
    """A saved block named by OPENWOP_BLOCK, else OPENWOP_BASE_URL and OPENWOP_API_KEY."""
    if os.environ.get("OPENWOP_BLOCK"):
        return OpenwopCredentials.load(os.environ["OPENWOP_BLOCK"])
    return OpenwopCredentials(base_url=os.environ["OPENWOP_BASE_URL"], api_key=os.environ.get("OPENWOP_API_KEY"))


if __name__ == "__main__":
    print(main(credentials_from_env()))
