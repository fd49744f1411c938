"""The Prefect half of the demo: every example flow in ``example_dags/prefect``, in one ephemeral Prefect.

The approval example pauses its flow run for a person; here a "reviewer" thread answers it through
Prefect's own resume API, exactly as the Resume button in the Prefect UI does. Reads the host from
``OPENWOP_BASE_URL`` / ``OPENWOP_API_KEY`` (set by ``scripts/demo.py``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from openwop_prefect import OpenwopCredentials

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags" / "prefect"


def load(name: str) -> ModuleType:
    """Import one example module by file name."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"demo: cannot import {name}.py from {EXAMPLES}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def approve_paused_runs(stop: threading.Event) -> None:
    """Resume every paused flow run with an approval, as a reviewer in the Prefect UI would."""
    answered: set[tuple[str, str]] = set()
    with get_client(sync_client=True) as client:
        while not stop.is_set():
            paused = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
            for run in paused:
                key = (str(run.id), str(run.state.state_details.pause_key) if run.state else "")
                if key in answered:
                    continue
                try:
                    resume_flow_run(run.id, run_input={"action": "accept", "answered_by": "demo-reviewer"})
                except Exception:  # noqa: S112 - the pause's form may not be stored yet; try again
                    continue
                answered.add(key)
                print(f"    reviewer approved the pause of flow run {run.id}", flush=True)
            time.sleep(0.3)


def main() -> None:
    """Run the three examples; fail loudly on the first error."""
    credentials = OpenwopCredentials(base_url=os.environ["OPENWOP_BASE_URL"], api_key=os.environ["OPENWOP_API_KEY"])
    started = time.monotonic()
    print(f"    run_and_wait: {load('run_and_wait').main(credentials)}", flush=True)
    stop = threading.Event()
    reviewer = threading.Thread(target=approve_paused_runs, args=(stop,), daemon=True)
    reviewer.start()
    try:
        print(f"    approval_in_ui: {load('approval_in_ui').main(credentials)}", flush=True)
    finally:
        stop.set()
        reviewer.join(5)
    print(f"    fork_run: {load('fork_run').main(credentials)}", flush=True)
    print(f"    Prefect flows done in {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
