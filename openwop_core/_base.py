"""What the sync and async clients share: settings validation, headers, auth, trace context, and turning
an HTTP answer (or an httpx failure) into a result or a typed error. No I/O happens here."""

from __future__ import annotations

import ipaddress
import logging
import os
import platform
import re
import secrets
import ssl
import warnings
from collections.abc import Generator, Mapping
from typing import Any, TypedDict, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from httpx_sse import SSEError

from ._version import __version__
from .endpoints import REDACTED, Call
from .errors import (
    ConfigurationError,
    ResponseFormatError,
    TransportError,
    UnsupportedFeatureError,
    error_from_response,
)
from .models import Discovery
from .retry import RetryPolicy
from .streaming import StreamIdleError

T = TypeVar("T")

log = logging.getLogger("openwop_core.client")

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Real hosts send no keepalives; a read silent this long means "reconnect", never "failed".
DEFAULT_STREAM_IDLE_TIMEOUT = 90.0
#: What OpenSSL reports when the server answers a TLS ClientHello with plain HTTP.
_PLAIN_HTTP_ANSWERS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE")
USER_AGENT = f"openwop-integrations/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"


class _RedactTokenPaths(logging.Filter):
    """httpx logs every request's URL at INFO ("HTTP Request: POST https://host/v1/interrupts/<token>"), and a
    signed interrupt token is a credential carried in the path: this filter redacts it from those records."""

    _pattern = re.compile(r"(/v1/interrupts/)[^/?#\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("/v1/interrupts/" in str(arg) for arg in record.args):
            record.args = tuple(
                self._pattern.sub(r"\1" + REDACTED, str(arg)) if "/v1/interrupts/" in str(arg) else arg
                for arg in record.args
            )
        return True


if not any(isinstance(f, _RedactTokenPaths) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactTokenPaths())


class InsecureTransportWarning(UserWarning):
    """An API key is about to be sent in clear text to a host that is not on this machine."""


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <key>``; its repr never shows the key."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the header to every request that uses this auth."""
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(api_key=***)"


class ClientSettings:
    """Validated client settings; every bad value raises :class:`ConfigurationError` naming the value
    and what to pass instead."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT,
        verify: bool | str | ssl.SSLContext = True,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        user_agent: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self._api_key = _check_api_key(api_key)
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("stream_idle_timeout", stream_idle_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}.")
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.stream_idle_timeout = float(stream_idle_timeout)
        self.verify = _check_verify(verify)
        try:
            self.retry = retry if isinstance(retry, RetryPolicy) else RetryPolicy.model_validate(retry or {})
        except ValueError as exc:
            raise ConfigurationError(f"retry is not a valid retry policy: {exc}") from None
        self.headers = _check_headers(headers)
        self.user_agent = user_agent or USER_AGENT
        if self.user_agent.lower().startswith("openwop-sdk/"):
            raise ConfigurationError("user_agent must not impersonate 'openwop-sdk/' (hosts may answer 426).")
        self.traceparent = traceparent
        if self._api_key and self._plain_http_to_remote():
            message = (
                f"The API key will be sent unencrypted to {self.display_url} (plain http to a host that is not "
                "loopback); use https:// for anything but a local test host."
            )
            warnings.warn(message, InsecureTransportWarning, stacklevel=5)
            log.warning(message)

    @property
    def has_api_key(self) -> bool:
        """True when a key is configured (the key itself is never exposed)."""
        return self._api_key is not None

    @property
    def display_url(self) -> str:
        """The base URL without any user-info, for messages and reprs."""
        return _without_userinfo(self.base_url)

    def auth(self) -> BearerAuth | None:
        """The httpx auth for authenticated calls (None when no key is set)."""
        return BearerAuth(self._api_key) if self._api_key else None

    def default_headers(self) -> dict[str, str]:
        """Headers on every request (the key is added by :class:`BearerAuth`, never here)."""
        return {"User-Agent": self.user_agent, "Accept": "application/json", **self.headers}

    def httpx_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``: one pool per client.

        The pool has no cap on open connections: every followed event stream holds one connection for the
        whole wait, and one client is shared by all the waits of a process (an Airflow triggerer may hold
        thousands), so a cap would stall every wait past it in the pool (``PoolTimeout``, then retries)."""
        return {
            "base_url": self.base_url,
            "headers": self.default_headers(),
            "timeout": httpx.Timeout(self.timeout, connect=self.connect_timeout),
            "verify": self.verify,
            "auth": self.auth(),
            "follow_redirects": False,
            "limits": httpx.Limits(max_connections=None, max_keepalive_connections=20, keepalive_expiry=30.0),
            "trust_env": True,
        }

    def request_options(self, call: Call[Any], *, stream_read_timeout: float | None = None) -> dict[str, Any]:
        """Per-request arguments for httpx: method, path, query, headers, body, timeout, auth."""
        headers = dict(call.headers)
        headers.setdefault("traceparent", self.traceparent or new_traceparent())
        options: dict[str, Any] = {
            "method": call.endpoint.method,
            "url": call.path,
            "params": call.query or None,
            "headers": headers,
            "content": call.body,
        }
        if stream_read_timeout is not None:
            options["timeout"] = httpx.Timeout(self.timeout, read=stream_read_timeout, connect=self.connect_timeout)
        elif call.timeout is not None:  # a long-poll: the read must outlast the server's wait
            read = max(call.timeout, self.timeout)
            options["timeout"] = httpx.Timeout(self.timeout, read=read, connect=self.connect_timeout)
        if not call.endpoint.auth:
            options["auth"] = None  # token routes: the token is the credential, never send the key
        return options

    def finish(self, call: Call[T], response: httpx.Response) -> T:
        """Turn a complete answer into the call's result, or raise the matching :class:`ApiError`."""
        if not 200 <= response.status_code < 300:
            raise self.http_error(call, response)
        return call.parse(response.status_code, response.content, response.headers)

    def http_error(self, call: Call[Any], response: httpx.Response) -> Exception:
        """The typed error for a non-2xx answer (body read already)."""
        return error_from_response(
            status_code=response.status_code,
            body=response.content,
            headers=response.headers,
            method=call.endpoint.method,
            path=self.shown_path(call),
            trace_id=trace_id_of(response),
        )

    def shown_path(self, call: Call[Any]) -> str:
        """The call's path as requested, with the base URL's path prefix (``/openwop/v1/runs``), for errors."""
        return urlsplit(self.base_url).path.rstrip("/") + call.safe_path

    def transport_error(self, call: Call[Any], exc: Exception, *, streaming: bool = False) -> Exception:
        """Map an httpx (or httpx-sse) failure to this library's errors, naming the call and the host."""
        method, path = call.endpoint.method, self.shown_path(call)
        if isinstance(exc, SSEError):
            return ResponseFormatError(
                f"{method} {path} did not answer with an event stream ({exc}).", method=method, path=path
            )
        if streaming and isinstance(exc, httpx.ReadTimeout):
            return StreamIdleError(f"{method} {path}: no data for a while", method=method, path=path)
        text = str(exc) or type(exc).__name__
        if self.base_url.startswith("https:") and any(m in text for m in _PLAIN_HTTP_ANSWERS):
            plain = "http:" + self.display_url[len("https:") :]
            return TransportError(
                f"{self.display_url} answered the TLS handshake in plain HTTP ({method} {path}): the host serves "
                f"http, not https ({text}).",
                method=method,
                path=path,
                hint=f"Use {plain} as the base URL, or serve the host over TLS; retrying will not help.",
                retryable=False,
            )
        if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLError):
            return TransportError(
                f"TLS certificate of {self.display_url} was not trusted ({method} {path}): {text}",
                method=method,
                path=path,
                hint="Pass verify='/path/to/ca-bundle.pem' (the CA that signed the host's certificate); "
                "disable verification only for a throwaway test host.",
            )
        if isinstance(exc, httpx.TimeoutException):
            return TransportError(
                f"{method} {path} timed out ({type(exc).__name__}) talking to {self.display_url}.",
                method=method,
                path=path,
                hint="The host is slow or unreachable; raise the client's timeout if it is just slow.",
            )
        if isinstance(exc, httpx.ConnectError):
            return TransportError(
                f"Could not connect to {self.display_url} ({method} {path}): {text}", method=method, path=path
            )
        return TransportError(
            f"{method} {path} to {self.display_url} failed: {type(exc).__name__}: {text}",
            method=method,
            path=path,
        )

    def _plain_http_to_remote(self) -> bool:
        parts = urlsplit(self.base_url)
        if parts.scheme != "http":
            return False
        host = parts.hostname or ""
        if host in ("localhost",) or host.endswith(".localhost"):
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"ClientSettings(base_url={self.display_url!r}, api_key={key})"


