"""``OpenwopCancelRunOperator``: cancel an OpenWOP run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException
from airflow.sdk import BaseOperator

from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.utils.hook_mixin import OpenwopHookMixin
from openwop_airflow.utils.idempotency import task_instance_key
from openwop_core import OpenwopError


class OpenwopCancelRunOperator(OpenwopHookMixin, BaseOperator):
    """Cancel a run. Cancelling a run that already finished succeeds and says so in the log.

    :param run_id: The run to cancel (templated).
    :param reason: Why, recorded by the host (templated).
    :param openwop_conn_id: The Airflow connection of the host.

    Returns the run's status after the request (``cancelling``/``cancelled``, or its terminal status).
    """

    template_fields: Sequence[str] = ("run_id", "reason", "openwop_conn_id")
    ui_color = "#fbe9e7"

    def __init__(
        self,
        *,
        run_id: str,
        reason: str | None = None,
        openwop_conn_id: str = OpenwopHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id
        self.reason = reason
        self.openwop_conn_id = openwop_conn_id

    def execute(self, context: Any) -> str:
        """Send the cancel request (idempotent across retries)."""
        key = task_instance_key(context, prefix="airflow-cancel")
        try:
            result = self.hook.get_conn().runs_cancel(self.run_id, reason=self.reason, idempotency_key=key)
        except OpenwopError as exc:
            raise AirflowException(f"Could not cancel OpenWOP run {self.run_id}: {exc}") from exc
        if result.already_terminal:
            self.log.info("OpenWOP run %s had already finished (%s); nothing to cancel.", self.run_id, result.status)
        else:
            self.log.info("Cancelled OpenWOP run %s: status %s.", self.run_id, result.status)
        return result.status
