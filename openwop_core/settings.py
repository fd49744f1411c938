"""Every client setting described once (name, type, default, bounds, label, help, secret or not), and the
rules a setting's value must obey. Pure: no I/O (the client itself checks that a CA bundle file exists).

The client validates its keyword arguments with these descriptions (``ClientSettings``), the retry policy
takes its ``max_attempts`` field from here, and the Airflow connection form and extras and the Prefect
credentials block are derived from them: a bound, default or label cannot differ between them. Adding a
setting is one :class:`Setting` line here, plus its use.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field

from .errors import ConfigurationError

__all__ = [
    "API_KEY",
    "BASE_URL",
    "CA_BUNDLE",
    "CLIENT_SETTINGS",
    "CONNECT_TIMEOUT",
    "HEADERS",
    "MAX_ATTEMPTS",
    "STREAM_IDLE_TIMEOUT",
    "TIMEOUT",
    "TIMEOUTS",
    "VERIFY",
    "Setting",
    "check_api_key",
    "check_headers",
    "normalise_base_url",
    "verify_option",
    "without_userinfo",
]

log = logging.getLogger("openwop_core.client")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_JSON_TYPES = {float: "number", int: "integer", bool: "boolean", str: "string", dict: "object"}


@dataclass(frozen=True)
class Setting:
    """One setting as a user sets it: its name, type (``kind``) and default, its bounds (``gt``/``ge``/``le``, as in
    pydantic), the label and help text forms show, and whether it is a secret (never echoed)."""

    name: str
    kind: type
    default: Any
    label: str
    help: str
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    unit: str = ""
    secret: bool = False
    required: bool = False
    example: str | None = None
    format: str | None = None

    @property
    def expected(self) -> str:
        """What a valid value is, in words, for error messages (``a positive number of seconds``)."""
        if self.kind is bool:
            return "true or false"
        if self.kind not in (int, float):
            return "an object" if self.kind is dict else "a string"
        words = ["a", "positive" if self.gt == 0 else "", "whole number" if self.kind is int else "number"]
        words += [f"of {self.unit}" if self.unit else "", f"above {self.gt:g}" if self.gt else ""]
        words += [f"from {self.ge:g}" if self.ge is not None else "", f"to {self.le:g}" if self.le is not None else ""]
        return " ".join(word for word in words if word)

    def check(self, value: Any, *, shown: str | None = None, text: bool = False) -> Any:
        """``value`` as this setting's type when it obeys the type and bounds, else a :class:`ConfigurationError`
        naming ``shown`` (default: the setting's name), the value (unless secret) and what to give instead.
        ``text``: also read numbers and true/false written as text (connection forms and variables store text)."""
        parsed = self._parse(value, text)
        if parsed is None or not self._within(parsed):
            got = "" if self.secret else f", got {value!r}"
            raise ConfigurationError(f"{shown or self.name} must be {self.expected}{got}.")
        return parsed

    def _parse(self, value: Any, text: bool) -> Any:
        if text and isinstance(value, str) and self.kind is not str:
            word = value.strip().lower()
            if self.kind is bool:
                return True if word in _TRUE else False if word in _FALSE else None
            try:
                value = float(word)
            except ValueError:
                return None
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                return None
            if self.kind is int:
                return int(value) if float(value).is_integer() else None
            return float(value)
        return value if isinstance(value, self.kind) else None

    def _within(self, value: Any) -> bool:
        if self.kind not in (int, float):
            return True
        return (
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.le is None or value <= self.le)
        )

    def field(self) -> Any:
        """This setting as a pydantic ``Field`` (default, bounds, title, description, example) for a model."""
        bounds = {key: bound for key, bound in (("gt", self.gt), ("ge", self.ge), ("le", self.le)) if bound is not None}
        examples = {"examples": [self.example]} if self.example is not None else {}
        kwargs: dict[str, Any] = {"title": self.label, "description": self.help, **bounds, **examples}
        if isinstance(self.default, dict):
            return Field(default_factory=dict, **kwargs)
        return Field(... if self.required else self.default, **kwargs)

    def json_schema(self) -> dict[str, Any]:
        """This setting as JSON Schema (type, nullable unless required, bounds, format; secrets as passwords)."""
        schema: dict[str, Any] = {"type": [_JSON_TYPES[self.kind]] + ([] if self.required else ["null"])}
        for key, bound in (("exclusiveMinimum", self.gt), ("minimum", self.ge), ("maximum", self.le)):
            if bound is not None:
                schema[key] = bound
        if self.secret or self.format:
            schema["format"] = "password" if self.secret else self.format
        return schema


# fmt: off
BASE_URL = Setting("base_url", str, None, "Base URL", required=True, example="https://openwop.example.com",
                   help="The host's URL, e.g. https://openwop.example.com (the client adds /v1 itself).")
API_KEY = Setting("api_key", str, None, "API key", secret=True,
                  help="Sent as 'Authorization: Bearer <key>'. Leave empty for a host without authentication.")
TIMEOUT = Setting("timeout", float, 30.0, "Request timeout (s)", gt=0, unit="seconds",
                  help="Seconds one HTTP request may take; waiting for a run is not limited by it.")
CONNECT_TIMEOUT = Setting("connect_timeout", float, 10.0, "Connect timeout (s)", gt=0, unit="seconds",
                          help="Seconds to open a connection to the host.")
STREAM_IDLE_TIMEOUT = Setting("stream_idle_timeout", float, 90.0, "Event stream idle timeout (s)", gt=0, unit="seconds",
                              help="Silence after which the event stream is reconnected (a reconnect, not a failure).")
VERIFY = Setting("verify", bool, True, "Verify TLS certificates",
                 help="Turn off only for a throwaway test host; for a private CA set the CA bundle path instead.")
CA_BUNDLE = Setting("ca_bundle", str, None, "CA bundle path",
                    help="PEM file (or directory) of the CA that signed the host's certificate, where the tasks run.")
HEADERS = Setting("headers", dict, {}, "Extra headers",
                  help="HTTP headers sent with every request (not secret: the API key has a field of its own).")
MAX_ATTEMPTS = Setting("max_attempts", int, 5, "Retry: attempts per request", ge=1, le=100,
                       help="Attempts for a transient failure (connection error, 429, 5xx), the first included.")
# fmt: on

#: Every setting above, in the order forms show them.
CLIENT_SETTINGS = (
    BASE_URL,
    API_KEY,
    TIMEOUT,
    CONNECT_TIMEOUT,
    STREAM_IDLE_TIMEOUT,
    VERIFY,
    CA_BUNDLE,
    HEADERS,
    MAX_ATTEMPTS,
)
#: The settings that are durations in seconds (all must be positive).
TIMEOUTS = (TIMEOUT, CONNECT_TIMEOUT, STREAM_IDLE_TIMEOUT)


def verify_option(
    verify: bool, ca_bundle: str | None, *, names: tuple[str, str] = ("verify", "ca_bundle")
) -> bool | str:
    """The client's ``verify`` from a verify-TLS switch and an optional CA bundle path. The switch off with a
    bundle set is refused (which one was meant?), naming both fields as ``names`` gives them."""
    if ca_bundle and not verify:
        switch, bundle = names
        raise ConfigurationError(
            f"{switch} is off but {bundle} is set; they contradict each other, keep one: turn {switch} on to trust "
            f"the CA in the bundle, or clear {bundle} to skip verification (for a throwaway test host only)."
        )
    return ca_bundle or verify


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


def without_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages and reprs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[1], parts.path, "", ""))


def check_api_key(api_key: Any) -> str | None:
    """The key alone (a ``SecretStr`` is unwrapped), or None; never echoed in the errors."""
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


_HEADER_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")  # an RFC 9110 token
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")  # one line of printable ASCII (httpx sends ASCII)


def check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
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
