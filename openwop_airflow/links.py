"""``OpenwopRunLink``: the "OpenWOP run" button on a task, pointing at the run the task started or followed.

It reads the ``run_url`` XCom, which the operators push before they start waiting, so the link works
while the task waits and after it failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey
    from airflow.sdk import BaseOperator

#: The XCom key holding the run's URL (set by every OpenWOP operator that starts or follows a run).
RUN_URL_XCOM_KEY = "run_url"
#: The XCom key holding the run's id.
RUN_ID_XCOM_KEY = "run_id"


class OpenwopRunLink(BaseOperatorLink):
    """Link to the OpenWOP run of a task instance (the UI when the connection has ``ui_base_url``)."""

    name = "OpenWOP run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The ``run_url`` XCom of the task instance, or an empty string before the run exists."""
        if getattr(operator, "_run_id", "unknown") is None:
            return ""  # this try failed before starting a run: nothing to look up (and no "XCom not found" log)
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(ti_key=ti_key, key=RUN_URL_XCOM_KEY)
        return url if isinstance(url, str) else ""
