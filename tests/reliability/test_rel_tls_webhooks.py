"""TLS and webhook signatures.

TLS: certificate verification is on by default (a loopback host with a certificate from a private CA is
refused, with a message that says how to trust it), a CA bundle (path or ``SSLContext``) makes the same host
work, streams included, and an API key about to travel over plain http to a host that is not this machine
raises a warning (and is logged), without the key.

Webhooks: real deliveries from the local host verify with the subscription's secret; a wrong secret, a
changed body, a stale or replayed timestamp, a timestamp from the future and missing headers are all
rejected; the comparison is ``hmac.compare_digest`` (constant time), on success and on failure alike.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import hmac
import http.server
import inspect
import logging
import socket
import ssl
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import API_KEY, TlsHost, TlsMaterial, make_tls_material, wait_until

from openwop_core import (
    AsyncOpenwopClient,
    InsecureTransportWarning,
    OpenwopClient,
    TransportError,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook_signature,
)
from openwop_devhost import DevHost

# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_host(tls_material: TlsMaterial) -> Iterator[TlsHost]:
    with TlsHost(tls_material) as host:
        yield host


def test_verification_is_on_by_default_and_an_untrusted_certificate_is_refused(tls_host: TlsHost) -> None:
    with OpenwopClient(tls_host.base_url, api_key=API_KEY, retry={"max_attempts": 1}) as client:
        assert client.settings.verify is True
        with pytest.raises(TransportError) as caught:
            client.runs_create("conformance-noop")
    text = str(caught.value)
    assert f"TLS certificate of {tls_host.base_url} was not trusted" in text
    assert "CERTIFICATE_VERIFY_FAILED" in text
    assert "verify='/path/to/ca-bundle.pem'" in text  # the fix
    assert caught.value.retryable is False  # not transient: no retries
    assert API_KEY not in text


def run_on(loop: str, scenario: Any) -> Any:
    """``scenario()`` on asyncio's own event loop or on uvloop (which Airflow's environment installs): the async
    client's connections are the loop's own transports (``openwop_core.asyncio_network``), TLS included."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(scenario())
    return asyncio.run(scenario())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_async_client_refuses_it_too(tls_host: TlsHost, loop: str) -> None:
    async def scenario() -> None:
        async with AsyncOpenwopClient(tls_host.base_url, api_key=API_KEY, retry={"max_attempts": 1}) as client:
            await client.runs_get("run_1")

    with pytest.raises(TransportError, match="was not trusted") as caught:
        run_on(loop, scenario)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


def test_a_ca_bundle_path_makes_the_host_work_streams_included(tls_host: TlsHost, tls_material: TlsMaterial) -> None:
    with OpenwopClient(tls_host.base_url, api_key=API_KEY, verify=str(tls_material.ca_cert)) as client:
        run_id = client.runs_create("conformance-multi-node").run_id
        seen: list[Any] = []
        result = client.wait_for_run(run_id, timeout=30, on_event=seen.append)
    assert result.status == "completed"
    assert seen[-1].type == "run.completed"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_an_ssl_context_with_the_ca_works_for_the_async_client(
    tls_host: TlsHost, tls_material: TlsMaterial, loop: str
) -> None:
    context = ssl.create_default_context(cafile=str(tls_material.ca_cert))

    async def scenario() -> str:
        async with AsyncOpenwopClient(tls_host.base_url, api_key=API_KEY, verify=context) as client:
            run_id = (await client.runs_create("conformance-noop")).run_id
            return (await client.wait_for_run(run_id, timeout=30)).status

    assert run_on(loop, scenario) == "completed"


class ConnectProxy:
    """An HTTP forward proxy stand-in for ``https://`` targets: it answers ``CONNECT host:port`` by opening a
    tunnel to 127.0.0.1 on that port and relaying bytes both ways (it sees only TLS); it records the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            piece = client.recv(4096)
            if not piece:
                client.close()
                return
            head += piece
        line = head.split(b"\r\n", 1)[0].decode()
        self.lines.append(line)
        port = int(line.split()[1].rsplit(":", 1)[1])
        upstream = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def __enter__(self) -> ConnectProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener.close()


def test_tls_through_an_http_proxys_tunnel_is_verified_end_to_end(
    tls_host: TlsHost, tls_material: TlsMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a corporate proxy (``HTTPS_PROXY=http://...``) the async client opens a ``CONNECT`` tunnel and
    starts TLS with the host inside it: the request and the followed stream verify with the CA, end to end."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    base_url = tls_host.base_url.replace("127.0.0.1", "localhost")  # a name in the certificate, not an address

    async def scenario(bundle: Path) -> str:
        async with AsyncOpenwopClient(
            base_url, api_key=API_KEY, verify=str(bundle), retry={"max_attempts": 1}
        ) as client:
            run_id = (await client.runs_create("conformance-noop")).run_id
            return (await client.wait_for_run(run_id, timeout=30)).status

    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        assert asyncio.run(scenario(tls_material.ca_cert)) == "completed"
        with pytest.raises(TransportError, match="was not trusted"):  # through the tunnel, still verified
            asyncio.run(scenario(tls_material.server_cert))  # a bundle without the CA
    assert proxy.lines and all(line == f"CONNECT localhost:{tls_host.port} HTTP/1.1" for line in proxy.lines)


def test_concurrent_streams_over_tls_each_get_a_connection_made_with_the_ca(
    tls_host: TlsHost, tls_material: TlsMaterial
) -> None:
    """Each followed stream has a connection of its own (``openwop_core.stream_transport``), made with the
    client's CA bundle; they are all closed once the waits are over."""

    async def scenario() -> list[str]:
        async with AsyncOpenwopClient(tls_host.base_url, api_key=API_KEY, verify=str(tls_material.ca_cert)) as client:
            run_ids = [(await client.runs_create("conformance-delay", {"delayMs": 500})).run_id for _ in range(4)]
            results = await asyncio.gather(*(client.wait_for_run(run_id, timeout=30) for run_id in run_ids))
            assert client._http._transport.open_streams == 0
            return [result.status for result in results]

    assert asyncio.run(scenario()) == ["completed"] * 4

    def untrusted() -> None:  # the stream's own connection verifies too
        with OpenwopClient(tls_host.base_url, api_key=API_KEY, retry={"max_attempts": 1}) as client:
            list(client.runs_events("run_1", reconnect=False, poll_fallback=False))

    with pytest.raises(TransportError, match="was not trusted"):
        untrusted()


