"""One trace per task try: the decorators that run an operator's ``execute`` and its resume methods as one
``openwop_core`` trace operation, across deferrals.

``execute`` opens the operation (continuing Airflow's task span, or the user's, when one is active) and
publishes its trace id to XCom (``trace_id``) next to the run id; the trigger carries it in its kwargs; a
method resumed after a deferral (``execute_complete``...) continues the trace the XCom names. So the create,
the whole wait (in the worker or the triggerer) and the final read reach the host in one trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from openwop_core import trace_operation
from openwop_core.tracing import check_trace_id

#: XCom key of the trace id of the task's requests (next to ``run_id`` and ``run_url``).
TRACE_ID_XCOM_KEY = "trace_id"

F = TypeVar("F", bound=Callable[..., Any])


def published_trace_id(context: Any) -> str | None:
    """The trace id this try of the task published before it deferred (None when it published none)."""
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is None:  # a context without a task instance (a method called directly) has no trace to continue
        return None
    try:
        value = ti.xcom_pull(task_ids=ti.task_id, key=TRACE_ID_XCOM_KEY, map_indexes=ti.map_index)
    except Exception:  # no XCom backend reachable: a new trace is better than a failed task
        return None
    try:
        return check_trace_id(value) if value is not None else None
    except ValueError:  # not ours (a user's push under the same key): start afresh
        return None


def task_trace(*, resumed: bool) -> Callable[[F], F]:
    """Decorator of an operator method ``(self, context, ...)``: it runs in the task's trace operation, a new one
    for ``execute`` (``resumed=False``), the published one for a method resumed after a deferral."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def run(self: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            with trace_operation(published_trace_id(context) if resumed else None):
                return method(self, context, *args, **kwargs)

        return cast(F, run)

    return decorate
