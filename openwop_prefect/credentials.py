"""``OpenwopCredentials``: where an OpenWOP host is and how to authenticate, stored as a Prefect block.

The block holds settings only; :meth:`OpenwopCredentials.get_client` and
:meth:`OpenwopCredentials.get_async_client` build ``openwop_core`` clients from them, so every task, flow
and job block talks to the host the same way (timeouts, TLS, retries). The API key is a ``SecretStr``:
Prefect stores it encrypted and shows it obfuscated, and nothing here ever logs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import prefect
from prefect.blocks.abstract import CredentialsBlock
from pydantic import ConfigDict, HttpUrl, SecretStr, field_validator, model_validator

from openwop_core import AsyncOpenwopClient, ConfigurationError, OpenwopClient, RetryPolicy
from openwop_core._base import USER_AGENT, tls_verify
from openwop_core.settings import (
    API_KEY,
    BASE_URL,
    CA_BUNDLE,
    HEADERS,
    MAX_ATTEMPTS,
    TIMEOUT,
    VERIFY,
    check_headers,
    normalise_base_url,
    verify_option,
)

__all__ = ["OpenwopCredentials"]

T = TypeVar("T")

PREFECT_USER_AGENT = f"{USER_AGENT} prefect/{prefect.__version__}"
#: The block fields of the verify-TLS switch and the CA bundle, as errors name them.
_TLS_FIELDS = ("verify_tls", "ca_bundle_path")


class OpenwopBlockLook:
    """The logo and documentation page the OpenWOP blocks show in the Prefect UI."""

    _logo_url: ClassVar[HttpUrl | None] = HttpUrl(
        "https://raw.githubusercontent.com/openwop/openwop-integrations/main/docs/openwop-logo.png"
    )
    _documentation_url: ClassVar[HttpUrl | None] = HttpUrl(
        "https://github.com/openwop/openwop-integrations/blob/main/docs/prefect.md"
    )


def _by_core_rule(rule: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Apply one of the core's setting rules in a validator: its complaint becomes the field's error."""
    try:
        return rule(*args, **kwargs)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


class OpenwopCredentials(OpenwopBlockLook, CredentialsBlock):
    """Connection settings for one OpenWOP v1 host: base URL, API key, timeout, TLS and extra headers.

    Example:
        ```python
        from openwop_prefect import OpenwopCredentials

        OpenwopCredentials(base_url="https://openwop.example.com", api_key="...").save("prod")
        credentials = OpenwopCredentials.load("prod")
        with credentials.get_client() as client:
            print(client.discovery_capabilities().protocol_version)
        ```
    """

    _block_type_name = "OpenWOP Credentials"
    _block_type_slug = "openwop-credentials"
    _description = "Base URL and API key of an OpenWOP v1 host, used by the openwop_prefect tasks and flows."
    _code_example = """
```python
from openwop_prefect import OpenwopCredentials

credentials = OpenwopCredentials.load("BLOCK_NAME")
with credentials.get_client() as client:
    print(client.discovery_capabilities().protocol_version)
```
"""

    # Each field is a setting described once in openwop_core.settings (title, help, default, bounds).
    base_url: str = BASE_URL.field()
    api_key: SecretStr | None = API_KEY.field()
    timeout: float = TIMEOUT.field()
    verify_tls: bool = VERIFY.field()
    ca_bundle_path: str | None = CA_BUNDLE.field()
    headers: dict[str, str] = HEADERS.field()
    retry_attempts: int = MAX_ATTEMPTS.field()

    # A refused base URL or header may hold a password: never copy the input into validation errors.
    model_config = ConfigDict(hide_input_in_errors=True)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        """The core's URL rules (scheme, host, no query, no 'user:password@'), checked when the block is built."""
        _by_core_rule(normalise_base_url, value)
        return value.strip()

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        """The core's header rules (valid names, one-line ASCII values, no Authorization), at construction."""
        return _by_core_rule(check_headers, value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _check_timeout(cls, value: Any) -> float:
        """The core's timeout rule (a positive number of seconds; not a boolean), at construction."""
        return float(_by_core_rule(TIMEOUT.check, value, text=True))

    @model_validator(mode="after")
    def _check_tls(self) -> OpenwopCredentials:
        """Verification off with a CA bundle set is refused at construction, naming both fields (the bundle's
        file is looked for when a client is made, on the worker)."""
        _by_core_rule(verify_option, self.verify_tls, self.ca_bundle_path, names=_TLS_FIELDS)
        return self

    def _client_options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {
            "api_key": self.api_key.get_secret_value() if self.api_key is not None else None,
            "timeout": self.timeout,
            "verify": tls_verify(self.verify_tls, self.ca_bundle_path, names=_TLS_FIELDS),
            "headers": dict(self.headers),
            "retry": RetryPolicy(max_attempts=self.retry_attempts),
            "user_agent": PREFECT_USER_AGENT,
        }
        options.update(overrides)
        return options

    def get_client(self, **overrides: Any) -> OpenwopClient:
        """A synchronous ``OpenwopClient`` for this host (use it as a context manager).

        ``overrides`` are passed to the client as keyword arguments (e.g. ``stream_idle_timeout=30``).
        """
        return OpenwopClient(self.base_url, **self._client_options(overrides))

    def get_async_client(self, **overrides: Any) -> AsyncOpenwopClient:
        """An ``AsyncOpenwopClient`` for this host (use it as an async context manager)."""
        return AsyncOpenwopClient(self.base_url, **self._client_options(overrides))
