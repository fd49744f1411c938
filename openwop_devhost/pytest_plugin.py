"""pytest plugin: the ``openwop_devhost`` fixture, a fresh local OpenWOP v1 host per test.

Registered through the ``pytest11`` entry point, so pytest imports this module in every run where
the package is installed: it imports nothing heavy until a fixture is used, and needs no other
plugin. Options for one test go through the marker::

    @pytest.mark.openwop_devhost(faults=Faults(keepalive=False), keepalive_interval=0.2)
    def test_x(openwop_devhost): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import DevHost


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``openwop_devhost`` marker."""
    config.addinivalue_line(
        "markers", "openwop_devhost(**kwargs): keyword arguments for the DevHost of the openwop_devhost fixture"
    )


@pytest.fixture
def openwop_devhost(request: pytest.FixtureRequest) -> Iterator[DevHost]:
    """A running :class:`~openwop_devhost.DevHost` (``.base_url``, ``.api_key``), closed after the test."""
    from .server import DevHost

    marker = request.node.get_closest_marker("openwop_devhost")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    with DevHost(**kwargs) as host:
        yield host


@pytest.fixture
def openwop_devhost_factory() -> Iterator[Callable[..., DevHost]]:
    """Start extra hosts with custom options: ``host = openwop_devhost_factory(faults=...)``; all closed at teardown."""
    from .server import DevHost

    hosts: list[DevHost] = []

    def start(**kwargs: Any) -> DevHost:
        host = DevHost(**kwargs)
        hosts.append(host)
        host.start()
        return host

    yield start
    for host in reversed(hosts):
        host.close()
