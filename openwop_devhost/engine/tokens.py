"""HMAC-signed interrupt tokens for the ``/v1/interrupts/{token}`` surface.

Format (OpenWOP v1): ``base64url(JSON payload) + "." + base64url(HMAC-SHA256(secret, payload-part))``
where the payload is ``{runId, nodeId, interruptId, expiresAt, intent: "resolve"}``. The token is
the credential for resolvers without an API key, so it is never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from .events import iso, parse_iso, utcnow


class TokenInvalid(Exception):
    """The token is malformed or its signature does not verify."""


class TokenExpired(Exception):
    """The token verified but its ``expiresAt`` has passed."""


@dataclass(frozen=True)
class TokenClaims:
    """The verified content of an interrupt token."""

    run_id: str
    node_id: str
    interrupt_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies interrupt tokens with one host-wide secret."""

    def __init__(self, secret: bytes | None = None, ttl_seconds: float = 1800.0) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"token_ttl_seconds must be > 0, got {ttl_seconds!r}")
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.ttl_seconds = float(ttl_seconds)

    def issue(self, run_id: str, node_id: str, interrupt_id: str) -> tuple[str, datetime]:
        """Return ``(token, expires_at)`` for one open interrupt."""
        expires_at = utcnow() + timedelta(seconds=self.ttl_seconds)
        payload = {
            "runId": run_id,
            "nodeId": node_id,
            "interruptId": interrupt_id,
            "expiresAt": iso(expires_at),
            "intent": "resolve",
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self._sign(body)}", expires_at

    def verify(self, token: str) -> TokenClaims:
        """Check signature, shape and expiry; raise :class:`TokenInvalid` or :class:`TokenExpired`."""
        body, dot, signature = token.rpartition(".")
        if not dot or not body or not signature:
            raise TokenInvalid("token is not of the form <payload>.<signature>")
        if not hmac.compare_digest(self._sign(body), signature):
            raise TokenInvalid("token signature does not verify")
        try:
            payload = json.loads(_unb64(body))
        except (binascii.Error, ValueError) as exc:
            raise TokenInvalid("token payload is not base64url-encoded JSON") from exc
        if not isinstance(payload, dict) or payload.get("intent") != "resolve":
            raise TokenInvalid("token payload has no resolve intent")
        try:
            claims = TokenClaims(
                run_id=str(payload["runId"]),
                node_id=str(payload["nodeId"]),
                interrupt_id=str(payload["interruptId"]),
                expires_at=parse_iso(str(payload["expiresAt"])),
            )
        except (KeyError, ValueError) as exc:
            raise TokenInvalid("token payload misses runId/nodeId/interruptId/expiresAt") from exc
        if utcnow() >= claims.expires_at:
            raise TokenExpired(iso(claims.expires_at))
        return claims

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode("utf-8"), hashlib.sha256).digest())