def normalise_base_url(base_url: Any) -> str:
    """Check and normalise the base URL: an http(s) origin, optionally with a path prefix, never ``/v1``."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigurationError(
            f"base_url must be the host's URL, such as 'https://openwop.example.com', got {base_url!r}."
        )
    text = base_url.strip()
    if "@" in urlsplit(text if "://" in text else f"//{text}").netloc:
        # Never echo the URL here: the part before '@' is a password.
        raise ConfigurationError(
            "base_url must not contain a user name or password (the 'user:password@' part); remove it and set the "
            "key with api_key (sent as 'Authorization: Bearer <key>')."
        )
    if "://" not in text:
        raise ConfigurationError(
            f"base_url {text!r} has no scheme; write it as 'https://{text}' (or 'http://' for a local host)."
        )
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(f"base_url {text!r} uses {parts.scheme!r}; OpenWOP hosts speak http or https.")
    if not parts.hostname:
        raise ConfigurationError(f"base_url {text!r} has no host name; write it as 'https://openwop.example.com'.")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigurationError(
            f"base_url {text!r} has an invalid port; use a number from 1 to 65535, as in 'https://host:8443'."
        ) from None
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"base_url {text!r} must not carry a query or fragment; pass only the origin and any path prefix."
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        # Paths already start with /v1; a base ending in /v1 would request /v1/v1/...
        log.info("base_url ends with /v1; using %s (the client adds /v1 itself)", path[:-3] or "/")
        path = path[:-3]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[1], parts.path, "", ""))


def _check_api_key(api_key: Any) -> str | None:
    if api_key is None:
        return None
    if hasattr(api_key, "get_secret_value"):
        api_key = api_key.get_secret_value()
    if not isinstance(api_key, str):
        raise ConfigurationError(f"api_key must be a string, got a {type(api_key).__name__}.")
    key = api_key.strip()
    if not key:
        raise ConfigurationError("api_key is empty; set the host's API key, or pass None for a host without auth.")
    if key.lower().startswith("bearer "):
        raise ConfigurationError("api_key starts with 'Bearer '; pass the key alone, the client adds the scheme.")
    if any(c.isspace() or ord(c) < 32 for c in key):
        raise ConfigurationError("api_key contains whitespace or control characters; paste the key alone.")
    return key


def _check_verify(verify: Any) -> bool | ssl.SSLContext:
    if isinstance(verify, (bool, ssl.SSLContext)):
        return verify
    if isinstance(verify, str):
        if not os.path.exists(verify):
            raise ConfigurationError(f"verify={verify!r}: no CA bundle at that path; pass an existing PEM file.")
        try:
            if os.path.isdir(verify):
                return ssl.create_default_context(capath=verify)
            return ssl.create_default_context(cafile=verify)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(f"verify={verify!r} is not a readable CA bundle: {exc}") from None
    raise ConfigurationError(f"verify must be True, False, a CA bundle path or an SSLContext, got {verify!r}.")


_HEADER_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")  # an RFC 9110 token
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")  # one line of printable ASCII (httpx sends ASCII)


def _check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Extra headers must be sendable: a bad name or value would otherwise fail every request at send time,
    be retried as a network error and never work. Values are never echoed (they may be credentials)."""
    result: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError(f"headers must map strings to strings; {name!r} does not.")
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(
                f"headers: {name!r} is not a valid HTTP header name; use letters, digits and '-' (e.g. 'X-Team')."
            )
        if name.lower() == "authorization":
            raise ConfigurationError("Set the key with api_key=, not an Authorization header.")
        if not _HEADER_VALUE.fullmatch(value):
            raise ConfigurationError(
                f"headers: the value of {name!r} is not a valid HTTP header value (it has a line break, a control "
                "character or a non-ASCII character); give a single line of printable ASCII text."
            )
        result[name] = value
    return result


