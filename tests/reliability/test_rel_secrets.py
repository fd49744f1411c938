"""Secrets through the client: with a distinctive API key and real interrupt tokens, and with retries, dropped
streams, refusals and failures on the way, neither the key nor a token (its signature half) shows in any log
record (the client's and httpx's, at DEBUG), exception text, repr or the host's request log.

The Airflow and Prefect parts search task logs, XComs, serialised triggers, artifacts and block reprs.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from reliability_support import API_KEY, FAST_RETRY, SecretSearch, token_secret_part

from openwop_core import AsyncOpenwopClient, OpenwopClient, OpenwopError, resume
from openwop_devhost import DevHost, FailRule


def test_no_key_or_token_in_logs_errors_or_reprs(fresh_host: DevHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    host = fresh_host
    errors: list[str] = []
    tokens: list[str] = []
    client = OpenwopClient(host.base_url, api_key=API_KEY, retry=FAST_RETRY)
    with client:
        waiting = [client.runs_create("conformance-approval").run_id for _ in range(3)]
        for run_id in waiting:
            host.wait_for_status(run_id, {"waiting-approval"})
            tokens.append(host.open_interrupts(run_id)[0]["token"])
        # retries on token routes (their paths carry the token) and on keyed routes
        host.set_faults(
            drop_sse_after_events=1,
            fail_requests=[
                FailRule(route="GET /v1/interrupts/{token}", status=503, count=2, retry_after=0),
                FailRule(route="POST /v1/interrupts/{token}", status=429, count=2, retry_after=0),
                FailRule(route="POST /v1/runs", status=502, count=1, body="html"),
            ],
        )
        client.interrupts_inspect_by_token(tokens[0])
        client.interrupts_resolve_by_token(tokens[0], resume.approval("accept"))
        run_id = client.runs_create("conformance-multi-node").run_id
        client.wait_for_run(run_id, timeout=30, on_event=lambda e: None)
        # failures whose messages name the call
        for attempt in (
            lambda: client.interrupts_resolve_by_token(tokens[0], resume.approval("accept")),  # already resolved
            lambda: client.interrupts_resolve_by_token(tokens[1][:-2] + "xx", resume.approval("accept")),  # forged
            lambda: client.interrupts_inspect_by_token(tokens[2] + "x"),
            lambda: OpenwopClient(host.base_url, api_key="wrong-" + API_KEY, retry={"max_attempts": 1}).runs_get(
                run_id
            ),
        ):
            with pytest.raises(OpenwopError) as caught:
                attempt()
            errors.append(str(caught.value) + repr(caught.value))
        host.set_faults(fail_requests=[FailRule(route="*", status=503, count=50, retry_after=0)])
        with pytest.raises(OpenwopError) as caught:
            client.interrupts_inspect_by_token(tokens[2])
        errors.append(str(caught.value))

        async def async_side() -> None:
            async with AsyncOpenwopClient(host.base_url, api_key=API_KEY, retry=FAST_RETRY) as aclient:
                errors.append(repr(aclient))
                try:
                    await aclient.interrupts_resolve_by_token(tokens[2], resume.approval("accept"))
                except OpenwopError as exc:
                    errors.append(str(exc))

        asyncio.run(async_side())
        reprs = [repr(client), repr(client.settings), repr(client.settings.auth())]

    search = SecretSearch({"API key": API_KEY, **{f"token {i}": token_secret_part(t) for i, t in enumerate(tokens)}})
    search.add("log records", caplog.text)
    search.add("log record args", [r.args for r in caplog.records])
    search.add("exception texts", "\n".join(errors))
    search.add("reprs", "\n".join(reprs))
    search.add("host request log", host.requests)
    assert "retrying" in caplog.text and "/v1/interrupts/<redacted>" in caplog.text  # the calls were logged...
    assert not search.leaks(), search.leaks()  # ...without the secrets
