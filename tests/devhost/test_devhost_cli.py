"""The ``python -m openwop_devhost`` command starts a server and logs where it listens."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_cli_starts_logs_and_serves(tmp_path: Path) -> None:
    (tmp_path / "extra.json").write_text(json.dumps({"id": "cli-extra", "nodes": [{"id": "n", "typeId": "core.noop"}]}))
    key = "cli-secret-key-DO-NOT-LOG"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openwop_devhost",
            "--port",
            "0",
            "--api-key",
            key,
            "--workflows",
            str(tmp_path),
            "--keepalive",
            "5",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 20
        url = None
        while url is None:
            assert time.monotonic() < deadline, lines
            line = process.stderr.readline()
            assert line, f"devhost exited early: {lines}"
            lines.append(line)
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
        assert "API key: set, from --api-key" in lines[-1]
        discovery = httpx.get(f"{url}/.well-known/openwop", timeout=10)
        assert discovery.status_code == 200 and discovery.json()["protocolVersion"] == "1.0"
        run = httpx.post(f"{url}/v1/runs", json={"workflowId": "cli-extra"}, headers={"Authorization": f"Bearer {key}"})
        assert run.status_code == 201
        lines.append(process.stderr.readline())
        assert "cli-extra" in "".join(lines)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, rest = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, rest = process.communicate()
        lines.append(rest or "")
    assert key not in "".join(lines)
    assert process.returncode == 0


def test_cli_reports_bad_workflows(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    result = subprocess.run(
        [sys.executable, "-m", "openwop_devhost", "--port", "0", "--workflows", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "bad.json" in result.stderr and "invalid JSON" in result.stderr
