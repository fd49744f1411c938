"""The pytest plugin: ``openwop_devhost`` fixture, its marker, the factory, and cheap import."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from openwop_devhost import DevHost, Faults

pytest_plugins = ["pytester"]


def test_fixture_yields_running_host(openwop_devhost: DevHost) -> None:
    assert openwop_devhost.base_url.startswith("http://127.0.0.1:")
    assert not openwop_devhost.base_url.endswith("/")
    assert openwop_devhost.api_key.startswith("devhost-")
    response = httpx.post(
        f"{openwop_devhost.base_url}/v1/runs",
        json={"workflowId": "conformance-noop"},
        headers={"Authorization": f"Bearer {openwop_devhost.api_key}"},
    )
    assert response.status_code == 201
    assert openwop_devhost.runs_created("conformance-noop") == 1
    assert openwop_devhost.run_ids() == [response.json()["runId"]]


@pytest.mark.openwop_devhost(api_key="marker-key", faults=Faults(omit_events_url=True))
def test_marker_configures_the_fixture(openwop_devhost: DevHost) -> None:
    assert openwop_devhost.api_key == "marker-key"
    body = httpx.post(
        f"{openwop_devhost.base_url}/v1/runs",
        json={"workflowId": "conformance-noop"},
        headers={"Authorization": "Bearer marker-key"},
    ).json()
    assert "eventsUrl" not in body


def test_factory_starts_several_hosts(openwop_devhost_factory: object) -> None:
    first = openwop_devhost_factory(api_key="one")  # type: ignore[operator]
    second = openwop_devhost_factory(api_key="two")  # type: ignore[operator]
    assert first.port != second.port and first.running and second.running


def test_plugin_needs_no_other_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_uses_fixture(openwop_devhost):
            assert httpx.get(openwop_devhost.base_url + "/.well-known/openwop").status_code == 200
        """
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:asyncio", "-p", "no:anyio", "-p", "no:respx", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys, openwop_devhost.pytest_plugin\n"
        "heavy = [m for m in ('starlette', 'uvicorn', 'openwop_devhost.server') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert output == ""


def test_async_context_manager_and_restart_errors() -> None:
    import asyncio

    async def use() -> int:
        async with DevHost() as host, httpx.AsyncClient() as client:
            return (await client.get(f"{host.base_url}/.well-known/openwop")).status_code

    assert asyncio.run(use()) == 200
    host = DevHost()
    host.start()
    host.close()
    host.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        host.start()
