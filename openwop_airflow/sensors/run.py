"""``OpenwopRunSensor``: wait for an OpenWOP run some other task (or system) started to complete."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowSensorTimeout, conf
from airflow.sdk import BaseSensorOperator, PokeReturnValue

from openwop_airflow.exceptions import OpenwopRunFailedException
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.links import RUN_URL_XCOM_KEY, OpenwopRunLink
from openwop_airflow.triggers.run import OpenwopRunTrigger
from openwop_airflow.utils.hook_mixin import OpenwopHookMixin
from openwop_airflow.utils.run_wait_event import RunWaitEvent
from openwop_core import OpenwopError, RunSnapshot, RunStatus


class OpenwopRunSensor(OpenwopHookMixin, BaseSensorOperator):
    """Succeed when the run completes (its outputs become the XCom return value); fail with the remote
    error when it fails or is cancelled. A run waiting on an interrupt keeps the sensor waiting.

    Pokes ``GET /v1/runs/{id}`` every ``poke_interval``; with ``deferrable=True`` it waits in the
    triggerer, following the run's event stream, until ``timeout``.

    :param run_id: The run to wait for (templated).
    :param openwop_conn_id: The Airflow connection of the host.
    :param deferrable: Wait in the triggerer. Defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("run_id", "openwop_conn_id")
    operator_extra_links = (OpenwopRunLink(),)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        run_id: str,
        openwop_conn_id: str = OpenwopHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id
        self.openwop_conn_id = openwop_conn_id
        self.deferrable = deferrable

    def _snapshot(self) -> RunSnapshot:
        try:
            return self.hook.get_conn().runs_get(self.run_id)
        except OpenwopError as exc:
            raise AirflowException(f"Could not read OpenWOP run {self.run_id}: {exc}") from exc

    def _done(self, snapshot: RunSnapshot, failed_node_id: str | None = None) -> bool:
        """True when the run completed; raises when it ended otherwise."""
        if RunStatus.is_success(snapshot.status):
            return True
        if snapshot.is_terminal:
            error = snapshot.error
            raise OpenwopRunFailedException(
                snapshot.run_id,
                snapshot.status,
                error.code if error else None,
                error.message if error else None,
                failed_node_id=failed_node_id,
            )
        return False

    def poke(self, context: Any) -> PokeReturnValue:
        """One look at the run."""
        snapshot = self._snapshot()
        if self._done(snapshot):
            return PokeReturnValue(is_done=True, xcom_value=snapshot.outputs)
        self.log.info("OpenWOP run %s is %s.", self.run_id, snapshot.status)
        return PokeReturnValue(is_done=False)

    def execute(self, context: Any) -> Any:
        """Poke (classic) or, when deferrable, check once and then wait in the triggerer."""
        context["ti"].xcom_push(key=RUN_URL_XCOM_KEY, value=self.hook.run_url(self.run_id))
        if not self.deferrable:
            return super().execute(context)
        snapshot = self._snapshot()
        if self._done(snapshot):
            return snapshot.outputs
        self.log.info("OpenWOP run %s is %s; deferring.", self.run_id, snapshot.status)
        self.defer(
            trigger=OpenwopRunTrigger(
                run_id=self.run_id,
                openwop_conn_id=self.openwop_conn_id,
                deadline=time.time() + float(self.timeout) if self.timeout else None,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        """Resume after the trigger fired: validate its event and re-read the run."""
        payload = RunWaitEvent.from_payload(event)
        if payload.status == "timeout":
            raise AirflowSensorTimeout(f"OpenWOP run {payload.run_id} did not complete within {self.timeout}s.")
        if payload.status == "error" and payload.run_status is None:
            raise AirflowException(f"Waiting for OpenWOP run {payload.run_id} failed: {payload.error_text()}")
        snapshot = self._snapshot()
        if not self._done(snapshot, (payload.error or {}).get("node_id")):
            raise AirflowException(
                f"OpenWOP trigger reported run {payload.run_id} as {payload.run_status}, but it is {snapshot.status}."
            )
        return snapshot.outputs
