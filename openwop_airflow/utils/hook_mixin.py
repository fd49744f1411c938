"""``OpenwopHookMixin``: the ``hook`` every OpenWOP operator and sensor reaches its host through."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from openwop_airflow.hooks.openwop import OpenwopHook


class OpenwopHookMixin:
    """A cached :class:`OpenwopHook` for the task's ``openwop_conn_id`` (one sync client per task execution),
    with the task's ``http_retry`` policy when it has one (else the connection's)."""

    openwop_conn_id: str
    http_retry: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> OpenwopHook:
        """The hook for ``openwop_conn_id``."""
        return OpenwopHook(self.openwop_conn_id, retry=self.http_retry)
