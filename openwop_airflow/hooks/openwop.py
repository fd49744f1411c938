"""``OpenwopHook``: the ``openwop`` connection type, and the one place operators, sensors and the trigger
get an ``openwop_core`` client from.

Sync code uses :meth:`OpenwopHook.get_conn` (one client per hook instance). Async code (the trigger) uses
:meth:`OpenwopHook.async_client`, which looks the connection up with ``BaseHook.aget_connection`` (no
blocking secret or database call on the triggerer's event loop) and borrows a client shared per connection.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException
from airflow.sdk import BaseHook

from openwop_airflow.exceptions import OpenwopConnectionException
from openwop_airflow.get_provider_info import form_field_behaviour, form_widgets
from openwop_airflow.hooks.client_cache import shared_async_client
from openwop_airflow.hooks.connection import (
    KNOWN_EXTRAS,
    OpenwopConnectionSettings,
    decode_extra,
    settings_from_connection,
)
from openwop_airflow.hooks.connection_lookup import shared_connection_lookup
from openwop_core import (
    ApiError,
    AsyncOpenwopClient,
    AuthenticationError,
    CancelResult,
    NotFoundError,
    OpenwopClient,
    OpenwopError,
    PermissionDeniedError,
    RetryPolicy,
)
from openwop_core.settings import without_userinfo


class OpenwopHook(BaseHook):
    """Connects Airflow to one OpenWOP host through an ``openwop`` connection.

    The connection holds the base URL in ``host`` (with or without the scheme; ``schema`` or https when
    without), an optional ``port``, the API key in ``password`` and these extras: ``timeout``,
    ``connect_timeout``, ``stream_idle_timeout`` (seconds), ``verify`` (bool) or ``ca_bundle`` (path),
    ``ui_base_url`` (for run links), ``headers`` and the retry policy (``retry`` object or its fields
    such as ``max_attempts`` at the top level).

    :param openwop_conn_id: The Airflow connection id.
    :param retry: A retry policy overriding the connection's (a ``RetryPolicy`` or its dict).
    """

    conn_name_attr = "openwop_conn_id"
    default_conn_name = "openwop_default"
    conn_type = "openwop"
    hook_name = "OpenWOP"

    def __init__(
        self,
        openwop_conn_id: str = default_conn_name,
        *,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        logger_name: str | None = None,
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.openwop_conn_id = openwop_conn_id
        try:
            self.retry_override = (
                retry if isinstance(retry, RetryPolicy) or retry is None else RetryPolicy.model_validate(retry)
            )
        except ValueError as exc:
            raise OpenwopConnectionException(f"retry={retry!r} is not a valid OpenWOP retry policy: {exc}") from None
        self._settings: OpenwopConnectionSettings | None = None
        self._client: OpenwopClient | None = None

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields, for Airflow 3.1; Airflow 3.2+ reads the provider info's
        ``conn-fields`` instead and does not call this."""
        return form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How the connection form shows the standard fields, for Airflow 3.1; Airflow 3.2+ reads the provider
        info's ``ui-field-behaviour`` instead and does not call this."""
        return form_field_behaviour()

    # -- connection --------------------------------------------------------------------------------

    def get_connection_settings(self) -> OpenwopConnectionSettings:
        """Read and validate the connection (once per hook instance)."""
        if self._settings is None:
            try:
                conn = self.get_connection(self.openwop_conn_id)
            except AirflowNotFoundException:
                raise self._missing() from None
            self._settings = self._parse(conn, decode_extra(conn))
        return self._settings

    async def aget_connection_settings(self) -> OpenwopConnectionSettings:
        """Async twin of :meth:`get_connection_settings` for the triggerer (``aget_connection``, one lookup
        shared by the waits starting together on this loop: ``connection_lookup``)."""
        if self._settings is None:
            conn_id = self.openwop_conn_id
            try:
                conn = await shared_connection_lookup(conn_id, lambda: self.aget_connection(conn_id))
            except AirflowNotFoundException:
                raise self._missing() from None
            self._settings = self._parse(conn, decode_extra(conn))
        return self._settings

    def _parse(self, conn: Any, extras: Mapping[str, Any]) -> OpenwopConnectionSettings:
        settings = settings_from_connection(conn, extras)
        if "://" not in (conn.host or "") and not (conn.schema or "").strip():
            self.log.info(
                "OpenWOP connection %r: the host has no scheme, so %s is used; for a plain-http host write "
                "http:// in the host or set the schema to http.",
                self.openwop_conn_id,
                without_userinfo(settings.base_url),
            )
        if settings.unknown_extras:
            self.log.warning(
                "OpenWOP connection %r has extras this provider does not read: %s (known: %s)",
                self.openwop_conn_id,
                ", ".join(settings.unknown_extras),
                ", ".join(sorted(KNOWN_EXTRAS)),
            )
        return settings

    def _missing(self) -> OpenwopConnectionException:
        env = "AIRFLOW_CONN_" + self.openwop_conn_id.upper().replace("-", "_")
        if os.environ.get(env):  # Airflow skips a variable it cannot parse (3.1: even one with a bad extra)
            return OpenwopConnectionException(
                f"OpenWOP connection {self.openwop_conn_id!r}: Airflow could not read {env}; set it to a connection "
                'URI or to JSON such as {"conn_type": "openwop", "host": "https://...", "password": "<API key>", '
                '"extra": {"timeout": 30}} (extra: a JSON object, or JSON text of one).'
            )
        return OpenwopConnectionException(
            f"OpenWOP connection {self.openwop_conn_id!r} is not defined; create it in the UI (type OpenWOP) "
            f'or set {env}=\'{{"conn_type": "openwop", "host": "https://...", "password": "<API key>"}}\'.'
        )

    # -- clients -----------------------------------------------------------------------------------

    def get_conn(self) -> OpenwopClient:
        """The synchronous client for this connection (built once per hook instance)."""
        if self._client is None:
            self._client = self.get_connection_settings().client(OpenwopClient, retry=self.retry_override)
        return self._client

    @property
    def client(self) -> OpenwopClient:
        """Shorthand for :meth:`get_conn`."""
        return self.get_conn()

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[AsyncOpenwopClient]:
        """Borrow the async client for this connection, shared with other users on the running loop."""
        settings = await self.aget_connection_settings()
        async with shared_async_client(settings, retry=self.retry_override) as client:
            yield client

    def close(self) -> None:
        """Close the sync client's connection pool (a new one is built on next use)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def cancel_run(self, run_id: str, *, reason: str) -> CancelResult:
        """Cancel a run through a short-lived client of its own: ``on_kill`` runs in a signal handler that
        may have interrupted a request on this hook's client, whose pool must not be re-entered."""
        settings = self.get_connection_settings()
        kwargs = settings.client_kwargs(retry=RetryPolicy(max_attempts=2, initial_backoff=0.5))
        kwargs["timeout"] = min(kwargs.get("timeout", 30.0), 15.0)
        with OpenwopClient(settings.base_url, **kwargs) as client:
            return client.runs_cancel(run_id, reason=reason)

    def run_url(self, run_id: str) -> str:
        """The link for a run (UI when ``ui_base_url`` is set, else the API's run document)."""
        return self.get_connection_settings().run_url(run_id)

    # -- connection test ---------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Prove the connection works with the configured key: read discovery (host and version), then
        ``GET`` a run id that cannot exist with the key: 404 means the key was accepted, 401/403 not."""
        try:
            client = self.get_conn()
            discovery = client.discovery_capabilities()
        except (OpenwopConnectionException, OpenwopError) as exc:
            return False, f"Cannot reach the OpenWOP host: {exc}"
        implementation = discovery.implementation or {}
        host = " ".join(str(implementation.get(k)) for k in ("name", "version") if implementation.get(k))
        about = f"OpenWOP protocol {discovery.protocol_version}" + (f" ({host})" if host else "")
        probe = f"airflow-connection-test-{uuid.uuid4().hex}"
        try:
            client.runs_get(probe)
        except NotFoundError:
            auth = "API key accepted" if client.settings.has_api_key else "no API key configured"
            return True, f"Connected to {client.base_url}: {about}; {auth}."
        except AuthenticationError as exc:
            return False, f"{client.base_url} ({about}) rejected the API key: HTTP 401 {exc.code}: {exc.server_message}"
        except PermissionDeniedError as exc:
            return False, f"{client.base_url} ({about}): the API key may not read runs: HTTP 403 {exc.server_message}"
        except (ApiError, OpenwopError) as exc:
            return False, f"{client.base_url} ({about}) answered an authenticated call with an error: {exc}"
        return False, f"{client.base_url} returned a run for a random id {probe}; is this an OpenWOP host?"
