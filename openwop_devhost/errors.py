"""The OpenWOP error envelope (``{error, message, details}``) and the exception that carries it.

Handlers raise :class:`ApiError`; the app turns it into a JSON response in exactly one place, so
every error the host sends has the spec's shape and a machine-readable code.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class ApiError(Exception):
    """An HTTP error answered with the OpenWOP error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The envelope as a JSON-ready dict."""
        return error_body(self.code, self.message, self.details)

    def response(self) -> Response:
        """The envelope as a Starlette response with this error's status and headers."""
        return json_response(self.body(), self.status, self.headers)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build ``{error, message, details?}``; ``details`` is omitted when empty."""
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    return body


def dumps(value: Any) -> str:
    """Compact JSON text, the one serialisation every response and SSE frame uses."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A ``application/json`` response with compact, UTF-8 encoded ``value``."""
    return Response(
        content=dumps(value).encode("utf-8"),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def validation_error(message: str, **details: Any) -> ApiError:
    """``400 validation_error`` with ``details`` naming what was wrong."""
    return ApiError(400, "validation_error", message, details or None)
