"""The Prefect half of ``bench/scale_topology.py``, run in ``.venv-prefect`` against the topology's server
(``PREFECT_API_URL`` and ``OPENWOP_*`` from the environment): deploy the shipped flow by module entrypoint, create
``--flow-runs`` flow runs of ``conformance-delay`` at once with the saved credentials block chosen by reference,
wait for all of them, and print the figures as one JSON line (Prefect's own ``created``/``start_time``/
``end_time`` of each flow run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.types.entrypoint import EntrypointType

from openwop_prefect import OpenwopCredentials, run_openwop_workflow


def pcts(values: list[float]) -> dict[str, float]:
    """p50 / p99 / max, in seconds, rounded."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 1), "p99": round(p99, 1), "max": round(ordered[-1], 1)}


def read(ids: list[UUID]) -> list[FlowRun]:
    """The flow runs, read in pages of 200."""
    runs: list[FlowRun] = []
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            runs += client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=200)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow-runs", type=int, default=200)
    parser.add_argument("--block", required=True)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--worker-limit", type=int, required=True, help="the workers' --limit (reported)")
    parser.add_argument("--timeout", type=float, default=3000)
    args = parser.parse_args()
    block_id = OpenwopCredentials.load(args.block)._block_document_id
    deployment_id = run_openwop_workflow.deploy(
        name="scale",
        work_pool_name=args.pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        print_next_steps=False,
        ignore_warnings=True,
    )
    parameters: dict[str, Any] = {
        "credentials": {"$ref": {"block_document_id": str(block_id)}},
        "workflow_id": "conformance-delay",
        "inputs": {"delayMs": 1000},
        "check_interval": 1,
    }
    ids = [run_deployment(deployment_id, parameters=parameters, timeout=0).id for _ in range(args.flow_runs)]
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        runs = read(ids)
        if all(r.state is not None and r.state.is_final() for r in runs):
            break
        time.sleep(2)
    runs = read(ids)
    done = [r for r in runs if r.state is not None and r.state.is_completed()]
    created = [r.created for r in runs if r.created]
    ends = [r.end_time for r in done if r.end_time]
    span = (max(ends) - min(created)).total_seconds() if ends and created else float("nan")
    figures = {
        "flow_runs": len(ids),
        "worker_limit": args.worker_limit,
        "completed": len(done),
        "not_completed": {str(r.id): r.state_name for r in runs if r not in done},
        "first_created_to_last_completed_s": round(span, 1),
        "throughput_per_min": round(len(done) / (span / 60), 1) if span == span and span > 0 else None,
        "to_running_s": pcts([(r.start_time - r.created).total_seconds() for r in done if r.start_time and r.created]),
        "running_s": pcts([(r.end_time - r.start_time).total_seconds() for r in done if r.end_time and r.start_time]),
        "to_completed_s": pcts([(r.end_time - r.created).total_seconds() for r in done if r.end_time and r.created]),
    }
    print(json.dumps(figures))
    return 0 if len(done) == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
