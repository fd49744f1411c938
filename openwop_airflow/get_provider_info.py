"""Provider metadata for Airflow's providers manager (placeholder until the provider lands)."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow reads through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "openwop-integrations",
        "name": "OpenWOP",
        "description": "Run OpenWOP workflows from Airflow.",
        "versions": ["0.1.0"],
    }
