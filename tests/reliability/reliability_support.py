"""Shared pieces of the reliability suite (core, Airflow and Prefect parts): how big a run is (CI or soak),
the generated stream cases and what a correct consumer must see for them, a tally of cases and events for
the summary line, Retry-After gap checks on the host's request log, and a loopback TLS host.

Importable from every environment: it needs only ``openwop_core``, its local host and hypothesis. The
``tests/reliability`` folder is on ``sys.path`` because its ``conftest.py`` lives there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from shared_support import wait_until as wait_until  # re-exported: the reliability tests' one import

from openwop_devhost import create_app
from openwop_devhost.engine.events import admits
from openwop_devhost.server import bind_socket

# -- how big a run is --------------------------------------------------------------------------------

#: ``OPENWOP_SOAK=1`` (``make soak``) runs the same properties at larger counts.
SOAK = os.environ.get("OPENWOP_SOAK", "").strip().lower() in ("1", "true", "yes", "on")
HERE = Path(__file__).resolve().parent
WORKFLOWS_DIR = HERE / "workflows"
#: A distinctive key for the core part (the Airflow and Prefect parts use their suites' keys).
API_KEY = "owk-RELIABILITY-5e1d7a-never-shown"

#: Client retry policy for the stream properties: reconnect at once (drops are the point, not backoff).
FAST_RETRY: dict[str, Any] = {"initial_backoff": 0.001, "max_backoff": 0.02, "stream_max_reconnects": 10}


def scale(ci: int, soak: int) -> int:
    """``ci`` in the normal test run, ``soak`` under ``make soak``."""
    return soak if SOAK else ci


def property_settings(ci_examples: int, soak_examples: int) -> settings:
    """Hypothesis settings for a property over live runs: no deadline (network), no example database
    (the host is fresh every session), fixtures shared across examples on purpose."""
    return settings(
        max_examples=scale(ci_examples, soak_examples),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )


#: Per-test pytest timeout for the properties (pyproject's 300 s would stop a soak run).
PROPERTY_TIMEOUT = scale(300, 5400)


# -- tally (printed at the end of the session) -------------------------------------------------------


@dataclass
class _Tally:
    cases: int = 0
    events: int = 0
    connections: int = 0
    restarts: int = 0
    seconds: float = 0.0


TALLY: dict[str, _Tally] = defaultdict(_Tally)


def record(path: str, events: int, seconds: float = 0.0, connections: int = 0, restarts: int = 0) -> None:
    """Count one checked case of ``path`` (e.g. ``stream/sync``), the events it checked, the event stream
    (or poll) connections it took to get them (each one past the first is a resume) and the consumer
    restarts it survived."""
    entry = TALLY[path]
    entry.cases += 1
    entry.events += events
    entry.connections += connections
    entry.restarts += restarts
    entry.seconds += seconds


def tally_lines() -> list[str]:
    """One line per path plus a total, for the terminal summary."""
    if not TALLY:
        return []
    lines = [f"{'soak' if SOAK else 'ci'} counts (cases, events checked, stream/poll connections, time in cases):"]
    for path in sorted(TALLY):
        entry = TALLY[path]
        restarts = f" {entry.restarts:>5} restarts mid-wait" if entry.restarts else ""
        lines.append(
            f"  {path:<34} {entry.cases:>6} cases {entry.events:>9} events "
            f"{entry.connections:>8} connections {entry.seconds:>8.1f} s{restarts}"
        )
    cases = sum(t.cases for t in TALLY.values())
    events = sum(t.events for t in TALLY.values())
    connections = sum(t.connections for t in TALLY.values())
    lines.append(f"  {'total':<34} {cases:>6} cases {events:>9} events {connections:>8} connections")
    return lines


# -- generated stream cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamCase:
    """One generated run and the faults its event stream suffers.

    ``faults`` are per-run overrides (``host.set_run_faults``); ``seed`` reseeds the host's random drops so
    a failing example replays the same drops; ``cancel`` cancels the run right after it starts.
    """

    workflow_id: str
    inputs: dict[str, Any]
    outcome: str
    faults: dict[str, Any]
    seed: int
    cancel: bool = False
    stream_mode: str | None = None
    buffer_ms: int | None = None

    @property
    def polled(self) -> bool:
        """True when the host offers no SSE: the client reads the poll endpoint (no mode filtering)."""
        return bool(self.faults.get("sse_unavailable"))


_COUNT = st.integers(min_value=0, max_value=scale(120, 400))
_DELAY = st.integers(min_value=0, max_value=40)
_PAYLOAD = st.sampled_from([0, 16, 200])


@st.composite
def _workflow(draw: st.DrawFn) -> tuple[str, dict[str, Any], str, bool]:
    kind = draw(st.sampled_from(["burst", "multi-node", "chain", "chain-failing", "failure", "cancelled"]))
    if kind == "burst":
        return "devhost-burst", {"count": draw(_COUNT), "payloadBytes": draw(_PAYLOAD)}, "completed", False
    if kind == "multi-node":
        return "conformance-multi-node", {}, "completed", False
    if kind in ("chain", "chain-failing"):
        inputs = {"count": draw(_COUNT), "payloadBytes": draw(_PAYLOAD), "delayMs": draw(_DELAY)}
        if kind == "chain":
            return "rel-chain", inputs, "completed", False
        return "rel-chain-failing", inputs, "failed", False
    if kind == "failure":
        return "conformance-failure", {}, "failed", False
    return "conformance-cancellable", {"delayMs": 60_000}, "cancelled", True


@st.composite
def _faults(draw: st.DrawFn) -> dict[str, Any]:
    faults: dict[str, Any] = {}
    drop_after = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=40)))
    probability = draw(st.one_of(st.just(0.0), st.floats(min_value=0.02, max_value=0.35)))
    sse_unavailable = draw(st.integers(min_value=0, max_value=9)) == 0  # one case in ten: poll only
    if drop_after is None and probability == 0.0 and not sse_unavailable:
        drop_after = draw(st.integers(min_value=1, max_value=8))  # every SSE case suffers drops
    if drop_after is not None:
        faults["drop_sse_after_events"] = drop_after
    if probability:
        faults["drop_sse_probability"] = probability
    for switch in ("duplicate_after_reconnect", "legacy_event_fields", "malformed_sse_frame"):
        if draw(st.booleans()):
            faults[switch] = True
    if not draw(st.booleans()):
        faults["keepalive"] = False
    if sse_unavailable:
        faults["sse_unavailable"] = True
    return faults


@st.composite
def stream_cases(draw: st.DrawFn, *, modes: bool = False) -> StreamCase:
    """A run (workflow, inputs, expected end) and the faults on its stream; with ``modes`` also a stream
    mode and batching window (for ``runs_events``; waits always use the default ``updates``)."""
    workflow_id, inputs, outcome, cancel = draw(_workflow())
    mode = draw(st.sampled_from([None, "updates", "debug", "updates,debug"])) if modes else None
    buffer_ms = draw(st.sampled_from([None, None, 0, 5, 20])) if modes else None
    return StreamCase(
        workflow_id=workflow_id,
        inputs=inputs,
        outcome=outcome,
        faults=draw(_faults()),
        seed=draw(st.integers(min_value=0, max_value=2**31 - 1)),
        cancel=cancel,
        stream_mode=mode,
        buffer_ms=buffer_ms,
    )


#: An event as compared: ``(sequence, type, payload)``.
Triple = tuple[int, str, Any]

_TERMINAL_TYPE = {"completed": "run.completed", "failed": "run.failed", "cancelled": "run.cancelled"}


def terminal_type(outcome: str) -> str:
    """The terminal event type of a run that ends ``outcome``."""
    return _TERMINAL_TYPE[outcome]


def expected_events(
    host_events: Sequence[Mapping[str, Any]], case: StreamCase, *, after: int | None = None
) -> list[Triple]:
    """What a consumer must see, in order: the host's canonical log, filtered by the stream mode (SSE
    only: the poll endpoint has no modes), after the cursor ``after``. As ``(sequence, type, payload)``."""
    modes = (case.stream_mode or "updates").split(",")
    result: list[Triple] = []
    for event in host_events:
        if after is not None and event["sequence"] <= after:
            continue
        if case.polled or any(admits(mode, event["type"]) for mode in modes):
            result.append((event["sequence"], event["type"], event.get("payload")))
    return result


def as_triples(events: Sequence[Any]) -> list[Triple]:
    """``RunEvent`` objects as ``(sequence, type, payload)``."""
    return [(event.sequence, event.type, event.payload) for event in events]


def describe_mismatch(seen: list[Triple], expected: list[Triple]) -> str:
    """A short explanation of the first difference between two event lists."""
    seen_seq = [s for s, _, _ in seen]
    expected_seq = [s for s, _, _ in expected]
    duplicates = sorted({s for s in seen_seq if seen_seq.count(s) > 1})
    missing = sorted(set(expected_seq) - set(seen_seq))
    extra = sorted(set(seen_seq) - set(expected_seq))
    for index, (a, b) in enumerate(zip(seen, expected, strict=False)):
        if a != b:
            return f"first difference at #{index}: saw {a[:2]}, expected {b[:2]}; dup={duplicates} missing={missing}"
    return f"lengths {len(seen)} vs {len(expected)}; dup={duplicates} missing={missing[:10]} extra={extra[:10]}"


# -- Retry-After, measured where the requests arrive -------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """An injected answer and the next request on the same route: how long the client waited."""

    method: str
    path: str
    status: int
    seconds: float


def retry_gaps(requests: Sequence[Mapping[str, Any]]) -> list[Gap]:
    """For every injected (fault) answer in the host's request log, the time until the next request with
    the same method and path arrived (what ``Retry-After`` must not undercut)."""
    gaps: list[Gap] = []
    for index, entry in enumerate(requests):
        if not entry.get("injected"):
            continue
        for later in requests[index + 1 :]:
            if later["method"] == entry["method"] and later["path"] == entry["path"]:
                gaps.append(Gap(entry["method"], entry["path"], int(entry["status"]), later["time"] - entry["time"]))
                break
    return gaps


# -- a loopback TLS host (the local host's app behind uvicorn with a certificate) ---------------------


@dataclass(frozen=True)
class TlsMaterial:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it (PEM files)."""

    directory: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_tls_material(directory: Path | None = None) -> TlsMaterial:
    """Generate a CA and a loopback server certificate with the ``cryptography`` package when it is
    installed, else with the ``openssl`` command line."""
    where = Path(directory or tempfile.mkdtemp(prefix="openwop-rel-tls-"))
    where.mkdir(parents=True, exist_ok=True)
    material = TlsMaterial(where, where / "ca.pem", where / "server.pem", where / "server.key")
    try:
        _with_cryptography(material)
    except ImportError:
        _with_openssl(material)
    return material