@pytest.mark.parametrize(
    ("base_url", "api_key", "warns"),
    [
        ("http://openwop.example.com", API_KEY, True),
        ("http://10.20.30.40:8080", API_KEY, True),  # private, but another machine
        ("http://openwop.internal/prefix", API_KEY, True),
        ("http://127.0.0.1:3737", API_KEY, False),
        ("http://localhost:3737", API_KEY, False),
        ("http://[::1]:3737", API_KEY, False),
        ("https://openwop.example.com", API_KEY, False),
        ("http://openwop.example.com", None, False),  # no key, nothing to protect
    ],
)
def test_a_key_over_plain_http_to_another_machine_warns(
    base_url: str, api_key: str | None, warns: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="openwop_core")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        OpenwopClient(base_url, api_key=api_key).close()
    insecure = [w for w in caught if issubclass(w.category, InsecureTransportWarning)]
    assert bool(insecure) is warns
    if warns:
        assert "sent unencrypted" in str(insecure[0].message)
        assert "use https://" in str(insecure[0].message)
        assert "sent unencrypted" in caplog.text
    assert API_KEY not in caplog.text + "".join(str(w.message) for w in caught)


# -- webhooks ------------------------------------------------------------------------------------------


class Receiver:
    """A loopback HTTP endpoint that keeps every delivery's raw body and headers."""

    def __init__(self) -> None:
        received = self.received = []  # type: list[tuple[dict[str, str], bytes]]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def deliveries(rel_host: DevHost) -> tuple[str, list[tuple[dict[str, str], bytes]]]:
    """Real signed deliveries of one run's events, and the subscription's secret."""
    with Receiver() as receiver, OpenwopClient(rel_host.base_url, api_key=API_KEY) as client:
        registration = client.webhooks_register(receiver.url, ["*"], tags=["rel-webhooks"])
        run_id = client.runs_create("conformance-multi-node", tags=["rel-webhooks"]).run_id
        client.wait_for_run(run_id, timeout=30)
        wait_until(lambda: any(b'"run.completed"' in body for _, body in receiver.received))
        client.webhooks_unregister(registration.webhook_id)
    assert registration.secret is not None
    return registration.secret.get_secret_value(), list(receiver.received)


def stamp(headers: dict[str, str]) -> int:
    return int({k.lower(): v for k, v in headers.items()}["x-openwop-timestamp"])


def test_real_deliveries_verify_with_the_subscription_secret(deliveries: Any) -> None:
    secret, received = deliveries
    assert len(received) >= 5
    for headers, body in received:
        verify_webhook_signature(secret, body, headers)


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "changed body", "stale timestamp", "replayed later", "from the future", "no signature"],
)
def test_a_delivery_that_is_not_authentic_and_fresh_is_rejected(deliveries: Any, tamper: str) -> None:
    secret, received = deliveries
    headers, body = dict(received[0][0]), received[0][1]
    sent_at = stamp(headers)
    now: float = sent_at
    key = secret
    if tamper == "wrong secret":
        key = secret + "x"
    elif tamper == "changed body":
        body = body.replace(b"run.", b"RUN.", 1)
    elif tamper == "stale timestamp":  # re-signed correctly, but with a timestamp older than the window
        old = sent_at - 301
        headers = {**headers, "X-openwop-Timestamp": str(old), "X-openwop-Signature": sign_webhook(secret, old, body)}
    elif tamper == "replayed later":  # the genuine delivery, received again after the freshness window
        now = sent_at + 301
    elif tamper == "from the future":
        ahead = sent_at + 301
        headers = {
            **headers,
            "X-openwop-Timestamp": str(ahead),
            "X-openwop-Signature": sign_webhook(secret, ahead, body),
        }
    else:
        headers = {k: v for k, v in headers.items() if k.lower() != "x-openwop-signature"}

    with pytest.raises(WebhookVerificationError) as caught:
        verify_webhook_signature(key, body, headers, now=now)
    assert "Reject the delivery" in str(caught.value)


def test_signatures_are_compared_in_constant_time(deliveries: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, received = deliveries
    headers, body = received[0]
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module webhooks.py calls it through
    verify_webhook_signature(secret, body, headers, now=stamp(headers))
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(secret + "x", body, headers, now=stamp(headers))

    assert len(calls) == 2  # the match and the mismatch both went through compare_digest
    signature = {k.lower(): v for k, v in headers.items()}["x-openwop-signature"].encode()
    assert calls[0] == (sign_webhook(secret, stamp(headers), body).encode(), signature)
    # and nothing else in the function compares with == / != (which would leak timing)
    tree = ast.parse(textwrap.dedent(inspect.getsource(verify_webhook_signature)))
    compared = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops)
    ]
    assert not [text for text in compared if "signature" in text or "expected" in text], compared
