"""Test helpers for every environment (core, Airflow, Prefect): poll until something holds, and run test
choreography (answer a question, stop a host...) in a background thread.

Importable everywhere: standard library only. ``tests/`` is on ``sys.path`` because ``tests/conftest.py``
lives there (pytest's default ``prepend`` import mode; the test folders are not packages), so every suite
imports it as ``shared_support``. Processes that tests start have their own module, ``process_hygiene``.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.01,
    *,
    what: str | None = None,
    detail: Callable[[], str] | None = None,
) -> Any:
    """Poll ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    Test choreography, never the assertion itself: after ``timeout`` it raises ``TimeoutError`` naming
    ``what`` (else the predicate), followed by ``detail()`` when given (a deployment's logs, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"{what or predicate} not met within {timeout}s"
            raise TimeoutError(f"{message}\n{detail()}" if detail is not None else message)
        time.sleep(interval)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``fn`` in a daemon thread that shares this context (Prefect keeps its settings in context
    variables); the returned dict receives ``result`` or ``error``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc
            # Shown at once on the real stderr: a test whose main thread waits for this one (a DAG run waiting
            # for an answer) may only end by its timeout, which would otherwise hide why the answer never came.
            print(f"background thread {fn!r} failed:", file=sys.__stderr__)
            traceback.print_exc(file=sys.__stderr__)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    thread.start()
    return thread, box


@contextlib.contextmanager
def in_background(fn: Callable[[], None], join_timeout: float = 60.0) -> Iterator[threading.Thread]:
    """Run ``fn`` in a thread (:func:`in_thread`) during the block; at its end wait for it (up to
    ``join_timeout`` seconds) and re-raise what it raised."""
    thread, box = in_thread(fn)
    yield thread
    thread.join(timeout=join_timeout)
    if "error" in box:
        raise box["error"]
