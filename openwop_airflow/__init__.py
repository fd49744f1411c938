"""Apache Airflow provider for OpenWOP: start, follow, fork, answer and cancel OpenWOP workflow runs.

Modules, one per Airflow concept: ``hooks.openwop`` (connection and clients), ``operators.run``,
``operators.fork``, ``operators.interrupts``, ``operators.cancel``, ``sensors.run``, ``triggers.run``,
``triggers.hitl`` and ``links``; ``hitl`` holds asking a person in Airflow. Import the classes from those
modules; this package stays cheap to import for Airflow's provider discovery.
"""

from __future__ import annotations

from openwop_core import __version__

__all__ = ["__version__"]
