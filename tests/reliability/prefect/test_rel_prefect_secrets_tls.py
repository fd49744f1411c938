"""Secrets and TLS through the Prefect integration.

Every example flow runs with the distinctive API key (the approval one answered through Prefect's resume
API, as the UI does, while the run's signed interrupt token exists on the host), plus a failing run and a
block saved and loaded. Then everything Prefect kept or printed is searched for the key and the token's
signature: flow and task run logs, artifacts, flow run parameters and results, the block document, block
reprs and dumps, exception texts, the console and log records.

TLS: a block pointing at a loopback HTTPS host with a private CA is refused by default, naming the
certificate problem; with ``ca_bundle_path`` the flow runs to its outputs; a key for a plain-http remote
host warns.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime
from prefect_support import SECRET_KEY, flow_run_artifacts, flow_run_logs
from pydantic import SecretStr
from reliability_support import SecretSearch, TlsHost, TlsMaterial, make_tls_material, token_secret_part

from openwop_core import InsecureTransportWarning, TransportError
from openwop_devhost import DevHost
from openwop_prefect import OpenwopCredentials, OpenwopRunFailed, run_openwop_workflow

EXAMPLES = Path(__file__).resolve().parents[3] / "example_dags" / "prefect"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"rel_prefect_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flow_runs_since(moment: datetime) -> list[Any]:
    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=cast(Any, moment)))
            )
        )


def watch_tokens(host: DevHost, tokens: list[str], stop: threading.Event) -> threading.Thread:
    """Collect the signed tokens of every interrupt the host opens while the flows run."""

    def watch() -> None:
        while not stop.is_set():
            for run_id in host.run_ids():
                for interrupt in host.open_interrupts(run_id):
                    if interrupt["token"] not in tokens:
                        tokens.append(interrupt["token"])
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_no_example_flow_leaks_the_key_or_a_token(
    host: DevHost,
    responder: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    began = datetime.now(timezone.utc)
    credentials = OpenwopCredentials(base_url=host.base_url, api_key=SecretStr(SECRET_KEY))
    credentials.save("rel-secret-check", overwrite=True)
    loaded = cast(OpenwopCredentials, OpenwopCredentials.load("rel-secret-check"))
    tokens: list[str] = []
    stop = threading.Event()
    watcher = watch_tokens(host, tokens, stop)
    try:
        results = [load_example("run_and_wait").main(loaded)]
        person = responder([{"action": "accept", "answered_by": "rel-reviewer"}])
        results.append(load_example("approval_in_ui").main(loaded))
        person.join()
        results.append(load_example("fork_run").main(loaded))
        with pytest.raises(OpenwopRunFailed) as failed:
            run_openwop_workflow(loaded, "conformance-failure", check_interval=0.5)
    finally:
        stop.set()
        watcher.join(timeout=5)

    assert results[1]["decidedBy"] == "rel-reviewer"
    assert tokens, "the approval's token was never seen on the host"
    runs = flow_runs_since(began)
    assert len(runs) >= 4
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name("rel-secret-check", "openwop-credentials", include_secrets=False)
    search = SecretSearch({"API key": SECRET_KEY, **{f"token {i}": token_secret_part(t) for i, t in enumerate(tokens)}})
    for run in runs:
        search.add("flow run logs", "\n".join(flow_run_logs(run.id)))
        search.add("artifacts", [artifact.data for artifact in flow_run_artifacts(run.id)])
        search.add("flow run parameters", run.parameters)
        search.add("flow run states", run.state.message if run.state else "")
    search.add("results", results)
    search.add("block document", document.data)
    search.add(
        "block reprs and dumps", repr(loaded) + str(loaded) + loaded.model_dump_json() + repr(loaded.get_client())
    )
    search.add("exception text", str(failed.value) + repr(failed.value))
    search.add("console", "".join(capfd.readouterr()))
    search.add("log records", caplog.text)
    assert "artifacts" in search.surfaces and "Started OpenWOP run" in search.surfaces["flow run logs"]
    assert not search.leaks(), search.leaks()


# -- TLS -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[TlsHost, TlsMaterial]]:
    material = make_tls_material()
    with TlsHost(material, api_key=SECRET_KEY) as tls_host:
        yield tls_host, material


def test_a_private_ca_is_refused_by_default_and_trusted_with_a_ca_bundle(
    tls: tuple[TlsHost, TlsMaterial], caplog: pytest.LogCaptureFixture
) -> None:
    tls_host, material = tls
    default = OpenwopCredentials(base_url=tls_host.base_url, api_key=SecretStr(SECRET_KEY))  # default retries
    assert default.verify_tls is True
    with pytest.raises(TransportError) as refused:
        run_openwop_workflow(default, "conformance-noop", check_interval=0.5)
    assert f"TLS certificate of {tls_host.base_url} was not trusted" in str(refused.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    assert "the credentials block's ca_bundle_path" in str(refused.value)  # the fix, in Prefect's terms
    assert refused.value.retryable is False
    assert "retrying in" not in caplog.text  # not transient: neither the request nor the task was retried
    assert "Retry 1/" not in caplog.text  # Prefect: "Retry 1/2 will start 10 second(s) from now"

    trusted = OpenwopCredentials(
        base_url=tls_host.base_url, api_key=SecretStr(SECRET_KEY), ca_bundle_path=str(material.ca_cert)
    )
    outputs = run_openwop_workflow(trusted, "conformance-identity", {"payload": {"over": "tls"}}, check_interval=0.5)
    assert outputs == {"payload": {"over": "tls"}}


def test_a_key_over_plain_http_to_another_machine_warns(host: DevHost) -> None:
    with pytest.warns(InsecureTransportWarning, match="sent unencrypted to http://openwop.example.com"):
        OpenwopCredentials(base_url="http://openwop.example.com", api_key=SecretStr(SECRET_KEY)).get_client()
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureTransportWarning)
        OpenwopCredentials(base_url=host.base_url, api_key=SecretStr(SECRET_KEY)).get_client()  # loopback: no warning
