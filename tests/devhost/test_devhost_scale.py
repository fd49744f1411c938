"""One host holds 1,000 active runs with 1,000 concurrent SSE subscribers, all reaching their end.

The subscribers use httpx's async client, spread over 20 clients of 50 connections each: one
pool of 1,000 connections makes httpcore itself the bottleneck of this test, not the host.
"""

from __future__ import annotations

import asyncio
import resource

import httpx

from openwop_devhost import DevHost

RUNS = 1000
PER_CLIENT = 50


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def _create_runs(host: DevHost) -> list[str]:
    with httpx.Client(base_url=host.base_url, headers={"Authorization": f"Bearer {host.api_key}"}) as client:
        return [
            client.post("/v1/runs", json={"workflowId": "conformance-approval"}).json()["runId"] for _ in range(RUNS)
        ]


def _approve_all(host: DevHost, run_ids: list[str]) -> set[int]:
    with httpx.Client(base_url=host.base_url, headers={"Authorization": f"Bearer {host.api_key}"}) as client:
        return {
            client.post(f"/v1/runs/{run_id}/interrupts/gate", json={"resumeValue": {"action": "accept"}}).status_code
            for run_id in run_ids
        }


async def test_thousand_active_runs_and_subscribers() -> None:
    _raise_fd_limit(4 * RUNS + 256)
    with DevHost(keepalive_interval=5.0) as host:
        auth = {"Authorization": f"Bearer {host.api_key}"}
        # plain sequential requests are the cheapest way to set up; they run in a worker thread
        run_ids = await asyncio.to_thread(_create_runs, host)
        limits = httpx.Limits(max_connections=PER_CLIENT, max_keepalive_connections=PER_CLIENT)
        clients = [
            httpx.AsyncClient(base_url=host.base_url, headers=auth, limits=limits, timeout=60)
            for _ in range(RUNS // PER_CLIENT)
        ]
        connected = 0
        all_connected = asyncio.Event()

        async def subscribe(index: int, run_id: str) -> list[str]:
            nonlocal connected
            names: list[str] = []
            client = clients[index % len(clients)]
            async with client.stream(
                "GET", f"/v1/runs/{run_id}/events", headers={"Accept": "text/event-stream"}
            ) as response:
                assert response.status_code == 200
                connected += 1
                if connected == RUNS:
                    all_connected.set()
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        names.append(line[7:])
            return names

        try:
            tasks = [asyncio.create_task(subscribe(i, run_id)) for i, run_id in enumerate(run_ids)]
            await asyncio.wait_for(all_connected.wait(), 30)
            statuses = set(await asyncio.to_thread(lambda: {host.get_run(r)["status"] for r in run_ids}))
            assert statuses == {"waiting-approval"}  # 1,000 active runs, 1,000 open streams
            # resolve while the streams keep reading (the stream clients' pools are full)
            assert await asyncio.to_thread(_approve_all, host, run_ids) == {200}
            streams = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        finally:
            for client in clients:
                await client.aclose()
    assert all(names[-1] == "run.completed" for names in streams)
    assert all(names.count("interrupt.requested") == 1 and "approval.received" in names for names in streams)
