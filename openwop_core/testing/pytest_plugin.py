"""pytest plugin: the ``openwop_devhost`` fixture (a running local OpenWOP v1 host per test).

Registered through the ``pytest11`` entry point, so this module is imported by every pytest
run in an environment where the package is installed: it must stay cheap to import and must
not import starlette/uvicorn until the fixture is actually used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from openwop_core.testing.server import DevHost


@pytest.fixture
def openwop_devhost() -> Iterator[DevHost]:
    """Start a fresh local OpenWOP host for one test and stop it afterwards."""
    from openwop_core.testing.server import DevHost

    with DevHost() as host:
        yield host
