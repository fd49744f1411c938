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
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from openwop_airflow.exceptions import OpenwopConnectionException
from openwop_airflow.get_provider_info import UI_BASE_URL
from openwop_core import ConfigurationError, RetryPolicy
from openwop_core._base import tls_verify
from openwop_core.settings import (
    CA_BUNDLE,
    HEADERS,
    TIMEOUTS,
    VERIFY,
    Setting,
    check_headers,
    normalise_base_url,
)

T = TypeVar("T")
C = TypeVar("C")

_RETRY_FIELDS = tuple(RetryPolicy.model_fields)
#: Extras read from the connection (each described once in ``openwop_core.settings``, the UI link in the
#: provider info); anything else is reported (typos otherwise pass silently).
KNOWN_EXTRAS = frozenset(
    {*(s.name for s in (*TIMEOUTS, VERIFY, CA_BUNDLE, HEADERS, UI_BASE_URL)), "retry", *_RETRY_FIELDS}
)
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
        for setting in TIMEOUTS:
            if getattr(self, setting.name) is not None:
                kwargs[setting.name] = getattr(self, setting.name)
        return kwargs

    def client(self, client_class: Callable[..., C], *, retry: RetryPolicy | None = None) -> C:
        """A client of ``client_class`` (``OpenwopClient`` or ``AsyncOpenwopClient``) for this connection; a
        setting the client refuses (URL, key format...) is reported naming the connection."""
        try:
            return client_class(self.base_url, **self.client_kwargs(retry=retry))
        except ConfigurationError as exc:
            raise describe_client_error(self.conn_id, exc) from None

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

    Raises :class:`OpenwopConnectionException` naming the connection id and the bad field.
    """
    reader = _ExtrasReader(str(getattr(conn, "conn_id", None) or "?"), extras)
    return OpenwopConnectionSettings(
        conn_id=reader.conn_id,
        base_url=_base_url(conn, reader.fail),
        api_key=conn.password or None,
        **{setting.name: reader.setting(setting) for setting in TIMEOUTS},
        verify=reader.verify(),
        retry=reader.retry(),
        headers=reader.headers(),
        ui_base_url=reader.ui_base_url(),
        unknown_extras=tuple(sorted(k for k in reader.extras if k not in KNOWN_EXTRAS)),
    )


def describe_client_error(conn_id: str, error: ConfigurationError) -> OpenwopConnectionException:
    """Re-raise a client setting error (bad URL, bad key format...) as a connection error naming the id."""
    return OpenwopConnectionException(f"OpenWOP connection {conn_id!r} is not usable: {error}")


def decode_extra(conn: Any) -> dict[str, Any]:
    """The connection's extras as a dict; a clear error (naming the connection) when it is not a JSON object."""
    return _ExtrasReader(str(conn.conn_id), {}).json_object(conn.extra or {}, "extra")


class _ExtrasReader:
    """Reads one connection's extras, each against its setting's description in ``openwop_core.settings``;
    every error names the connection and the extra."""

    def __init__(self, conn_id: str, extras: Mapping[str, Any]) -> None:
        self.conn_id = conn_id
        self.extras = _unprefixed(extras)

    def fail(self, what: str) -> OpenwopConnectionException:
        """The error for a bad field of this connection."""
        return OpenwopConnectionException(f"OpenWOP connection {self.conn_id!r}: {what}")

    def obey(self, rule: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Apply one of the core's setting rules; its complaint is reported naming this connection."""
        try:
            return rule(*args, **kwargs)
        except ConfigurationError as exc:
            raise self.fail(str(exc)) from None

    def setting(self, setting: Setting) -> Any:
        """The extra for ``setting``, checked against its description (text is read too), or None if unset."""
        value = self.extras.get(setting.name)
        if value is None:
            return None
        return self.obey(setting.check, value, shown=f'extra "{setting.name}"', text=True)

    def verify(self) -> bool | str:
        """The client's ``verify``: the switch, or the CA bundle (from "ca_bundle", or a path in "verify")."""
        ca_bundle, source = self.setting(CA_BUNDLE), CA_BUNDLE.name  # source: the extra the path came from
        raw = self.extras.get(VERIFY.name, VERIFY.default)
        try:
            verify = VERIFY.check(raw, shown='extra "verify"', text=True)
        except ConfigurationError as exc:
            if not isinstance(raw, str):
                raise self.fail(str(exc)) from None
            if not ca_bundle:  # a path given in "verify", as requests/httpx users often do
                ca_bundle, source = raw.strip(), VERIFY.name
            verify = True
        return self.obey(tls_verify, verify, ca_bundle, names=('extra "verify"', f'extra "{source}"'))

    def retry(self) -> RetryPolicy:
        """The retry policy: its fields at the top level, overridden by those of a nested "retry" object."""
        nested = self.json_object(
            self.extras.get("retry") or {}, 'extra "retry"', 'an object such as {"max_attempts": 5}'
        )
        merged = {**{k: self.extras[k] for k in _RETRY_FIELDS if k in self.extras}, **nested}
        try:
            return RetryPolicy.model_validate(merged)
        except ValueError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in getattr(exc, "errors", list)()[:3]
            )
            raise self.fail(f"retry settings are invalid ({problems or exc}).") from None

    def headers(self) -> dict[str, str]:
        """Extra request headers, by the core's header rules (the key belongs in the password field)."""
        headers = self.json_object(
            self.extras.get(HEADERS.name) or {}, 'extra "headers"', "an object of header name -> string value"
        )
        if any(str(name).lower() == "authorization" for name in headers):
            raise self.fail('extra "headers" must not set Authorization; put the API key in the password field.')
        return self.obey(check_headers, headers)

    def ui_base_url(self) -> str | None:
        """Where run links point (an http(s) URL; the provider's own setting), or None."""
        url = self.extras.get(UI_BASE_URL.name)
        if url is not None and (not isinstance(url, str) or "://" not in url):
            raise self.fail(
                f'extra "ui_base_url" must be an http(s) URL such as https://openwop.example.com/ui, got {url!r}.'
            )
        return url

    def json_object(self, value: Any, what: str, shape: str = "a JSON object") -> dict[str, Any]:
        """``value`` as a dict: a mapping as it is, or JSON text of an object (``what`` and ``shape`` name the
        field and what it should be in the errors; the value is never echoed: it may hold a header secret)."""
        if isinstance(value, Mapping):
            return dict(value)
        try:
            decoded = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            raise self.fail(f"{what} is not valid JSON.") from None
        if not isinstance(decoded, dict):
            raise self.fail(f"{what} must be {shape}, got a {type(decoded).__name__}.")
        return decoded


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


def _base_url(conn: Any, fail: Callable[[str], OpenwopConnectionException]) -> str:
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
