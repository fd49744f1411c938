"""Turn an Airflow ``openwop`` connection into validated ``openwop_core`` client settings (pure: no I/O).

The sync hook, the async hook path used by the trigger and ``test_connection`` all read a connection
through :func:`settings_from_connection`, so a field means the same thing everywhere and every bad value
fails with a message naming the connection id and the field. The API key is kept in
:class:`OpenwopConnectionSettings` but never shown by its ``repr`` or any message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from openwop_airflow.exceptions import OpenwopConnectionError
from openwop_core import ConfigurationError, RetryPolicy
from openwop_core._base import normalise_base_url

#: Extras read from the connection; anything else is reported (typos otherwise pass silently).
_NUMBER_EXTRAS = ("timeout", "connect_timeout", "stream_idle_timeout")
_RETRY_FIELDS = tuple(RetryPolicy.model_fields)
KNOWN_EXTRAS = frozenset({*_NUMBER_EXTRAS, "verify", "ca_bundle", "ui_base_url", "retry", "headers", *_RETRY_FIELDS})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
#: A per-process salt, so the client-cache fingerprint of a key cannot be brute-forced from memory dumps.
_FINGERPRINT_SALT = secrets.token_bytes(16)


@dataclass(frozen=True)
class OpenwopConnectionSettings:
    """What an ``openwop`` connection says: where the host is, how to authenticate and how to talk to it."""

    conn_id: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float | None = None
    connect_timeout: float | None = None
    stream_idle_timeout: float | None = None
    verify: bool | str = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    headers: dict[str, str] = field(default_factory=dict)
    ui_base_url: str | None = None
    unknown_extras: tuple[str, ...] = ()

    def client_kwargs(self, *, retry: RetryPolicy | None = None) -> dict[str, Any]:
        """Keyword arguments for ``OpenwopClient`` / ``AsyncOpenwopClient`` (``retry`` overrides the
        connection's policy, e.g. the one a trigger carried across the process boundary)."""
        kwargs: dict[str, Any] = {
            "api_key": self.api_key,
            "verify": self.verify,
            "retry": retry or self.retry,
            "headers": self.headers or None,
        }
        for name in _NUMBER_EXTRAS:
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        return kwargs

    def fingerprint(self, retry: RetryPolicy | None = None) -> str:
        """A salted digest of everything that shapes a client (key included, never stored in clear), used
        to share one HTTP client per connection in a triggerer and to notice a rotated key."""
        material = json.dumps(
            {
                "base_url": self.base_url,
                "api_key": self.api_key,
                "options": {k: v for k, v in self.client_kwargs(retry=retry).items() if k not in ("api_key", "retry")},
                "retry": (retry or self.retry).model_dump(mode="json"),
            },
            sort_keys=True,
            default=str,
        )
        return hmac.new(_FINGERPRINT_SALT, material.encode(), hashlib.sha256).hexdigest()

    def run_url(self, run_id: str) -> str:
        """Where a person can look at the run: the UI when ``ui_base_url`` is set (``{run_id}`` is replaced,
        otherwise ``/runs/<id>`` is appended), else the API's run document, under the base URL as the client
        uses it (a trailing ``/v1`` dropped, no user-info)."""
        safe_id = quote(run_id, safe="")
        if self.ui_base_url:
            if "{run_id}" in self.ui_base_url:
                return self.ui_base_url.replace("{run_id}", safe_id)
            return f"{self.ui_base_url.rstrip('/')}/runs/{safe_id}"
        try:
            api = normalise_base_url(self.base_url)  # refuses user:password@ itself
        except ConfigurationError as exc:
            raise describe_client_error(self.conn_id, exc) from None
        return f"{api}/v1/runs/{safe_id}"


def settings_from_connection(conn: Any, extras: Mapping[str, Any]) -> OpenwopConnectionSettings:
    """Read a connection (an ``airflow.sdk.Connection``) and its already-decoded ``extras``.

    Raises :class:`OpenwopConnectionError` naming the connection id and the bad field.
    """
    conn_id = str(getattr(conn, "conn_id", None) or "?")

    def fail(what: str) -> OpenwopConnectionError:
        return OpenwopConnectionError(f"OpenWOP connection {conn_id!r}: {what}")

    extras = _unprefixed(extras)
    base_url = _base_url(conn, fail)
    api_key = conn.password or None
    numbers: dict[str, float | None] = {}
    for name in _NUMBER_EXTRAS:
        numbers[name] = _positive_number(extras.get(name), name, fail)
    verify = _verify(extras, fail)
    retry = _retry(extras, fail)
    headers = extras.get("headers") or {}
    if isinstance(headers, str):
        headers = _json_object(headers, "headers", fail)
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise fail('extra "headers" must be an object of header name -> string value.')
    if any(str(name).lower() == "authorization" for name in headers):
        raise fail('extra "headers" must not set Authorization; put the API key in the password field.')
    ui_base_url = extras.get("ui_base_url") or None
    if ui_base_url is not None and (not isinstance(ui_base_url, str) or "://" not in ui_base_url):
        raise fail(
            f'extra "ui_base_url" must be an http(s) URL such as https://openwop.example.com/ui, got {ui_base_url!r}.'
        )
    return OpenwopConnectionSettings(
        conn_id=conn_id,
        base_url=base_url,
        api_key=api_key,
        verify=verify,
        retry=retry,
        headers={str(k): v for k, v in headers.items()},
        ui_base_url=ui_base_url,
        unknown_extras=tuple(sorted(k for k in extras if k not in KNOWN_EXTRAS)),
        **numbers,
    )


def describe_client_error(conn_id: str, error: ConfigurationError) -> OpenwopConnectionError:
    """Re-raise a client setting error (bad URL, bad key format...) as a connection error naming the id."""
    return OpenwopConnectionError(f"OpenWOP connection {conn_id!r} is not usable: {error}")


def _unprefixed(extras: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``extra__openwop__timeout`` (older forms) as well as ``timeout``; the plain name wins."""
    result: dict[str, Any] = {}
    for key, value in extras.items():
        if key.startswith("extra__openwop__"):
            result.setdefault(key[len("extra__openwop__") :], value)
    for key, value in extras.items():
        if not key.startswith("extra__openwop__"):
            result[key] = value
    return {k: v for k, v in result.items() if v is not None and v != ""}


def _base_url(conn: Any, fail: Any) -> str:
    host = (conn.host or "").strip()
    if not host:
        raise fail("has no host; set host to the OpenWOP base URL, such as https://openwop.example.com.")
    schema = (conn.schema or "").strip().lower()
    if "://" in host:
        url = host
        if schema and schema != host.split("://", 1)[0].lower():
            raise fail(
                f"schema {conn.schema!r} contradicts the scheme written in the host; clear the schema. (In a "
                "connection URI the path is the schema: give a base URL with a path prefix as JSON instead.)"
            )
    else:
        scheme = schema or "https"
        if scheme not in ("http", "https"):
            raise fail(f"schema {scheme!r} is not a URL scheme; leave it empty (https) or set http or https.")
        url = f"{scheme}://{host}"
    parts = urlsplit(url)
    if conn.port:
        try:
            url_port = parts.port
        except ValueError:
            raise fail(f"host {host!r} has an invalid port.") from None
        if url_port is None and parts.hostname:
            netloc = f"{parts.netloc}:{int(conn.port)}"
            url = parts._replace(netloc=netloc).geturl()
        elif url_port is not None and url_port != int(conn.port):
            raise fail(f"the host's URL says port {url_port} but the port field says {conn.port}; keep one.")
    return url


def _positive_number(value: Any, name: str, fail: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number > 0:
        raise fail(f'extra "{name}" must be a positive number of seconds, got {value!r}.')
    return number


def _verify(extras: Mapping[str, Any], fail: Any) -> bool | str:
    ca_bundle = extras.get("ca_bundle")
    source = "ca_bundle"  # the extra the bundle path came from, for messages
    verify = extras.get("verify", True)
    if isinstance(verify, str):
        text = verify.strip().lower()
        if text in _TRUE:
            verify = True
        elif text in _FALSE:
            verify = False
        else:  # a path given in "verify", as requests/httpx users often do
            if not ca_bundle:
                ca_bundle, source = verify.strip(), "verify"
            verify = True
    if not isinstance(verify, bool):
        raise fail(f'extra "verify" must be true or false, got {verify!r}.')
    if ca_bundle:
        if not isinstance(ca_bundle, str) or not os.path.exists(ca_bundle):
            raise fail(f'extra "{source}": no CA bundle at {ca_bundle!r} on this machine.')
        if not verify:
            raise fail('extras "verify": false and "ca_bundle" contradict each other; keep one.')
        return ca_bundle
    return verify


def _retry(extras: Mapping[str, Any], fail: Any) -> RetryPolicy:
    retry = extras.get("retry") or {}
    if isinstance(retry, str):
        retry = _json_object(retry, "retry", fail)
    if not isinstance(retry, dict):
        raise fail(f'extra "retry" must be an object such as {{"max_attempts": 5}}, got {retry!r}.')
    merged = {**{k: extras[k] for k in _RETRY_FIELDS if k in extras}, **retry}
    try:
        return RetryPolicy.model_validate(merged)
    except ValueError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in getattr(exc, "errors", list)()[:3]
        )
        raise fail(f"retry settings are invalid ({problems or exc}).") from None


def _json_object(text: str, name: str, fail: Any) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise fail(f'extra "{name}" is not valid JSON.') from None
    if not isinstance(value, dict):
        raise fail(f'extra "{name}" must be a JSON object.')
    return value
