"""Provider metadata for Airflow's providers manager, read through the ``apache_airflow_provider`` entry point.

Besides listing the modules, it declares the ``openwop`` connection type with ``conn-fields`` and
``ui-field-behaviour``: Airflow 3.2+ builds the connection form from these alone, without importing the hook.
Airflow 3.1 asks the hook instead (``get_connection_form_widgets`` / ``get_ui_field_behaviour``), which hands
it the same fields through :func:`form_widgets` and :func:`form_field_behaviour`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from openwop_core.settings import (
    API_KEY,
    BASE_URL,
    CA_BUNDLE,
    MAX_ATTEMPTS,
    STREAM_IDLE_TIMEOUT,
    TIMEOUT,
    VERIFY,
    Setting,
)

_INTEGRATION = "OpenWOP"

#: Where the "OpenWOP run" link points; read by the provider only (the client has no use for it).
UI_BASE_URL = Setting(
    "ui_base_url",
    str,
    None,
    "UI base URL for links",
    "Where people look at runs, e.g. https://openwop.example.com/ui (the run id is appended as /runs/<id>, or "
    "replaces {run_id}). Empty: links point at the API's run document.",
    format="url",
)


def _form_field(setting: Setting) -> dict[str, Any]:
    """A setting as a field of the connection form. A number stays empty unless filled (the client's default,
    named in the help, then applies); a checkbox shows its default. The form's number box reads only
    ``minimum``, so a "greater than" bound is also given as the minimum (the hook refuses the bound itself)."""
    schema = setting.json_schema()
    description = setting.help
    if setting.kind is bool:
        schema["default"] = setting.default
    elif setting.default is not None:
        description += f" Default {setting.default:g}."
    if "exclusiveMinimum" in schema:
        schema.setdefault("minimum", schema["exclusiveMinimum"])
    return {"label": setting.label, "description": description, "schema": schema}


#: Extra fields of the connection form (stored under the same names in the connection's ``extra``).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    setting.name: _form_field(setting)
    for setting in (TIMEOUT, VERIFY, CA_BUNDLE, UI_BASE_URL, MAX_ATTEMPTS, STREAM_IDLE_TIMEOUT)
}

#: How the standard fields look for this connection type. The port has a field of its own and is asked for
#: even when it is the scheme's default: Airflow 3.3's Test button in the connections list sends an empty
#: port as 0 and then refuses the test ("The host or port to test differs from the stored connection").
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["login"],
    "relabeling": {
        "host": f"{BASE_URL.label} (without the port)",
        "port": "Port (also 443 or 80; Test needs it)",
        "password": API_KEY.label,
        "schema": "Scheme (if the host has none)",
    },
    "placeholders": {
        "host": str(BASE_URL.example),
        "password": "the host's API key",
        "schema": "https",
        "port": "443",
        "extra": '{"timeout": 30, "verify": true, "retry": {"max_attempts": 5}}',
    },
}


def form_widgets() -> dict[str, Any]:
    """``CONN_FIELDS`` as the WTForms fields a hook's ``get_connection_form_widgets`` returns (Airflow 3.1's form).
    Numbers become text fields (the form has no decimal field); the hook reads a number given as text."""
    from wtforms import BooleanField, IntegerField, StringField

    kinds = {"boolean": BooleanField, "integer": IntegerField}
    return {
        name: kinds.get(field["schema"]["type"][0], StringField)(
            field["label"], description=field["description"], default=field["schema"].get("default")
        )
        for name, field in CONN_FIELDS.items()
    }


def form_field_behaviour() -> dict[str, Any]:
    """``UI_FIELD_BEHAVIOUR`` as a hook's ``get_ui_field_behaviour`` returns it (Airflow 3.1's form)."""
    return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}


def _version() -> str:
    """The distribution's version, read without importing the client (discovery stays cheap)."""
    try:
        return version("openwop-integrations")
    except PackageNotFoundError:  # running from a source tree that is not installed
        from openwop_core._version import __version__

        return __version__


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow reads through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "openwop-integrations",
        "name": "OpenWOP",
        "description": "Start, follow, fork, answer and cancel OpenWOP workflow runs from Airflow.",
        "versions": [_version()],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://github.com/openwop/openwop-integrations/blob/main/docs/airflow.md",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": ["openwop_airflow.hooks.openwop"]}],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    "openwop_airflow.operators.run",
                    "openwop_airflow.operators.fork",
                    "openwop_airflow.operators.interrupts",
                    "openwop_airflow.operators.cancel",
                ],
            }
        ],
        "sensors": [{"integration-name": _INTEGRATION, "python-modules": ["openwop_airflow.sensors.run"]}],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["openwop_airflow.triggers.run", "openwop_airflow.triggers.hitl"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "openwop",
                "hook-class-name": "openwop_airflow.hooks.openwop.OpenwopHook",
                "hook-name": "OpenWOP",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": ["openwop_airflow.links.OpenwopRunLink"],
    }
