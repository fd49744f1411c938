"""Webhook signature verification: right signature passes; wrong, stale, replayed or unknown-algorithm fails."""

from __future__ import annotations

import pytest

from openwop_core import WebhookVerificationError, sign_webhook, verify_webhook_signature

SECRET = "whsec_test_secret"
BODY = b'{"runId":"r","event":{"type":"run.completed","sequence":3}}'
NOW = 1_800_000_000


def headers(ts: int = NOW, body: bytes = BODY, secret: str = SECRET, family: str = "X-openwop-", **extra: str):
    return {
        f"{family}Timestamp": str(ts),
        f"{family}Signature": sign_webhook(secret, ts, body),
        **{f"{family}{k}": v for k, v in extra.items()},
    }


def test_valid_signature_in_both_header_families() -> None:
    verify_webhook_signature(SECRET, BODY, headers(), now=NOW)
    verify_webhook_signature(SECRET, BODY, headers(family="OpenWOP-"), now=NOW + 299)


@pytest.mark.parametrize(
    ("hdrs", "body", "now", "message"),
    [
        (headers(secret="other"), BODY, NOW, "does not match"),
        (headers(), BODY + b" ", NOW, "does not match"),
        (headers(ts=NOW - 301), BODY, NOW, "stale or replayed"),
        (headers(ts=NOW + 301), BODY, NOW, "stale or replayed"),
        ({"X-openwop-Timestamp": str(NOW)}, BODY, NOW, "no signature"),
        (headers(**{"Signature-Algorithm": "v2"}), BODY, NOW, "Unknown webhook signature algorithm"),
        ({**headers(), "X-openwop-Timestamp": "yesterday"}, BODY, NOW, "not unix seconds"),
    ],
)
def test_rejections(hdrs: dict[str, str], body: bytes, now: int, message: str) -> None:
    with pytest.raises(WebhookVerificationError, match=message):
        verify_webhook_signature(SECRET, body, hdrs, now=now)


def test_parsed_json_instead_of_raw_bytes_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="raw request bytes"):
        verify_webhook_signature(SECRET, {"runId": "r"}, headers(), now=NOW)  # type: ignore[arg-type]
