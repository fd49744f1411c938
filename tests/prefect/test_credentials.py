"""The credentials block: form metadata, save/load, registration through the CLI, client settings, and
the API key never showing up in reprs, logs, parameters or artifacts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from prefect import flow, get_client
from prefect.settings import PREFECT_API_URL
from prefect_support import SECRET_KEY, flow_run_artifacts, flow_run_logs, read_flow_run
from pydantic import ValidationError

from openwop_core import ConfigurationError
from openwop_core.settings import CA_BUNDLE, MAX_ATTEMPTS, TIMEOUT, VERIFY
from openwop_prefect import OpenwopCredentials, OpenwopWorkflow, run_openwop_workflow


def test_block_form_has_titles_descriptions_and_a_secret_field():
    schema = OpenwopCredentials.model_json_schema()
    properties = schema["properties"]
    assert properties["base_url"]["title"] == "Base URL"
    assert properties["api_key"]["title"] == "API key"
    assert schema["secret_fields"] == ["api_key"]
    assert properties["api_key"]["anyOf"][0]["format"] == "password"
    assert all(properties[name].get("description") for name in properties)
    assert OpenwopCredentials.get_block_type_slug() == "openwop-credentials"
    assert str(OpenwopCredentials._logo_url).startswith("https://")
    assert str(OpenwopCredentials._documentation_url).endswith("/docs/prefect.md")
    assert OpenwopWorkflow.get_block_type_slug() == "openwop-workflow"


def test_block_fields_are_derived_from_the_core_description():
    """Title, help, default and bounds of each field come from ``openwop_core.settings``: they cannot drift."""
    properties = OpenwopCredentials.model_json_schema()["properties"]
    for field, setting in (
        ("timeout", TIMEOUT),
        ("verify_tls", VERIFY),
        ("ca_bundle_path", CA_BUNDLE),
        ("retry_attempts", MAX_ATTEMPTS),
    ):
        assert properties[field]["title"] == setting.label
        assert properties[field]["description"] == setting.help
        assert properties[field].get("default") == setting.default
    assert properties["timeout"]["exclusiveMinimum"] == TIMEOUT.gt
    assert (properties["retry_attempts"]["minimum"], properties["retry_attempts"]["maximum"]) == (1, 100)


def test_block_takes_what_the_client_takes(host):
    """The core's bounds are the block's: up to 100 attempts (the block stopped at 20), a timeout written as text."""
    credentials = OpenwopCredentials(base_url=host.base_url, retry_attempts=100, timeout="12.5")
    with credentials.get_client() as client:
        assert client.retry.max_attempts == 100
        assert client.settings.timeout == 12.5


def test_saved_and_loaded_block_reaches_the_host(host):
    OpenwopCredentials(base_url=host.base_url, api_key=host.api_key).save("local-host", overwrite=True)

    loaded = OpenwopCredentials.load("local-host")

    assert loaded.api_key.get_secret_value() == SECRET_KEY
    with loaded.get_client() as client:
        assert client.discovery_capabilities().protocol_version


async def test_async_client_from_the_block(credentials, host):
    async with credentials.get_async_client() as client:
        run = await client.runs_create("conformance-noop")
        assert (await client.wait_for_run(run.run_id)).outcome == "completed"


def test_the_key_is_never_printed(host, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    credentials = OpenwopCredentials(base_url=host.base_url, api_key=SECRET_KEY)
    credentials.save("secret-check", overwrite=True)
    loaded = OpenwopCredentials.load("secret-check")

    @flow
    def parent(creds: OpenwopCredentials):
        creds.logger.info("using %r / %s", creds, creds)
        child = run_openwop_workflow(creds, "conformance-failure", check_interval=1, return_state=True)
        return child.state_details.flow_run_id, child.message

    state = parent(loaded, return_state=True)
    child_id, child_message = state.result()

    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name("secret-check", "openwop-credentials", include_secrets=False)
    flow_run_id = state.state_details.flow_run_id
    surfaces = {
        "repr": repr(loaded) + str(loaded) + repr(loaded.get_client()),
        "dump": loaded.model_dump_json(),
        "block document": repr(document.data),
        "parameters": repr(read_flow_run(flow_run_id).parameters) + repr(read_flow_run(child_id).parameters),
        "logs": "\n".join(flow_run_logs(flow_run_id) + flow_run_logs(child_id)),
        "artifacts": repr([a.data for a in flow_run_artifacts(child_id)]),
        "error": str(child_message),
        "console": "".join(capfd.readouterr()),
        "log records": caplog.text,
        "host request log": repr(host.requests),
    }
    assert "OpenwopCredentials" in surfaces["logs"]  # the block was logged...
    assert flow_run_artifacts(child_id)  # ...and an artifact published...
    for name, text in surfaces.items():
        assert SECRET_KEY not in text, f"the API key leaked into {name}"  # ...without the key


def test_tls_settings_reach_the_client(tmp_path, host):
    insecure = OpenwopCredentials(base_url=host.base_url, verify_tls=False)
    assert insecure.get_client().settings.verify is False
    missing = OpenwopCredentials(base_url=host.base_url, ca_bundle_path=str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match=r"ca_bundle_path: no CA bundle at '.*nope\.pem' on this machine"):
        missing.get_client()
    headers = OpenwopCredentials(base_url=host.base_url, headers={"X-Team": "data"}).get_client()
    assert headers.settings.headers == {"X-Team": "data"}
    assert "prefect/" in headers.settings.user_agent


def test_bad_base_url_is_refused_when_the_block_is_built():
    with pytest.raises(ValidationError, match="has no scheme"):
        OpenwopCredentials(base_url="openwop.example.com")


def test_prefect_block_register_finds_the_blocks():
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    completed = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "openwop_prefect"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "OpenWOP Credentials" in completed.stdout
    assert "OpenWOP Workflow" in completed.stdout
    with get_client(sync_client=True) as client:
        block_type = client.read_block_type_by_slug("openwop-credentials")
    assert block_type.name == "OpenWOP Credentials"
    assert block_type.documentation_url
