"""Shared by every benchmark: its command line, the machine description, medians and percentiles, Markdown
tables, printing the results and writing them as a section of ``docs/benchmarks.md``, and starting the local
OpenWOP host in a process of its own (so that what the benchmark process measures is the client alone, never
the host)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
API_KEY = "bench-key-0123456789"


# -- the machine ----------------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def load_average() -> str:
    """The 1/5/15-minute load averages (how busy the machine was: the figures are noisier when high)."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_wait_seconds(pid: int | None = None) -> float:
    """Seconds the threads of process ``pid`` (default: this one) spent runnable but waiting for a CPU
    (Linux ``/proc/<pid>/task/*/schedstat``, second field): how much other load on the machine delayed it.
    Threads that have already ended are not counted. NaN where the kernel does not report it."""
    total = 0
    tasks = Path(f"/proc/{pid or os.getpid()}/task")
    try:
        for task in tasks.iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[1])
    except OSError:
        return float("nan")
    return total / 1e9


def version_of(package: str) -> str:
    """Installed version of ``package`` ("-" when absent)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine_line() -> str:
    """One Markdown line: date, CPU, cores, RAM, OS, Python and the load when the benchmark started."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"_Measured {now} on {_cpu_model()}, {os.cpu_count()} cores, {_ram_gib():.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()} "
        f"(httpx {version_of('httpx')}, httpx-sse {version_of('httpx-sse')}, pydantic {version_of('pydantic')}, "
        f"uvicorn {version_of('uvicorn')}); load average at start {load_average()}._"
    )


# -- statistics and tables ------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable as plain text)."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def goal(text: str, met: bool) -> str:
    """A goal line: met or missed."""
    return f"- {'**met**' if met else '**MISSED**'}: {text}"


def fmt_int(value: float) -> str:
    """``123,456`` (or ``n/a``)."""
    return "n/a" if value != value else f"{value:,.0f}"


# -- the command line and the results --------------------------------------------------------------------


def options(description: str, **counts: int) -> argparse.ArgumentParser:
    """A benchmark's command line: an integer ``--NAME`` for each of ``counts`` (``poll_runs=50`` gives
    ``--poll-runs``, default 50) and ``--no-write``; the benchmark may add more before parsing."""
    parser = argparse.ArgumentParser(description=description)
    for name, default in counts.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    return parser


def publish(name: str, heading: str, machine: str, blocks: Sequence[str], shown: Sequence[str], *, write: bool) -> None:
    """Print the ``shown`` blocks (tables, goals) and, when ``write``, make ``heading``, the ``machine`` line and
    ``blocks`` the section ``name`` of docs/benchmarks.md."""
    print("\n" + "\n\n".join(shown))
    if write:
        write_section(name, "\n\n".join([heading, machine, *blocks]))


# -- docs/benchmarks.md ---------------------------------------------------------------------------------


def write_section(name: str, body: str) -> None:
    """Replace the ``<!-- bench:name -->`` ... ``<!-- /bench:name -->`` block of docs/benchmarks.md with
    ``body`` (appended at the end when the document has no such block yet)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    found = pattern.search(text)
    text = pattern.sub(lambda _: block, text) if found else text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)
    print(f"(written to {DOC.relative_to(ROOT)}, section {name})")


# -- processes ------------------------------------------------------------------------------------------


class HostProcess:
    """A server running in a child process of its own; ``lines`` collects what it prints on stdout after
    its first line (``on_line`` sees each as it arrives)."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str) -> None:
        self.proc = proc
        self.base_url = base_url
        self.pid = proc.pid


def _pump(stream: Any, on_line: Callable[[str], None] | None) -> None:
    for line in stream:
        if on_line is not None:
            on_line(line.rstrip("\n"))


@contextlib.contextmanager
def child_server(
    args: Sequence[str], *, url_pattern: str, from_stderr: bool, on_line: Callable[[str], None] | None = None
) -> Iterator[HostProcess]:
    """Start ``python args...``, wait for the line announcing its URL, yield it; stop it (by its pid) after."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    announce = proc.stderr if from_stderr else proc.stdout
    other = proc.stdout if from_stderr else proc.stderr
    assert announce is not None
    assert other is not None
    base_url = None
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while base_url is None and time.monotonic() < deadline:
        line = announce.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(url_pattern, line)
        if found:
            base_url = found.group(1)
    if base_url is None:
        proc.kill()
        raise RuntimeError(f"{' '.join(args)} did not start: {''.join(seen)}{other.read()}")
    threads = [
        threading.Thread(target=_pump, args=(announce, on_line if not from_stderr else None), daemon=True),
        threading.Thread(target=_pump, args=(other, on_line if from_stderr else None), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield HostProcess(proc, base_url)
    finally:
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def devhost_process(keepalive: float = 15.0) -> Iterator[HostProcess]:
    """``python -m openwop_devhost --port 0 --api-key K --keepalive N`` in a child process."""
    args = ["-m", "openwop_devhost", "--port", "0", "--api-key", API_KEY, "--keepalive", str(keepalive)]
    with child_server(
        [*args, "--log-level", "info"], url_pattern=r"listening on (http://\S+)", from_stderr=True
    ) as host:
        wait_for_port(host.base_url)
        yield host


def wait_for_port(base_url: str, timeout: float = 30.0) -> None:
    """Block until the server at ``base_url`` accepts TCP connections."""
    host, port = base_url.split("//", 1)[1].rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def interleaved(subjects: Sequence[str], repeats: int) -> list[str]:
    """Round-robin order (a b c a b c ...), so drifts in machine load hit every subject alike."""
    return [name for _ in range(repeats) for name in subjects]


def header(title: str) -> str:
    """Print a benchmark's title and the machine it runs on; return that machine line for its section."""
    machine = machine_line()
    print(f"\n=== {title} ===\n{machine}\n", flush=True)
    return machine


# -- TLS ------------------------------------------------------------------------------------------------


def throwaway_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it, made with ``cryptography`` as the
    reliability suite's TLS host makes them: the paths of the CA's PEM, the certificate's and its key's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def certificate(name: str, key: Any, issuer: x509.Name, signer: Any, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            import ipaddress

            san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openwop bench throwaway CA")])
    ca = certificate("openwop bench throwaway CA", ca_key, ca_name, ca_key, ca=True)
    cert = certificate("127.0.0.1", key, ca_name, ca_key, ca=False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    paths[2].write_bytes(pem)
    return paths


@contextlib.contextmanager
def tls_devhost_process(directory: Path) -> Iterator[tuple[HostProcess, Path]]:
    """The local host over HTTPS (``bench/tlshost.py``) in a child process, with a throwaway CA made in
    ``directory``; yields the host and the CA's PEM (what clients must trust)."""
    ca, cert, key = throwaway_tls(directory)
    args = ["-m", "bench.tlshost", "--api-key", API_KEY, "--cert", str(cert), "--key", str(key)]
    with child_server(args, url_pattern=r"listening on (https://\S+)", from_stderr=False) as host:
        wait_for_port(host.base_url)
        yield host, ca
