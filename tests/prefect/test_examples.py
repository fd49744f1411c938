"""Every example under ``example_dags/prefect`` runs against the local host (through its ``main``)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

from prefect.settings import PREFECT_API_URL

from openwop_core import OpenwopClient, resume

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "prefect"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"prefect_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_covered_here():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == ["approval_in_ui", "fork_run", "run_and_wait"]


def test_run_and_wait(credentials, host):
    assert _load("run_and_wait").main(credentials) == {"payload": {"report": "nightly", "rows": 42}}


def test_approval_in_ui(credentials, host, responder):
    person = responder([{"action": "accept", "answered_by": "release-manager"}])

    decision = _load("approval_in_ui").main(credentials)

    person.join()
    assert decision["action"] == "accept"
    assert decision["decidedBy"] == "release-manager"


def test_fork_run(credentials, host):
    result = _load("fork_run").main(credentials)

    assert result["same_outputs"] is True
    assert host.runs_created() == 2


def test_examples_read_credentials_from_the_environment(monkeypatch, host):
    module = _load("run_and_wait")
    monkeypatch.setenv("OPENWOP_BASE_URL", host.base_url)
    monkeypatch.setenv("OPENWOP_API_KEY", host.api_key)
    monkeypatch.delenv("OPENWOP_BLOCK", raising=False)
    assert module.credentials_from_env().base_url == host.base_url
    module.credentials_from_env().save("example-host", overwrite=True)
    monkeypatch.setenv("OPENWOP_BLOCK", "example-host")
    assert module.credentials_from_env().api_key.get_secret_value() == host.api_key


def test_an_example_runs_as_a_script(host):
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "OPENWOP_BASE_URL": host.base_url,
        "OPENWOP_API_KEY": host.api_key,
    }
    env.pop("OPENWOP_BLOCK", None)
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "run_and_wait.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "{'payload': {'report': 'nightly', 'rows': 42}}" in completed.stdout
    assert host.runs_created("conformance-identity") == 1


def test_approval_in_ui_without_a_prefect_server_says_how_to_answer_and_an_answer_on_the_host_ends_it(host, tmp_path):
    """``python approval_in_ui.py`` with no PREFECT_API_URL runs on Prefect's temporary server, which has no
    UI: the flow warns that nobody can press Resume (no link to a UI that does not exist) and names the answer
    that works there, on the OpenWOP host; that answer ends the pause and the flow completes with it."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "240",  # a busy machine; not a timing assertion
        "OPENWOP_BASE_URL": host.base_url,
        "OPENWOP_API_KEY": host.api_key,
    }
    for name in ("PREFECT_API_URL", "PREFECT_UI_URL", "OPENWOP_BLOCK"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "approval_in_ui.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the temporary server is its child: stop the whole group
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # until the warning (the default interrupt_timeout is 3600 s)
            lines.append(line)
            if "nobody can press Resume" in line:
                break
        warning = lines[-1]
        [run_id] = host.run_ids()
        assert f"openwop runs resolve {run_id} gate" in warning
        assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in warning
        with OpenwopClient(host.base_url, api_key=host.api_key) as client:
            client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept", feedback="from the host"))
        output, _ = process.communicate(timeout=400)
        lines.append(output)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    text = "".join(lines)
    assert process.returncode == 0, text[-3000:]
    assert "Pausing until someone answers in the Prefect UI" not in text  # no link to a UI that is not there
    assert host.get_run(run_id)["status"] == "completed"
    assert host.api_key not in text
