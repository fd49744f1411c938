"""The reliability suite's shared set-up (also loaded for ``tests/reliability/airflow`` and ``.../prefect``):
one local host per test module for the properties, the summary of cases and events checked, and the soak
switch (``OPENWOP_SOAK=1``, see ``reliability_support.SOAK``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reliability_support import API_KEY, SOAK, WORKFLOWS_DIR, tally_lines

from openwop_devhost import DevHost


def pytest_report_header(config: pytest.Config) -> str:
    """Say which counts this run uses."""
    return f"openwop reliability: {'SOAK counts (OPENWOP_SOAK=1)' if SOAK else 'CI counts'}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many generated cases and events the properties checked."""
    lines = tally_lines()
    if lines:
        terminalreporter.section("openwop reliability")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def rel_host() -> Iterator[DevHost]:
    """One local host per test module (the properties create hundreds of runs on it), with the suite's
    workflows and a short keepalive."""
    with DevHost(api_key=API_KEY, workflows_dir=WORKFLOWS_DIR, keepalive_interval=0.2) as host:
        yield host


@pytest.fixture
def fresh_host() -> Iterator[DevHost]:
    """A host of its own for a test that changes host-wide faults or stops the host."""
    with DevHost(api_key=API_KEY, workflows_dir=WORKFLOWS_DIR, keepalive_interval=0.2) as host:
        yield host
