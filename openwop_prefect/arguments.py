"""Checks of ``run_openwop_workflow``'s arguments, made before anything is started: its durations, its
``on_interrupt``, and (by the flow's class, before Prefect creates a flow run) the size of its parameters.
"""

import json
import math
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from prefect.flows import Flow
from prefect.settings import get_current_settings
from prefect.utilities.callables import get_call_parameters

from openwop_core import InvalidArgumentError
from openwop_prefect.follower import InterruptHandler

__all__ = ["SizeCheckedFlow", "check_on_interrupt", "check_parameter_size", "check_seconds", "size_checked_flow"]

P = ParamSpec("P")
R = TypeVar("R")


def check_seconds(name: str, value: Any, *, optional: bool = False) -> None:
    """Durations must be positive numbers of seconds: a zero or negative ``timeout`` would start the run and
    give it up at once, and a non-positive ``check_interval`` would poll Prefect in a busy loop."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        allowed = " (or None: as long as the run takes)" if optional else ""
        raise InvalidArgumentError(f"{name} must be a positive number of seconds{allowed}, got {value!r}.")


def check_on_interrupt(on_interrupt: Any) -> InterruptHandler:
    """``on_interrupt`` is one of the three words or a callable."""
    if callable(on_interrupt) or on_interrupt in ("pause", "fail", "return"):
        return cast(InterruptHandler, on_interrupt)
    raise InvalidArgumentError(
        "on_interrupt must be 'pause', 'fail', 'return' or a callable taking the PendingInterrupt, "
        f"got {on_interrupt!r}."
    )


def check_parameter_size(flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call whose parameters the Prefect API would refuse (``max_parameter_size``, 512 KiB by
    default), before any flow run or OpenWOP run exists. Prefect's own refusal comes later, as an HTTP 422
    that echoes every parameter (the whole ``inputs``); this message gives only sizes."""
    limit = get_current_settings().server.api.max_parameter_size
    if limit <= 0:
        return
    call_kwargs = {k: v for k, v in kwargs.items() if k not in ("return_state", "wait_for")}
    try:
        parameters = flow.serialize_parameters(get_call_parameters(flow.fn, args, call_kwargs))
        size = len(json.dumps(parameters, separators=(",", ":"), default=str).encode())
    except Exception:
        return  # arguments that do not bind or encode: Prefect and the flow report those
    if size > limit:
        raise InvalidArgumentError(
            f"run_openwop_workflow's parameters are {size:,} bytes as JSON (mostly inputs), over Prefect's limit "
            f"of {limit:,} bytes for a flow run's parameters (PREFECT_SERVER_API_MAX_PARAMETER_SIZE); nothing was "
            "started. For larger inputs (up to the OpenWOP host's request limit), start the run with the "
            "create_openwop_run task and wait for it with wait_for_openwop_run: task arguments are not stored as "
            "flow-run parameters."
        )


class SizeCheckedFlow(Flow[P, R]):
    """The class of ``run_openwop_workflow``: a Prefect flow that checks its parameters' size when called."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Check the size of the parameters, then run the flow as Prefect does."""
        check_parameter_size(self, args, kwargs)
        return super().__call__(*args, **kwargs)

    def with_options(self, *args: Any, **kwargs: Any) -> "SizeCheckedFlow[P, R]":
        """Prefect's ``with_options``, keeping this class (and so the size check) on the copy."""
        copy = super().with_options(*args, **kwargs)
        copy.__class__ = SizeCheckedFlow
        return cast("SizeCheckedFlow[P, R]", copy)


def size_checked_flow(**options: Any) -> Callable[[Callable[P, R]], SizeCheckedFlow[P, R]]:
    """Like ``@flow(...)``, building a :class:`SizeCheckedFlow`."""
    return lambda fn: SizeCheckedFlow(fn, **options)
