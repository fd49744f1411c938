"""Provider metadata for Airflow's providers manager, read through the ``apache_airflow_provider`` entry point.

Besides listing the modules, it declares the ``openwop`` connection type with ``conn-fields`` and
``ui-field-behaviour``: Airflow 3.2+ builds the connection form from these alone, without importing the hook.
Airflow 3.1 asks the hook instead (``get_connection_form_widgets`` / ``get_ui_field_behaviour``), which hands
it the same fields through :func:`form_widgets` and :func:`form_field_behaviour`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

_INTEGRATION = "OpenWOP"


def _field(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": schema}


#: Extra fields of the connection form (stored under the same names in the connection's ``extra``).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": _field(
        "Request timeout (s)",
        "Seconds one HTTP request may take (default 30).",
        type=["number", "null"],
        minimum=0,
    ),
    "verify": _field(
        "Verify TLS certificate",
        "Turn off only for a throwaway test host; use 'CA bundle path' for a private CA instead.",
        type=["boolean", "null"],
        default=True,
    ),
    "ca_bundle": _field(
        "CA bundle path",
        "Path (on workers and triggerers) of a PEM file with the CA that signed the host's certificate.",
        type=["string", "null"],
    ),
    "ui_base_url": _field(
        "UI base URL for links",
        "Where people look at runs, e.g. https://openwop.example.com/ui (the run id is appended as /runs/<id>, "
        "or replaces {run_id}). Empty: links point at the API's run document.",
        type=["string", "null"],
        format="url",
    ),
    "max_attempts": _field(
        "Retry: attempts per request",
        "Attempts for a transient failure (connection error, 429, 5xx), the first included (default 5).",
        type=["integer", "null"],
        minimum=1,
        maximum=100,
    ),
    "stream_idle_timeout": _field(
        "Event stream idle timeout (s)",
        "Silence after which the event stream is reconnected (default 90).",
        type=["number", "null"],
        minimum=0,
    ),
}

#: How the standard fields look for this connection type. The port has a field of its own and is asked for
#: even when it is the scheme's default: Airflow 3.3's Test button in the connections list sends an empty
#: port as 0 and then refuses the test ("The host or port to test differs from the stored connection").
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["login"],
    "relabeling": {
        "host": "Base URL (without the port)",
        "port": "Port (also 443 or 80; Test needs it)",
        "password": "API key",
        "schema": "Scheme (if the host has none)",
    },
    "placeholders": {
        "host": "https://openwop.example.com",
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
