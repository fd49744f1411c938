"""Suite-wide rule for every environment: no process that a test started outlives the test session."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from process_hygiene import become_subreaper, kill_leftovers, leftover_processes

#: How long the end of the session waits for processes that are already stopping (a server shutting down).
LEFTOVER_GRACE_SECONDS = 15.0

# Orphans (a process whose parent a test stopped) become children of pytest, not of init, so the check sees them.
become_subreaper()


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Fail the session (an error at the teardown of its last test) when a descendant of the pytest process is
    still alive after every other fixture has ended, listing their command lines; they are then stopped."""
    yield
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    leftovers = leftover_processes()
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.2)
        leftovers = leftover_processes()
    if leftovers:
        kill_leftovers(leftovers)
        listing = "\n".join(f"  pid {pid}: {cmdline[:300]}" for pid, cmdline in leftovers)
        pytest.fail(
            f"{len(leftovers)} process(es) started by the tests were still running at the end of the session "
            f"(now stopped); the test that starts a process must stop it and its children "
            f"(tests/process_hygiene.py: start_process / stop_process_tree):\n{listing}",
            pytrace=False,
        )
