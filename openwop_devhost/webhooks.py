"""Webhook subscriptions (``POST/DELETE /v1/webhooks``) and signed, best-effort delivery.

Each delivery is ``POST {runId, workspaceId, event}`` with ``X-openwop-Signature: sha256=<hex>``
where the HMAC-SHA256 key is the subscription secret and the message is ``f"{timestamp}.{raw}"``.
Deliveries run on one ordered background queue per subscription, one attempt each, 5 s timeout,
so a slow receiver never slows a run down.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .engine.runs import Event, Run
from .errors import ApiError, dumps
from .outbound import OutboundError, post_bytes

logger = logging.getLogger("openwop_devhost")

USER_AGENT = "openwop-webhook-dispatcher/devhost"
#: The fields of a registration body (``POST /v1/webhooks``); any other is refused with ``400``.
REGISTRATION_FIELDS = frozenset({"url", "events", "eventTypes", "secret", "tags", "tenantId"})
_QUEUE_LIMIT = 10_000


def sign(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The ``X-openwop-Signature`` value for ``raw_body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + raw_body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def fingerprint(secret: str) -> str:
    """First 8 hex digits of ``sha256(secret)``: identifies a secret without revealing it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


@dataclass
class Subscription:
    """One registered webhook."""

    webhook_id: str
    url: str
    events: frozenset[str]
    secret: str
    tags: frozenset[str]
    tenant_id: str
    queue: asyncio.Queue[tuple[Run, Event]] = field(default_factory=lambda: asyncio.Queue(_QUEUE_LIMIT))
    worker: asyncio.Task[None] | None = None

    def wants(self, run: Run, event: Event) -> bool:
        """Whether this subscription receives ``event`` of ``run`` (same workspace, type, all tags)."""
        if run.tenant_id != self.tenant_id:
            return False
        if "*" not in self.events and event.type not in self.events:
            return False
        return self.tags <= set(run.options.tags)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_private(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local or address.is_reserved


class WebhookRegistry:
    """All subscriptions of one host plus a bounded log of delivery attempts."""

    def __init__(self, allow_insecure: bool = False) -> None:
        self.allow_insecure = allow_insecure
        self.subscriptions: dict[str, Subscription] = {}
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=10_000)

    def register(self, body: dict[str, Any], tenant_id: str) -> dict[str, Any]:
        """Validate a registration body (its keys already limited to :data:`REGISTRATION_FIELDS`) and add the
        subscription; return the 201 body."""
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise ApiError(400, "validation_error", "Webhook 'url' is required (an https:// URL).", {"key": "url"})
        self._check_url(url)
        events = body.get("events", body.get("eventTypes"))
        if not isinstance(events, list) or not events or not all(isinstance(e, str) and e for e in events):
            raise ApiError(
                400,
                "validation_error",
                "Webhook 'events' must be a non-empty array of event types such as ['run.completed'].",
                {"key": "events"},
            )
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ApiError(400, "validation_error", "Webhook 'tags' must be an array of strings.", {"key": "tags"})
        secret = body.get("secret")
        if secret is None:
            secret = "whsec_" + secrets.token_urlsafe(32)
        elif not isinstance(secret, str) or len(secret) < 16:
            raise ApiError(
                400,
                "validation_error",
                "Webhook 'secret' must be a string of at least 16 characters.",
                {"key": "secret"},
            )
        tenant = body.get("tenantId", tenant_id)
        subscription = Subscription(
            webhook_id=f"wh_{uuid.uuid4().hex[:20]}",
            url=url,
            events=frozenset(events),
            secret=secret,
            tags=frozenset(tags),
            tenant_id=str(tenant),
        )
        self.subscriptions[subscription.webhook_id] = subscription
        return {"webhookId": subscription.webhook_id, "secret": secret, "secretFingerprint": fingerprint(secret)}

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise ApiError(400, "webhook_url_rejected", "Webhook url must be an absolute https:// URL.", {"url": url})
        if self.allow_insecure:
            if parts.scheme == "http" and not is_loopback(host):
                raise ApiError(
                    400,
                    "webhook_url_rejected",
                    "Plain http:// webhooks are only allowed to loopback addresses (127.0.0.1, ::1, localhost).",
                    {"url": url},
                )
            return
        if parts.scheme != "https":
            raise ApiError(
                400,
                "webhook_url_rejected",
                "Webhook url must use https:// (start the host with allow_insecure_webhooks for local http receivers).",
                {"url": url},
            )
        if _is_private(host):
            raise ApiError(
                400,
                "webhook_url_rejected",
                "Webhook url points to a private, loopback or link-local address, which is refused (SSRF guard).",
                {"url": url},
            )

    def unregister(self, webhook_id: str) -> None:
        """Remove a subscription; ``404 subscription_not_found`` when unknown."""
        subscription = self.subscriptions.pop(webhook_id, None)
        if subscription is None:
            raise ApiError(
                404, "subscription_not_found", f"No webhook subscription {webhook_id!r}.", {"webhookId": webhook_id}
            )
        if subscription.worker is not None:
            subscription.worker.cancel()

    def on_event(self, run: Run, event: Event) -> None:
        """Engine listener: queue ``event`` for every interested subscription."""
        if not self.subscriptions:
            return
        for subscription in self.subscriptions.values():
            if not subscription.wants(run, event):
                continue
            if subscription.worker is None or subscription.worker.done():
                subscription.worker = asyncio.get_running_loop().create_task(self._deliver_loop(subscription))
            try:
                subscription.queue.put_nowait((run, event))
            except asyncio.QueueFull:
                self._record(subscription, run, event, None, "dropped: delivery queue full")

    async def _deliver_loop(self, subscription: Subscription) -> None:
        while True:
            run, event = await subscription.queue.get()
            await self._deliver(subscription, run, event)

    async def _deliver(self, subscription: Subscription, run: Run, event: Event) -> None:
        raw = dumps({"runId": run.run_id, "workspaceId": run.tenant_id, "event": event.doc}).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-openwop-Webhook-Id": subscription.webhook_id,
            "X-openwop-Event-Type": event.type,
            "X-openwop-Timestamp": timestamp,
            "X-openwop-Signature": sign(subscription.secret, timestamp, raw),
            "X-openwop-Signature-Algorithm": "v1",
        }
        try:
            status = await post_bytes(subscription.url, raw, headers, timeout=5.0)
        except OutboundError as exc:
            self._record(subscription, run, event, None, str(exc))
            logger.info("webhook %s delivery failed: %s", subscription.webhook_id, exc)
            return
        self._record(subscription, run, event, status, None)

    def _record(
        self, subscription: Subscription, run: Run, event: Event, status: int | None, error: str | None
    ) -> None:
        self.deliveries.append(
            {
                "webhookId": subscription.webhook_id,
                "runId": run.run_id,
                "sequence": event.sequence,
                "eventType": event.type,
                "status": status,
                "error": error,
            }
        )

    def close(self) -> None:
        """Stop all delivery workers."""
        for subscription in self.subscriptions.values():
            if subscription.worker is not None:
                subscription.worker.cancel()
