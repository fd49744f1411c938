"""Answers a real server can't easily produce (HTTP-date Retry-After, a proxy's HTML, truncated JSON),
through a mock transport. Assertions are on behaviour: results, errors and waits, not on call counts."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest
import respx

from openwop_core import AsyncOpenwopClient, OpenwopClient, ResponseFormatError, ServerError

BASE = "https://openwop.test"
SNAPSHOT = {"runId": "r1", "workflowId": "w", "status": "running"}


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the client's sleeps instead of sleeping (tenacity sleeps through time.sleep)."""
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    return calls


@respx.mock
def test_http_date_retry_after_is_honoured(slept: list[float]) -> None:
    later = formatdate(time.time() + 4, usegmt=True)
    respx.get(f"{BASE}/v1/runs/r1").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": later}, json={"error": "service_unavailable", "message": "x"}),
            httpx.Response(200, json=SNAPSHOT),
        ]
    )
    with OpenwopClient(BASE, api_key="k") as client:
        assert client.runs_get("r1").status == "running"
    assert len(slept) == 1 and 2.5 <= slept[0] <= 4.5


@respx.mock
def test_html_502_from_a_proxy_is_retried_then_reported(slept: list[float]) -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    respx.get(f"{BASE}/v1/runs/r1").mock(
        return_value=httpx.Response(502, content=html, headers={"content-type": "text/html"})
    )
    with OpenwopClient(BASE, api_key="k", retry={"max_attempts": 3, "initial_backoff": 0.01}) as client:
        with pytest.raises(ServerError) as info:
            client.runs_get("r1")
    assert info.value.status_code == 502 and "non-JSON (text/html)" in str(info.value)
    assert len(slept) == 2


@respx.mock
def test_truncated_json_success_body_is_a_clear_format_error() -> None:
    respx.get(f"{BASE}/v1/runs/r1").mock(return_value=httpx.Response(200, content=b'{"runId": "r1", "sta'))
    with OpenwopClient(BASE, api_key="k") as client:
        with pytest.raises(ResponseFormatError, match=r"GET /v1/runs/r1 answered HTTP 200 with invalid JSON"):
            client.runs_get("r1")


@respx.mock
def test_html_page_with_200_is_not_mistaken_for_a_snapshot() -> None:
    respx.get(f"{BASE}/v1/runs/r1").mock(return_value=httpx.Response(200, content=b"<!doctype html><p>login</p>"))
    with OpenwopClient(BASE, api_key="k") as client:
        with pytest.raises(ResponseFormatError, match="an HTML page") as info:
            client.runs_get("r1")
    assert "not an OpenWOP v1 host" in str(info.value)


@respx.mock
def test_wrong_document_shape_names_the_missing_field() -> None:
    respx.get(f"{BASE}/v1/runs/r1").mock(return_value=httpx.Response(200, json={"hello": "world"}))
    with OpenwopClient(BASE, api_key="k") as client:
        with pytest.raises(ResponseFormatError, match="runId"):
            client.runs_get("r1")


@respx.mock
async def test_async_http_date_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, *args: object) -> None:
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    later = formatdate(time.time() + 3, usegmt=True)
    respx.get(f"{BASE}/v1/runs/r1").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": later}, json={"error": "rate_limited", "message": "x"}),
            httpx.Response(200, json=SNAPSHOT),
        ]
    )
    async with AsyncOpenwopClient(BASE, api_key="k") as client:
        assert (await client.runs_get("r1")).run_id == "r1"
    assert any(1.5 <= w <= 3.5 for w in waits)
