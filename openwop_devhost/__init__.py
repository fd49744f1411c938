"""A faithful local OpenWOP v1 host for tests, examples and demos (starlette + uvicorn, in memory).

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
    from .app import create_app
    from .faults import FailRule, FaultConfigError, Faults
    from .server import DevHost
    from .workflows import WorkflowLoadError

__all__ = ["DevHost", "FailRule", "FaultConfigError", "Faults", "WorkflowLoadError", "create_app"]

_LOCATIONS = {
    "DevHost": ".server",
    "create_app": ".app",
    "Faults": ".faults",
    "FailRule": ".faults",
    "FaultConfigError": ".faults",
    "WorkflowLoadError": ".workflows",
}


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
