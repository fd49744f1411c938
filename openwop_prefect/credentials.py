"""``OpenwopCredentials``: where an OpenWOP host is and how to authenticate, stored as a Prefect block.

The block holds settings only; :meth:`OpenwopCredentials.get_client` and
:meth:`OpenwopCredentials.get_async_client` build ``openwop_core`` clients from them, so every task, flow
and job block talks to the host the same way (timeouts, TLS, retries). The API key is a ``SecretStr``:
Prefect stores it encrypted and shows it obfuscated, and nothing here ever logs it.
"""

from __future__ import annotations

from typing import Any

import prefect
from prefect.blocks.abstract import CredentialsBlock
from pydantic import ConfigDict, Field, HttpUrl, SecretStr, field_validator

from openwop_core import AsyncOpenwopClient, ConfigurationError, OpenwopClient, RetryPolicy
from openwop_core._base import USER_AGENT, _check_headers, normalise_base_url

__all__ = ["OpenwopCredentials"]

PREFECT_USER_AGENT = f"{USER_AGENT} prefect/{prefect.__version__}"


class OpenwopCredentials(CredentialsBlock):
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
    _logo_url = HttpUrl("https://raw.githubusercontent.com/openwop/openwop-integrations/main/docs/openwop-logo.png")
    _documentation_url = HttpUrl("https://github.com/openwop/openwop-integrations/blob/main/docs/prefect.md")
    _description = "Base URL and API key of an OpenWOP v1 host, used by the openwop_prefect tasks and flows."
    _code_example = """
```python
from openwop_prefect import OpenwopCredentials

credentials = OpenwopCredentials.load("BLOCK_NAME")
with credentials.get_client() as client:
    print(client.discovery_capabilities().protocol_version)
```
"""

    base_url: str = Field(
        default=...,
        title="Base URL",
        description="The host's URL, e.g. https://openwop.example.com (the client adds /v1 itself).",
        examples=["https://openwop.example.com"],
    )
    api_key: SecretStr | None = Field(
        default=None,
        title="API key",
        description="Sent as 'Authorization: Bearer <key>'. Leave empty for a host without authentication.",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        title="Request timeout (seconds)",
        description="How long one HTTP request may take. Waiting for a run is not limited by this.",
    )
    verify_tls: bool = Field(
        default=True,
        title="Verify TLS certificates",
        description="Turn off only for a throwaway test host; prefer a CA bundle for private CAs.",
    )
    ca_bundle_path: str | None = Field(
        default=None,
        title="CA bundle path",
        description="PEM file (or directory) with the CA that signed the host's certificate, on the worker.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        title="Extra headers",
        description="Extra HTTP headers sent with every request (not secret: put the key in 'API key').",
    )
    retry_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        title="Attempts per request",
        description="Attempts for a request that fails transiently (connection errors, 429, 5xx), the first included.",
    )

    # A refused base URL or header may hold a password: never copy the input into validation errors.
    model_config = ConfigDict(hide_input_in_errors=True)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        """The core's URL rules (scheme, host, no query, no 'user:password@'), checked when the block is built."""
        try:
            normalise_base_url(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        """The core's header rules (valid names, one-line ASCII values, no Authorization), at construction."""
        try:
            return _check_headers(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None

    def _client_options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        verify: bool | str = self.verify_tls and (self.ca_bundle_path or True)
        options: dict[str, Any] = {
            "api_key": self.api_key.get_secret_value() if self.api_key is not None else None,
            "timeout": self.timeout,
            "verify": verify,
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
