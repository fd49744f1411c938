"""Layer-1 idempotency for mutations (``Idempotency-Key``), per OpenWOP v1 idempotency.md.

Records are keyed by ``(principal, METHOD path, key)``. A repeated key with a byte-identical body
replays the cached status and body with ``openwop-Idempotent-Replay: true``; a different body is
``409 idempotency_key_mismatch``; a repeat while the first request is still being processed is
``409 idempotency_in_flight``. Retryable outcomes (429, 5xx) and 400/401/403 are never cached.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.responses import Response

from ..errors import ApiError

REPLAY_HEADER = "openwop-Idempotent-Replay"
MAX_KEY_LENGTH = 255
_KEY_RE = re.compile(r"^[\x21-\x7e]+$")
_NEVER_CACHED = frozenset({400, 401, 403, 429})
_RETRY_AFTER_SECONDS = 1


@dataclass
class _Record:
    body_hash: str
    in_flight: bool = True
    status: int = 0
    body: bytes = b""
    media_type: str = "application/json"


def check_key(key: str) -> None:
    """Reject keys that are empty, too long or contain spaces/control characters."""
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY_RE.match(key):
        raise ApiError(
            400,
            "validation_error",
            f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} visible ASCII characters (a UUIDv4 is recommended)",
            {"header": "Idempotency-Key", "maxLength": MAX_KEY_LENGTH},
        )


def _cacheable(response: Response) -> bool:
    status = response.status_code
    if status >= 500 or status in _NEVER_CACHED:
        return False
    if status == 409:  # in-flight / dedup conflicts are retryable, never final
        return b'"run_already_active"' not in response.body and b'"idempotency_' not in response.body
    return True


class IdempotencyStore:
    """In-memory record store with LRU eviction beyond ``max_records``."""

    def __init__(self, max_records: int = 100_000) -> None:
        self._records: OrderedDict[tuple[str, str, str], _Record] = OrderedDict()
        self._max = max_records

    async def run(
        self,
        scope: tuple[str, str, str],
        body: bytes,
        handler: Callable[[], Awaitable[Response]],
    ) -> Response:
        """Serve one mutation under ``scope`` = ``(principal, "METHOD path", key)``."""
        body_hash = hashlib.sha256(body).hexdigest()
        record = self._records.get(scope)
        if record is not None:
            if record.body_hash != body_hash:
                raise ApiError(
                    409,
                    "idempotency_key_mismatch",
                    "This Idempotency-Key was already used with a different request body; "
                    "use a new key for a different request.",
                )
            if record.in_flight:
                raise ApiError(
                    409,
                    "idempotency_in_flight",
                    "A request with this Idempotency-Key is still being processed; retry shortly with the same key.",
                    {"retryAfter": _RETRY_AFTER_SECONDS},
                    {"Retry-After": str(_RETRY_AFTER_SECONDS)},
                )
            self._records.move_to_end(scope)
            return Response(
                content=record.body,
                status_code=record.status,
                media_type=record.media_type,
                headers={REPLAY_HEADER: "true"},
            )
        record = _Record(body_hash=body_hash)
        self._records[scope] = record
        try:
            response = await handler()
        except ApiError as exc:
            response = exc.response()
        except BaseException:
            self._records.pop(scope, None)
            raise
        if _cacheable(response):
            record.in_flight = False
            record.status = response.status_code
            record.body = bytes(response.body)
            record.media_type = response.media_type or "application/json"
            while len(self._records) > self._max:
                self._records.popitem(last=False)
        else:
            self._records.pop(scope, None)
        return response
