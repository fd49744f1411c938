"""Errors people hit through the base URL they typed: https to a plain-http host, a path prefix."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from core_helpers import API_KEY, call

from openwop_core import AsyncOpenwopClient, NotFoundError, OpenwopClient, TransportError
from openwop_devhost import DevHost


def _client(kind: str, base_url: str) -> Any:
    options: dict[str, Any] = {"api_key": API_KEY, "retry": {"initial_backoff": 0.01, "max_backoff": 0.05}}
    return OpenwopClient(base_url, **options) if kind == "sync" else AsyncOpenwopClient(base_url, **options)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_https_to_a_plain_http_host_says_so_and_is_not_retried(
    kind: str, host: DevHost, caplog: pytest.LogCaptureFixture
) -> None:
    """A plain-http host answering a TLS handshake is a wrong base URL, not a network problem: one attempt,
    and the error names the http:// URL to use."""
    https_url = host.base_url.replace("http://", "https://") + "/openwop"
    client = _client(kind, https_url)
    try:
        with caplog.at_level(logging.WARNING, logger="openwop_core"), pytest.raises(TransportError) as caught:
            await call(client.runs_create("conformance-noop", {}))
    finally:
        await call(client.aclose() if kind == "async" else client.close())
    error = caught.value
    text = str(error)
    assert "answered the TLS handshake in plain HTTP" in text
    assert f"Use {host.base_url}/openwop as the base URL" in text
    assert "POST /openwop/v1/runs" in text
    assert not error.retryable
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_error_names_the_path_with_the_base_urls_prefix(kind: str, host: DevHost) -> None:
    """``http://host/openwop`` requests ``/openwop/v1/...``; the error names that path, not ``/v1/...``."""
    client = _client(kind, host.base_url + "/openwop/")
    try:
        with pytest.raises(Exception) as caught:
            await call(client.runs_get("run_nope"))
    finally:
        await call(client.aclose() if kind == "async" else client.close())
    assert "GET /openwop/v1/runs/run_nope" in str(caught.value)
    assert caught.value.path == "/openwop/v1/runs/run_nope"  # type: ignore[attr-defined]


async def test_without_a_prefix_the_path_is_unchanged(client: Any) -> None:
    with pytest.raises(NotFoundError) as caught:
        await call(client.runs_get("run_nope"))
    assert caught.value.path == "/v1/runs/run_nope"
    assert "GET /v1/runs/run_nope failed" in str(caught.value)
