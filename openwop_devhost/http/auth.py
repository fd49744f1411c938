"""Bearer API-key authentication and per-endpoint scopes.

The main key holds every scope. Extra keys (``api_keys={"key": ["runs:read"]}``) hold only the
listed scopes, so tests can exercise ``403 forbidden``. Keys are compared in constant time and
never echoed or logged; a principal is identified by a short fingerprint instead.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ..errors import ApiError

ALL_SCOPES = frozenset(
    {
        "manifest:read",
        "runs:create",
        "runs:read",
        "runs:cancel",
        "approvals:respond",
        "artifacts:read",
        "webhooks:manage",
        "devhost:admin",
    }
)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a non-secret id and its scopes."""

    id: str
    scopes: frozenset[str]


def key_fingerprint(key: str) -> str:
    """``apikey:<8 hex>``: stable, non-reversible id of a key for logs and ``decidedBy``."""
    return "apikey:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


class KeyRing:
    """The keys one host accepts."""

    def __init__(self, api_key: str, extra_keys: dict[str, list[str]] | None = None) -> None:
        if not api_key:
            raise ValueError("api_key must be a non-empty string")
        self._keys: list[tuple[bytes, Principal]] = [
            (api_key.encode("utf-8"), Principal(key_fingerprint(api_key), ALL_SCOPES))
        ]
        for key, scopes in (extra_keys or {}).items():
            unknown = sorted(set(scopes) - ALL_SCOPES)
            if unknown:
                raise ValueError(f"api_keys: unknown scope {unknown[0]!r}; valid scopes: {sorted(ALL_SCOPES)}")
            self._keys.append((key.encode("utf-8"), Principal(key_fingerprint(key), frozenset(scopes))))

    def authenticate(self, authorization: str | None) -> Principal:
        """Resolve the ``Authorization`` header to a principal or raise ``401 unauthenticated``."""
        challenge = {"WWW-Authenticate": 'Bearer realm="openwop"'}
        if not authorization:
            raise ApiError(
                401,
                "unauthenticated",
                "Missing credentials: send 'Authorization: Bearer <api key>'.",
                headers=challenge,
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthenticated",
                "Malformed Authorization header: expected 'Bearer <api key>'.",
                headers=challenge,
            )
        candidate = token.encode("utf-8")
        found: Principal | None = None
        for key, principal in self._keys:
            if hmac.compare_digest(key, candidate):
                found = principal
        if found is None:
            raise ApiError(
                401,
                "unauthenticated",
                "The API key was not accepted by this host (unknown, expired or revoked).",
                headers=challenge,
            )
        return found


def require(principal: Principal, *scopes: str) -> None:
    """Raise ``403 forbidden`` naming the first scope ``principal`` lacks."""
    for scope in scopes:
        if scope not in principal.scopes:
            raise ApiError(
                403,
                "forbidden",
                f"This API key lacks the scope {scope!r} required for this operation.",
                {"scopeRequired": scope},
            )
