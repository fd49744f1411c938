"""Provider registration: the provider info validates against Airflow's own schemas, the providers manager
finds the provider, its connection form and its classes, and ``airflow providers list`` shows it."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema
import pytest

from openwop_airflow.get_provider_info import get_provider_info

AIRFLOW_DIR = Path(airflow.__file__).parent


def test_provider_info_validates_against_airflows_schemas():
    info = get_provider_info()
    jsonschema.validate(info, json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text()))
    yaml_schema = json.loads((AIRFLOW_DIR / "provider.yaml.schema.json").read_text())
    jsonschema.validate(info["connection-types"], yaml_schema["properties"]["connection-types"])
    assert info["package-name"] == "openwop-integrations"


def test_every_declared_module_and_class_imports():
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for path in [info["connection-types"][0]["hook-class-name"], *info["extra-links"]]:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def test_providers_manager_registers_the_provider_its_hook_link_and_triggers():
    from airflow.providers_manager import ProvidersManager

    try:  # the task SDK's registry of hooks (Airflow 3.3); Airflow 3.1 keeps them in ProvidersManager
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as HookRegistry
    except ModuleNotFoundError:
        from airflow.providers_manager import ProvidersManager as HookRegistry

    manager = ProvidersManager()
    assert "openwop-integrations" in manager.providers
    hook = HookRegistry().hooks["openwop"]
    assert hook.hook_class_name == "openwop_airflow.hooks.openwop.OpenwopHook"
    assert hook.connection_id_attribute_name == "openwop_conn_id"
    assert "openwop_airflow.links.OpenwopRunLink" in manager.extra_links_class_names
    assert ("openwop_airflow.triggers.run", "openwop-integrations") in {
        (t.trigger_class_name, t.package_name) for t in manager.trigger
    }


@pytest.mark.airflow33
def test_providers_manager_reads_the_form_from_the_provider_info():
    """Airflow 3.2+ builds the connection form from the provider info's ``conn-fields`` and
    ``ui-field-behaviour`` (3.1 asks the hook; both end in the same form, see the next test)."""
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.field_behaviours["openwop"]["relabeling"]["password"] == "API key"
    assert "login" in manager.field_behaviours["openwop"]["hidden_fields"]
    widgets = manager.connection_form_widgets
    assert widgets["extra__openwop__timeout"].field["schema"]["title"] == "Request timeout (s)"
    assert widgets["extra__openwop__ui_base_url"].field["schema"]["format"] == "url"


def test_ui_connection_form_metadata():
    """What the Airflow 3 UI's connection form receives (GET /ui/connections/hook_meta), computed afresh as by an
    API server's first request: Airflow 3.1 asks the hook for it only when the hook is first imported there."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
    from airflow.providers_manager import ProvidersManager

    ProvidersManager()._cleanup()
    HookMetaService.hook_meta_data.cache_clear()
    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "openwop"]
    assert meta.hook_name == "OpenWOP"
    fields = meta.standard_fields
    assert fields.login.hidden
    assert fields.host.title == "Base URL (without the port)"
    assert fields.port.title == "Port (also 443 or 80; Test needs it)"
    assert fields.password.title == "API key"
    assert fields.host.placeholder == "https://openwop.example.com"
    assert set(meta.extra_fields) == {
        "timeout",
        "verify",
        "ca_bundle",
        "ui_base_url",
        "max_attempts",
        "stream_idle_timeout",
    }
    assert meta.extra_fields["verify"]["value"] is True
    assert meta.extra_fields["timeout"]["schema"]["title"] == "Request timeout (s)"


def test_airflow_providers_list_shows_the_provider():
    """The CLI, in a fresh process, lists the provider (through its entry point)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    providers = {p["package_name"]: p for p in json.loads(result.stdout)}
    assert providers["openwop-integrations"]["version"] == "0.1.0"
