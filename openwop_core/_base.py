"""What the sync and async clients share: validated settings (each setting is described in ``settings``),
headers, auth, trace context, and turning an HTTP answer (or an httpx failure) into a result or a typed
error. No network I/O happens here (a CA bundle given as a path is read)."""

from __future__ import annotations

import ipaddress
import logging
import os
import platform
import re
import ssl
import warnings
from collections.abc import Generator, Mapping
from typing import Any, TypedDict, TypeVar
from urllib.parse import urlsplit

import httpx

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
from .settings import (
    CONNECT_TIMEOUT,
    STREAM_IDLE_TIMEOUT,
    TIMEOUT,
    check_api_key,
    check_headers,
    normalise_base_url,
    verify_option,
    without_userinfo,
)
from .sse import SSEError
from .stream_transport import KEEPALIVE_EXPIRY, OWN_CONNECTION, POOLED_REQUESTS_IN_FLIGHT
from .streaming import StreamIdleError
from .tracing import trace_headers

T = TypeVar("T")

log = logging.getLogger("openwop_core.client")

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
        timeout: float = TIMEOUT.default,
        connect_timeout: float = CONNECT_TIMEOUT.default,
        stream_idle_timeout: float = STREAM_IDLE_TIMEOUT.default,
        verify: bool | str | ssl.SSLContext = True,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        user_agent: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self._api_key = check_api_key(api_key)
        self.timeout: float = TIMEOUT.check(timeout)
        self.connect_timeout: float = CONNECT_TIMEOUT.check(connect_timeout)
        #: Real hosts send no keepalives; a read silent this long means "reconnect", never "failed".
        self.stream_idle_timeout: float = STREAM_IDLE_TIMEOUT.check(stream_idle_timeout)
        self.verify = _check_verify(verify)
        try:
            self.retry = retry if isinstance(retry, RetryPolicy) else RetryPolicy.model_validate(retry or {})
        except ValueError as exc:
            raise ConfigurationError(f"retry is not a valid retry policy: {exc}") from None
        self.headers = check_headers(headers)
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
        return without_userinfo(self.base_url)

    def auth(self) -> BearerAuth | None:
        """The httpx auth for authenticated calls (None when no key is set)."""
        return BearerAuth(self._api_key) if self._api_key else None

    def default_headers(self) -> dict[str, str]:
        """Headers on every request (the key is added by :class:`BearerAuth`, never here)."""
        return {"User-Agent": self.user_agent, "Accept": "application/json", **self.headers}

    def httpx_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``: one pool per client.

        Event streams and long-polls do not use the pool: each gets a connection of its own, made with the same
        SSL context and proxies (``stream_transport``), so a wait costs the same CPU with 10 or 3,000 streams
        open. The pool itself has no cap here: the async client lets at most ``POOLED_REQUESTS_IN_FLIGHT``
        requests into it at once (an Airflow triggerer's thousands of waits, started together, each read a
        snapshot first), and they wait their turn outside httpcore, whose queue would cost O(N) per request."""
        return {
            "base_url": self.base_url,
            "headers": self.default_headers(),
            "timeout": httpx.Timeout(self.timeout, connect=self.connect_timeout),
            "verify": self.verify,
            "auth": self.auth(),
            "follow_redirects": False,
            "limits": httpx.Limits(
                max_connections=None,
                max_keepalive_connections=POOLED_REQUESTS_IN_FLIGHT,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
            "trust_env": True,
        }

    def request_options(self, call: Call[Any], *, stream_read_timeout: float | None = None) -> dict[str, Any]:
        """Per-request arguments for httpx: method, path, query, headers, body, timeout, auth."""
        headers = dict(call.headers)
        if "traceparent" not in headers:  # the client's fixed traceparent, else the operation's trace
            headers.update({"traceparent": self.traceparent} if self.traceparent else trace_headers(call.trace))
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
            options["extensions"] = OWN_CONNECTION  # it holds its connection as long as a stream does
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
        """Map an httpx failure (or an answer that is no event stream) to this library's errors, naming the call."""
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
        if "CERTIFICATE_VERIFY_FAILED" in text:
            # not transient: retrying (a trigger until its timeout) would only hide it
            return TransportError(
                f"TLS certificate of {self.display_url} was not trusted ({method} {path}): {text}.",
                method=method,
                path=path,
                hint="Trust the CA that signed the host's certificate: verify='/path/to/ca-bundle.pem' (in Airflow "
                "the connection's extra \"ca_bundle\", in Prefect the credentials block's ca_bundle_path); disable "
                "verification only for a throwaway test host. Retrying will not help.",
                retryable=False,
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


def check_ca_bundle(path: Any, shown: str = "verify") -> str:
    """``path`` when a CA bundle (file or directory) exists there; the error names ``shown`` and the path."""
    if not isinstance(path, str) or not os.path.exists(path):
        raise ConfigurationError(f"{shown}: no CA bundle at {path!r} on this machine; pass an existing PEM file.")
    return path


def tls_verify(verify: bool, ca_bundle: str | None, *, names: tuple[str, str] = ("verify", "ca_bundle")) -> bool | str:
    """The client's ``verify`` from a verify-TLS switch and a CA bundle path set apart (as forms have them):
    both at once are refused (:func:`~openwop_core.settings.verify_option`), and the bundle must exist here."""
    result = verify_option(verify, ca_bundle, names=names)
    return check_ca_bundle(result, names[1]) if isinstance(result, str) else result


def _check_verify(verify: Any) -> bool | ssl.SSLContext:
    if isinstance(verify, (bool, ssl.SSLContext)):
        return verify
    if isinstance(verify, str):
        check_ca_bundle(verify)
        try:
            if os.path.isdir(verify):
                return ssl.create_default_context(capath=verify)
            return ssl.create_default_context(cafile=verify)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(f"verify={verify!r} is not a readable CA bundle: {exc}") from None
    raise ConfigurationError(f"verify must be True, False, a CA bundle path or an SSLContext, got {verify!r}.")


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
