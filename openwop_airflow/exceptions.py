"""Exceptions the OpenWOP provider raises to fail a task, each saying what went wrong remotely and what to do.

They subclass ``AirflowException`` so Airflow treats them as ordinary task failures (retried per the
task's ``retries``). None of them ever carries the API key: they are built from ids, codes and the
host's own messages only.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class OpenwopConnectionError(AirflowException):
    """The Airflow connection is missing or malformed; the message names the connection id and the field."""


class OpenwopRunFailedException(AirflowException):
    """A remote run ended ``failed``, ``cancelled`` or in an unknown terminal status; carries the remote
    error code and message so the task log says why without opening the host."""

    def __init__(
        self,
        run_id: str,
        status: str,
        error_code: str | None = None,
        error_message: str | None = None,
        *,
        failed_node_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.failed_node_id = failed_node_id
        text = f"OpenWOP run {run_id} ended {status}"
        if error_code or error_message:
            text += f": {error_code or 'error'}: {error_message or 'no message'}"
        if failed_node_id:
            text += f" (failed node: {failed_node_id})"
        super().__init__(text)


class OpenwopRunInterruptedException(AirflowException):
    """The run stopped on an interrupt and the task was told to fail in that case (``on_interrupt="fail"``)."""


class OpenwopWaitTimeoutException(AirflowException):
    """The task's ``timeout`` or ``execution_timeout`` passed before the run finished."""


class OpenwopTriggerEventError(AirflowException):
    """The trigger handed back an event this provider cannot read (malformed, unknown status)."""


class OpenwopHumanInputError(AirflowException):
    """An interrupt could not be put to a person in Airflow, or the answers given there were refused too
    often (``on_interrupt="ask_in_airflow"``); the message says why and what to do."""


class OpenwopHumanInputNotShown(AirflowFailException):
    """A run asks a question that reads differently from the one the task instance already asked in Airflow,
    which keeps one request per task instance and never changes its text; not retried (a retry keeps the
    request too)."""


class OpenwopHumanInputTimeout(AirflowException):
    """Nobody answered the human-in-the-loop request in Airflow within ``response_timeout``."""


class OpenwopHumanInputUnavailable(AirflowFailException):
    """This Airflow has no human-in-the-loop support (it needs Airflow 3.1 or newer); raised before any run
    is started, and not retried (a retry cannot fix it)."""