def _with_cryptography(material: TlsMaterial) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openwop reliability test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digital_signature, key_cert_sign, crl_sign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    material.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    material.server_key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _with_openssl(material: TlsMaterial) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("TLS tests need the 'cryptography' package or the 'openssl' command to make certificates")
    d = material.directory
    ext = d / "server.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_key, csr = str(d / "ca.key"), str(d / "server.csr")
    steps = [
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", str(material.ca_cert), "-days", "2",
         "-subj", "/CN=openwop reliability test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec, "-keyout", str(material.server_key), "-out", csr, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", str(material.ca_cert), "-CAkey", ca_key, "-CAcreateserial",
         "-out", str(material.server_cert), "-days", "2", "-extfile", str(ext)],
    ]  # fmt: skip
    for command in steps:
        subprocess.run(command, check=True, capture_output=True, timeout=60)


class TlsHost:
    """The local OpenWOP host's app (``create_app``) served over HTTPS on 127.0.0.1 by a uvicorn thread."""

    def __init__(self, material: TlsMaterial, api_key: str = API_KEY) -> None:
        import uvicorn

        self.api_key = api_key
        self.material = material
        self.app = create_app(api_key, allow_insecure_webhooks=True)
        self._socket = bind_socket("127.0.0.1", 0)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(material.server_cert),
            ssl_keyfile=str(material.server_key),
            log_config=None,
            log_level="critical",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            http="h11",
            ws="none",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="openwop-rel-tls-host", daemon=True
        )

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> TlsHost:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the TLS test host did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()


# -- secrets --------------------------------------------------------------------------------------


@dataclass
class SecretSearch:
    """Collects named texts (logs, XComs, reprs...) and reports every one that contains a secret."""

    secrets: Mapping[str, str]
    surfaces: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, text: Any) -> None:
        """Add (or extend) the surface ``name``."""
        self.surfaces[name] = self.surfaces.get(name, "") + "\n" + (text if isinstance(text, str) else repr(text))

    def leaks(self) -> list[str]:
        """``"<secret> in <surface>"`` for every occurrence found."""
        return [
            f"{label} in {surface}"
            for surface, text in self.surfaces.items()
            for label, secret in self.secrets.items()
            if secret and secret in text
        ]


def token_secret_part(token: str) -> str:
    """The signature half of a signed interrupt token (the part that makes it a credential)."""
    return token.rsplit(".", 1)[-1]


def stream_connections(host: Any, run_id: str) -> int:
    """How many event-stream and poll requests the host saw for ``run_id``."""
    prefix = f"/v1/runs/{run_id}/events"
    return sum(1 for entry in host.requests if entry["path"].startswith(prefix))


def free_port() -> int:
    """A loopback port nobody listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
