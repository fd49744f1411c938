"""A faithful local OpenWOP v1 host for tests, examples and demos (starlette + uvicorn, in memory).

Boundary: this is a standalone local host for tests. It imports nothing from ``openwop_core`` nor
from the integrations (``openwop_airflow``, ``openwop_prefect``), and they import nothing from it;
the client's tests talk to it only over sockets, as to any other host
(``tests/devhost/test_devhost_boundary.py`` enforces the imports both ways).

Layout: :mod:`.server` (``DevHost``), :mod:`.cli`, :mod:`.pytest_plugin`; :mod:`.http` (the
Starlette app: routing, auth, handlers, SSE, run pages, admin routes); :mod:`.engine` (runs, their
events, interrupts, pause/resume, endings, forks); :mod:`.nodes` (node kinds); :mod:`.workflows`
(definitions, loading, the built-in catalogue); :mod:`.faults`, :mod:`.webhooks`, :mod:`.outbound`
and :mod:`.errors` beside them.

Three ways to start it:

* ``with DevHost() as host:`` — background thread on a free 127.0.0.1 port (``host.base_url``);
* ``openwop-devhost --port 3737`` / ``python -m openwop_devhost`` — a standalone server;
* ``create_app(...)`` — the Starlette app, to serve or mount yourself.

The pytest fixture ``openwop_devhost`` comes from :mod:`openwop_devhost.pytest_plugin`.
Attributes are imported lazily so that importing the pytest plugin stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faults import FailRule, FaultConfigError, Faults
    from .http.app import create_app
    from .server import DevHost
    from .workflows.loading import WorkflowLoadError

__all__ = ["DevHost", "FailRule", "FaultConfigError", "Faults", "WorkflowLoadError", "create_app"]

_LOCATIONS = {
    "DevHost": ".server",
    "create_app": ".http.app",
    "Faults": ".faults",
    "FailRule": ".faults",
    "FaultConfigError": ".faults",
    "WorkflowLoadError": ".workflows.loading",
}


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
