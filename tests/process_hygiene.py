"""Processes that tests start: start each in its own process group, stop the whole tree, and find what is left.

Every process a test starts must end with the test, children included (an Airflow scheduler's LocalExecutor
workers and ``serve-logs``, a triggerer's runner). ``tests/conftest.py`` fails the session when a descendant
of the pytest process is still alive at its end. Linux only (reads ``/proc``), as the test suite is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Helpers that Python's standard library starts for the life of the interpreter and that end with it.
INTERPRETER_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the "child subreaper" of its descendants (Linux ``PR_SET_CHILD_SUBREAPER``): a process
    whose parent exits is re-parented here instead of to init, so :func:`leftover_processes` still sees it (an
    Airflow scheduler stopped without its ``serve-logs`` children). Returns whether it took effect."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _state_and_ppid(pid: int | str) -> tuple[str, int] | None:
    """A process's state letter (``Z``: a zombie) and parent pid from ``/proc``; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _children_map() -> dict[int, list[int]]:
    """``{ppid: [pid, ...]}`` of every live (non-zombie) process."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = _state_and_ppid(entry.name)
        if found is not None and found[0] != "Z":
            children.setdefault(found[1], []).append(int(entry.name))
    return children


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process: a zombie (ended, not yet reaped: the tests' pytest is the subreaper
    of every orphan, and reaps none of them) is not."""
    found = _state_and_ppid(pid)
    return found is not None and found[0] != "Z"


def command_line(pid: int) -> str:
    """The process's command line (``?`` once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (children, grandchildren...), parents before children."""
    children = _children_map()
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop(0)
        found.append(child)
        pending.extend(children.get(child, []))
    return found


def leftover_processes(pid: int | None = None) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the descendants of ``pid`` (default: this process) that tests left running,
    without the interpreter's own helpers (:data:`INTERPRETER_HELPERS`)."""
    result = []
    for child in descendants(os.getpid() if pid is None else pid):
        cmdline = command_line(child)
        if not any(helper in cmdline for helper in INTERPRETER_HELPERS):
            result.append((child, cmdline))
    return result


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive(pids: Iterable[int]) -> list[int]:
    children = {pid for kids in _children_map().values() for pid in kids}
    return [pid for pid in pids if pid in children]


def start_process(args: list[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` in a new session (its own process group), so that it and its children can be
    stopped together with :func:`stop_process_tree`."""
    return subprocess.Popen(args, start_new_session=True, **popen_kwargs)


def stop_process_tree(
    process: subprocess.Popen[Any], *, sig: signal.Signals = signal.SIGTERM, grace: float = 20.0
) -> None:
    """Stop ``process``, its process group and every descendant: ``sig`` first, SIGKILL to whatever is still
    alive after ``grace`` seconds. The tree is read before signalling, so children that change their group
    or are re-parented when their parent exits are stopped too."""
    tree = [process.pid, *descendants(process.pid)]
    if process.poll() is None or tree[1:]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        _signal_all(tree, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        tree.extend(pid for pid in descendants(process.pid) if pid not in tree)
        if process.poll() is not None and not _alive(tree[1:]):
            break
        time.sleep(0.1)
    if process.poll() is None or _alive(tree[1:]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        _signal_all(_alive(tree), signal.SIGKILL)
    process.wait(timeout=10)


def kill_leftovers(leftovers: list[tuple[int, str]], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds, the processes of :func:`leftover_processes`."""
    pids = [pid for pid, _ in leftovers]
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_all(_alive(pids), signal.SIGKILL)
