"""Example: a workflow that needs a person's approval, answered in the Prefect UI.

Answering in the Prefect UI needs a Prefect server with its UI. Start one, point the flow at it, run it::

    prefect server start                                  # in another terminal; UI at http://127.0.0.1:4200
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    OPENWOP_BASE_URL=http://127.0.0.1:3737 OPENWOP_API_KEY=... python example_dags/prefect/approval_in_ui.py

When the OpenWOP run waits at its approval gate, the ``run-openwop-workflow`` subflow run pauses (not the
``openwop-approval-in-ui`` run you started); the log gives its link. Open it, press Resume, choose accept or
reject (optionally with feedback and your name) and the run carries on. Answering on the OpenWOP host
instead also ends the pause, within a second.

Without PREFECT_API_URL, Prefect runs the flow on a temporary server that has no UI: the flow then warns
that nobody can press Resume and logs the ``openwop runs resolve`` command that answers on the OpenWOP host
(which ends the pause), instead of a link to a UI that does not exist.
A rejection fails the flow with the host's reason (``OpenwopRunFailed``, code ``approval_rejected``).
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger

from openwop_prefect import OpenwopCredentials, run_openwop_workflow


@flow(name="openwop-approval-in-ui")
def release_with_approval(credentials: OpenwopCredentials, interrupt_timeout: float = 3600) -> dict[str, Any]:
    """Run the approval workflow; its gate becomes a Resume form on this flow run."""
    outputs = run_openwop_workflow(
        credentials,
        "conformance-approval",
        on_interrupt="pause",  # the default: ask a person in the Prefect UI
        interrupt_timeout=interrupt_timeout,  # nobody answers in time: the remote run is cancelled
    )
    decision = outputs["approval"]
    get_run_logger().info("Approved by %s", decision.get("decidedBy"))
    return decision


def main(credentials: OpenwopCredentials) -> dict[str, Any]:
    """What ``__main__`` runs (the tests call it and answer the pause through Prefect's resume API)."""
    return release_with_approval(credentials)


def credentials_from_env() -> OpenwopCredentials:
    """A saved block named by OPENWOP_BLOCK, else OPENWOP_BASE_URL and OPENWOP_API_KEY."""
    if os.environ.get("OPENWOP_BLOCK"):
        return OpenwopCredentials.load(os.environ["OPENWOP_BLOCK"])
    return OpenwopCredentials(base_url=os.environ["OPENWOP_BASE_URL"], api_key=os.environ.get("OPENWOP_API_KEY"))


if __name__ == "__main__":
    print(main(credentials_from_env()))