def new_traceparent() -> str:
    """A fresh W3C ``traceparent`` (new trace, new span, sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_id_of(response: httpx.Response) -> str | None:
    """The 32-hex trace id of the response's ``traceparent`` (falls back to the request's)."""
    for value in (response.headers.get("traceparent"), response.request.headers.get("traceparent")):
        parts = (value or "").split("-")
        if len(parts) >= 3 and len(parts[1]) == 32:
            return parts[1]
    return None


class ClientOptions(TypedDict, total=False):
    """The keyword options both clients take (see :class:`ClientSettings`)."""

    api_key: str | None
    timeout: float
    connect_timeout: float
    stream_idle_timeout: float
    verify: bool | str | ssl.SSLContext
    retry: RetryPolicy | Mapping[str, Any] | None
    headers: Mapping[str, str] | None
    user_agent: str | None
    traceparent: str | None


class ClientBase:
    """What the sync and async clients share apart from transport: settings, reprs, capability checks."""

    def __init__(self, base_url: str, options: ClientOptions) -> None:
        self.settings = ClientSettings(base_url, **options)
        self._discovery: Discovery | None = None

    @property
    def base_url(self) -> str:
        """The host's base URL (without credentials)."""
        return self.settings.display_url

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in force."""
        return self.settings.retry

    def __repr__(self) -> str:
        key = "set" if self.settings.has_api_key else "none"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    @staticmethod
    def _require_fork(discovery: Discovery, mode: str) -> None:
        if not discovery.supports_fork(mode):
            raise UnsupportedFeatureError(f"fork ({mode})", detail="its discovery document has no replay support")
