"""Verify the signature of an OpenWOP webhook delivery (HMAC-SHA256 over ``"{timestamp}.{raw body}"``)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from .errors import OpenwopError

__all__ = ["WebhookVerificationError", "sign_webhook", "verify_webhook_signature"]

_HEADER_FAMILIES = (("x-openwop-", ""), ("openwop-", ""))


class WebhookVerificationError(OpenwopError):
    """A webhook delivery failed verification (bad or missing signature, stale timestamp, unknown algorithm)."""

    hint = "Reject the delivery; check the subscription's secret if every delivery fails."


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    for prefix, _ in _HEADER_FAMILIES:
        value = lowered.get(prefix + name)
        if value is not None:
            return value
    return None


def sign_webhook(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``sha256=<hex>`` signature a host sends for ``body`` at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_webhook_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookVerificationError` unless ``body`` carries a valid, fresh v1 signature.

    Uses the raw body bytes (never re-serialised JSON), rejects timestamps more than ``tolerance_seconds``
    away in either direction (replays), and compares in constant time. Accepts the ``X-openwop-*`` and
    ``OpenWOP-*`` header families."""
    if not isinstance(body, (bytes, bytearray)):
        raise WebhookVerificationError("body must be the raw request bytes, not parsed JSON.")
    algorithm = _header(headers, "signature-algorithm") or "v1"
    if algorithm != "v1":
        raise WebhookVerificationError(f"Unknown webhook signature algorithm {algorithm!r} (only v1 is known).")
    signature = _header(headers, "signature")
    timestamp = _header(headers, "timestamp")
    if not signature or not timestamp:
        raise WebhookVerificationError("The delivery has no signature or timestamp header.")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError(f"The timestamp header {timestamp!r} is not unix seconds.") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        raise WebhookVerificationError(
            f"The delivery's timestamp is {abs(current - sent_at):.0f}s away from now "
            f"(over {tolerance_seconds}s): stale or replayed."
        )
    expected = sign_webhook(secret, timestamp, bytes(body))
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookVerificationError("The webhook signature does not match the body.")
