"""Example: tasks for single operations: start a run, wait for it, fork (replay) it, wait for the fork.

Forking needs a host whose discovery document offers ``replay`` (the local devhost does; on other hosts
``fork_openwop_run`` raises ``UnsupportedFeatureError``)::

    OPENWOP_BASE_URL=http://127.0.0.1:3737 OPENWOP_API_KEY=... python example_dags/prefect/fork_run.py
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger

from openwop_prefect import OpenwopCredentials, create_openwop_run, fork_openwop_run, wait_for_openwop_run


@flow(name="openwop-fork-run")
def replay_a_run(credentials: OpenwopCredentials, payload: dict[str, Any]) -> dict[str, Any]:
    """Run a workflow, replay it into a new run, and compare the two results."""
    run_id = create_openwop_run(credentials, "conformance-identity", {"payload": payload})
    original = wait_for_openwop_run(credentials, run_id, timeout=600)
    fork_id = fork_openwop_run(credentials, run_id, mode="replay")
    forked = wait_for_openwop_run(credentials, fork_id, timeout=600)
    get_run_logger().info("Run %s and its fork %s agree: %s", run_id, fork_id, original.outputs == forked.outputs)
    return {"run_id": run_id, "fork_id": fork_id, "same_outputs": original.outputs == forked.outputs}


def main(credentials: OpenwopCredentials) -> dict[str, Any]:
    """What ``__main__`` runs (the tests call it with a local host's credentials)."""
    return replay_a_run(credentials, {"experiment": "baseline"})


def credentials_from_env() -> OpenwopCredentials:
    """A saved block named by OPENWOP_BLOCK, else OPENWOP_BASE_URL and OPENWOP_API_KEY."""
    if os.environ.get("OPENWOP_BLOCK"):
        return OpenwopCredentials.load(os.environ["OPENWOP_BLOCK"])
    return OpenwopCredentials(base_url=os.environ["OPENWOP_BASE_URL"], api_key=os.environ.get("OPENWOP_API_KEY"))


if __name__ == "__main__":
    print(main(credentials_from_env()))
