"""Exceptions the OpenWOP provider raises to fail a task, each saying what went wrong remotely and what to do.

They subclass ``AirflowException`` so Airflow treats them as ordinary task failures (retried per the
task's ``retries``). None of them ever carries the API key: they are built from ids, codes and the
host's own messages only.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from openwop_core import RunFailedError


class OpenwopConnectionException(AirflowException):
    """The Airflow connection is missing or malformed; the message names the connection id and the field."""


class OpenwopRunFailedException(RunFailedError, AirflowException):
    """A remote run ended ``failed``, ``cancelled`` or in an unknown terminal status; carries the remote
    error code and message (``openwop_core.RunFailedError``) so the task log says why without opening the host."""


class OpenwopRunInterruptedException(AirflowException):
    """The run stopped on an interrupt and the task was told to fail in that case (``on_interrupt="fail"``)."""


class OpenwopWaitTimeoutException(AirflowException):
    """The task's ``timeout`` or ``execution_timeout`` passed before the run finished."""


class OpenwopTriggerEventException(AirflowException):
    """The trigger handed back an event this provider cannot read (malformed, unknown status)."""


class OpenwopHumanInputException(AirflowException):
    """An interrupt could not be put to a person in Airflow, or the answers given there were refused too
    often (``on_interrupt="ask_in_airflow"``); the message says why and what to do."""


class OpenwopHumanInputNotShownException(AirflowFailException):
    """A run asks a question that reads differently from the one the task instance already asked in Airflow,
    which keeps one request per task instance and never changes its text; not retried (a retry keeps the
    request too)."""


class OpenwopHumanInputTimeoutException(AirflowException):
    """Nobody answered the human-in-the-loop request in Airflow within ``response_timeout``."""


class OpenwopHumanInputUnavailableException(AirflowFailException):
    """This Airflow has no human-in-the-loop support (it needs Airflow 3.1 or newer); raised before any run
    is started, and not retried (a retry cannot fix it)."""
