"""``OpenwopResolveInterruptOperator``: answer an interrupt a run waits on (an approval, a clarification...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from airflow.sdk import BaseOperator

from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.utils.arguments import json_value_argument
from openwop_airflow.utils.hook_mixin import OpenwopHookMixin
from openwop_airflow.utils.idempotency import task_instance_key
from openwop_core import ConflictError, NotFoundError, OpenwopError


class OpenwopResolveInterruptOperator(OpenwopHookMixin, BaseOperator):
    """Resume a run waiting on an interrupt, by run and node (API key) or by the interrupt's signed token.

    The answer carries an idempotency key derived from the task instance, so a retry after a lost answer
    replays the first resolution. If the host no longer knows the interrupt on a retry (404/409), the task
    still succeeds when the run has left the waiting state, i.e. the earlier try's answer went through.

    :param resume_value: The answer: a dict, or JSON text (templated); e.g.
        ``openwop_core.resume.approval("accept")`` or ``{"action": "accept"}``.
    :param run_id: The waiting run (templated); needed unless ``token`` is given.
    :param node_id: The node that waits (templated, kept as ``interrupt_node_id``: Airflow reserves
        ``node_id``); needed unless ``token`` is given.
    :param token: The interrupt's signed token instead of run and node (templated; no API key is sent).
        Only external-event interrupts carry one, and only on hosts that issue tokens; an empty token, or
        one a template rendered as ``None``/``null``, fails the task before anything is sent.
    :param openwop_conn_id: The Airflow connection of the host.

    Returns the host's answer (``run_id``, ``node_id``, ``status`` after the resume).
    """

    template_fields: Sequence[str] = ("run_id", "interrupt_node_id", "token", "resume_value", "openwop_conn_id")
    template_fields_renderers = {"resume_value": "json"}
    ui_color = "#fdf6e3"

    def __init__(
        self,
        *,
        resume_value: Any,
        run_id: str | None = None,
        node_id: str | None = None,
        token: str | None = None,
        openwop_conn_id: str = OpenwopHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if token is None and (run_id is None or node_id is None):
            raise ValueError("Give either token=, or both run_id= and node_id=.")
        if isinstance(token, str) and _missing_token(token):
            raise ValueError(_no_token_message(token))
        self._token_given = token is not None
        self.resume_value = resume_value
        self.run_id = run_id
        self.interrupt_node_id = node_id
        self.token = token
        self.openwop_conn_id = openwop_conn_id

    def execute(self, context: Any) -> Any:
        """Send the answer; on a retry, accept "already answered" when the run has moved on."""
        if self._token_given and _missing_token(self.token):
            raise AirflowFailException(_no_token_message(self.token))
        value = json_value_argument("resume_value", self.resume_value)
        client = self.hook.get_conn()
        key = task_instance_key(context, prefix="airflow-resolve")
        target = (
            "the interrupt of the given token"  # the token is a credential: never logged, not even a prefix
            if self.token
            else f"node {self.interrupt_node_id} of run {self.run_id}"
        )
        try:
            if self.token:
                resolution = client.interrupts_resolve_by_token(self.token, value, idempotency_key=key)
            else:
                resolution = client.interrupts_resolve_by_run(
                    str(self.run_id), str(self.interrupt_node_id), value, idempotency_key=key
                )
        except (NotFoundError, ConflictError) as exc:
            if self._answered_before(context, client, exc):
                self.log.info("%s was already answered (%s): the run has moved on.", target.capitalize(), exc.code)
                return {
                    "run_id": self.run_id,
                    "node_id": self.interrupt_node_id,
                    "status": None,
                    "already_resolved": True,
                }
            raise AirflowException(f"Could not answer {target}: {exc}") from exc
        except OpenwopError as exc:
            raise AirflowException(f"Could not answer {target}: {exc}") from exc
        self.log.info("Answered %s; run status now %s.", target, resolution.status)
        return resolution.model_dump(mode="json", exclude_none=True)

    def _answered_before(self, context: Any, client: Any, error: Exception) -> bool:
        """True on a retry whose run is no longer waiting on this node (an earlier try's answer landed)."""
        if context["ti"].try_number <= 1 or not self.run_id:
            return False
        try:
            snapshot = client.runs_get(self.run_id)
        except OpenwopError:
            return False
        still_waiting = snapshot.is_waiting and snapshot.current_node_id in (None, self.interrupt_node_id)
        return not still_waiting


#: What a template renders for an interrupt without a token (``xcom_pull(...)['token']`` of None).
_NO_TOKEN_TEXTS = frozenset({"", "none", "null"})


def _missing_token(token: Any) -> bool:
    """True for a token that is no token: empty, or ``None``/``null`` as a template renders a missing one."""
    return token is None or (isinstance(token, str) and token.strip().lower() in _NO_TOKEN_TEXTS)


def _no_token_message(token: Any) -> str:
    """Why an empty token is refused and what to pass instead (the value is shown only when it is no token)."""
    return (
        f"token is empty (got {token!r}): the interrupt has no signed token. Only external-event interrupts "
        "carry one, and only on hosts that issue tokens; approvals and clarifications never do (their "
        "`interrupt` XCom has token None). Resolve by run and node instead: run_id=... and node_id=... (e.g. "
        "\"{{ ti.xcom_pull(task_ids='start', key='interrupt')['node_id'] }}\")."
    )
