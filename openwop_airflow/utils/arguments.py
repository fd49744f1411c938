"""Checks of rendered operator arguments, so bad input fails the task with a message naming the argument."""

from __future__ import annotations

import json
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException


def json_object_argument(name: str, value: Any) -> dict[str, Any] | None:
    """``value`` as a JSON object: a dict (checked to be JSON-serialisable), or a JSON text (as rendered
    from a ``.json`` template file or passed by hand); None stays None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        if not text.strip():
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AirflowException(
                f"{name} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})."
            ) from None
    if not isinstance(value, dict):
        raise AirflowException(f"{name} must be a JSON object (a dict), got {type(value).__name__}.")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AirflowException(f"{name} is not JSON-serialisable: {exc}.") from None
    return value


def json_value_argument(name: str, value: Any) -> Any:
    """Any JSON value; a string is parsed as JSON when it looks like an object or array."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise AirflowException(
                f"{name} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})."
            ) from None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AirflowException(f"{name} is not JSON-serialisable: {exc}.") from None
    return value


def string_list_argument(name: str, value: Any) -> list[str] | None:
    """A list of strings (a JSON array text is accepted too); None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = json_value_argument(name, value) if value.strip().startswith("[") else [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise AirflowException(f"{name} must be a list of strings, got {value!r}.")
    return list(value)
