"""The ``openwop`` command line against a local host: outputs (text and ``--json``), exit codes, and the key.

Exit codes: 0 ok (a wait that ends completed or on an interrupt), 1 the run failed or was cancelled,
2 a usage error or an error from the host. The API key comes from ``OPENWOP_API_KEY`` and must never
be printed, whatever happens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import API_KEY

from openwop_core import cli
from openwop_devhost import DevHost

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def openwop(host: DevHost, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``openwop(*args) -> (exit code, stdout, stderr)`` with the host and key in the environment."""
    monkeypatch.setenv("OPENWOP_BASE_URL", host.base_url)
    monkeypatch.setenv("OPENWOP_API_KEY", API_KEY)

    def invoke(*args: str) -> tuple[int, str, str]:
        code = cli.run(list(args))
        out, err = capsys.readouterr()
        assert API_KEY not in out + err
        return code, out, err

    return invoke


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def create(openwop: Cli, workflow: str, *extra: str) -> str:
    code, out, _ = openwop("runs", "create", workflow, *extra)
    assert code == 0, out
    return out.split()[0]


# ---------------------------------------------------------------------------------------------- create, get, watch


def test_create_prints_run_id_and_status(openwop: Cli, host: DevHost) -> None:
    code, out, err = openwop("runs", "create", "conformance-identity", "--inputs", '{"payload": {"n": 1}}')
    assert code == 0
    assert err == ""
    assert re.fullmatch(r"run_\w+ (running|completed)\n", out)
    run_id = out.split()[0]
    assert host.wait_for_status(run_id)["status"] == "completed"


def test_create_wait_follows_the_run_and_prints_outputs(openwop: Cli) -> None:
    code, out, _ = openwop("runs", "create", "conformance-identity", "--inputs", '{"payload": {"n": 1}}', "--wait")
    assert code == 0
    assert "run started (workflow conformance-identity)" in out
    assert "node identity completed" in out
    assert "status: completed" in out
    assert 'outputs: {"payload": {"n": 1}}' in out


def test_create_wait_json_is_one_document_per_line(openwop: Cli) -> None:
    code, out, _ = openwop(
        "--json", "runs", "create", "conformance-identity", "--inputs", '{"payload": {"n": 2}}', "--wait"
    )
    assert code == 0
    docs = json_lines(out)
    assert docs[0]["runId"].startswith("run_")
    assert [d["type"] for d in docs[1:-1]][-1] == "run.completed"
    assert docs[-1] == {
        "runId": docs[0]["runId"],
        "status": "completed",
        "outcome": "completed",
        "outputs": {"payload": {"n": 2}},
        "error": None,
        "interrupt": None,
    }


def test_failed_run_exits_1_with_the_remote_error(openwop: Cli) -> None:
    code, out, _ = openwop("runs", "create", "conformance-failure", "--wait")
    assert code == 1
    assert "status: failed" in out
    assert "error: conformance_test_failure: Intentional conformance failure" in out
    code, out, _ = openwop("runs", "watch", out.split()[0], "--json")
    assert code == 1
    assert json_lines(out)[-1]["error"]["code"] == "conformance_test_failure"


def test_get_text_and_json(openwop: Cli, host: DevHost) -> None:
    run_id = create(openwop, "conformance-identity", "--inputs", '{"payload": {"k": "v"}}')
    host.wait_for_status(run_id)
    code, out, _ = openwop("runs", "get", run_id)
    assert code == 0
    assert out.splitlines() == [
        f"{run_id} completed (workflow conformance-identity)",
        'outputs: {"payload": {"k": "v"}}',
    ]
    for args in (("--json", "runs", "get", run_id), ("runs", "get", run_id, "--json")):  # options on either side
        code, out, _ = openwop(*args)
        assert code == 0
        snapshot = json.loads(out)
        assert snapshot["runId"] == run_id
        assert snapshot["status"] == "completed"


# ---------------------------------------------------------------------------------------------- interrupts


def test_watch_stops_on_an_interrupt_and_resolve_by_run_and_node(openwop: Cli, host: DevHost) -> None:
    run_id = create(openwop, "conformance-approval")
    code, out, _ = openwop("runs", "watch", run_id)
    assert code == 0
    assert "waiting: Conformance approval (node gate, approval)" in out
    assert f"answer with: openwop runs resolve {run_id} gate --value JSON" in out
    assert "status: waiting-approval" in out

    code, out, _ = openwop("runs", "resolve", run_id, "gate", "--value", '{"action": "accept"}')
    assert code == 0
    assert out.startswith("resolved: run status ")
    code, out, _ = openwop("runs", "watch", run_id)
    assert code == 0
    assert "status: completed" in out


def test_watch_json_reports_the_interrupt(openwop: Cli) -> None:
    run_id = create(openwop, "conformance-approval")
    code, out, _ = openwop("--json", "runs", "watch", run_id)
    assert code == 0
    last = json_lines(out)[-1]
    assert last["outcome"] == "interrupted"
    assert last["interrupt"]["nodeId"] == "gate"
    assert last["interrupt"]["kind"] == "approval"


def test_resolve_by_token_then_a_rejected_run_exits_1(openwop: Cli, host: DevHost) -> None:
    run_id = create(openwop, "conformance-approval")
    host.wait_for_status(run_id, ["waiting-approval"])
    token = host.open_interrupts(run_id)[0]["token"]
    code, out, _ = openwop("--json", "runs", "resolve", "--token", token, "--value", '{"action": "reject"}')
    assert code == 0
    assert isinstance(json.loads(out), dict)
    code, out, _ = openwop("runs", "watch", run_id)
    assert code == 1
    assert "status: failed" in out
    assert "approval_rejected" in out


# ---------------------------------------------------------------------------------------------- cancel, fork


def test_cancel_then_watch_exits_1(openwop: Cli, host: DevHost) -> None:
    run_id = create(openwop, "conformance-cancellable", "--inputs", '{"delayMs": 60000}')
    code, out, _ = openwop("runs", "cancel", run_id, "--reason", "not needed")
    assert code == 0
    assert out.startswith(f"{run_id} cancel")
    host.wait_for_status(run_id)
    code, out, _ = openwop("runs", "watch", run_id)
    assert code == 1
    assert "status: cancelled" in out


def test_fork_replays_a_run(openwop: Cli, host: DevHost) -> None:
    run_id = create(openwop, "conformance-multi-node")
    host.wait_for_status(run_id)
    code, out, _ = openwop("runs", "fork", run_id, "--mode", "replay")
    assert code == 0
    fork_id, rest = out.split(" ", 1)
    assert fork_id != run_id
    assert rest == f"forked from {run_id}\n"
    code, out, _ = openwop("runs", "fork", run_id, "--mode", "branch", "--from-seq", "2", "--json")
    assert code == 0
    assert json.loads(out)["runId"] not in (run_id, fork_id)


def test_watch_timeout_is_an_error_and_the_run_goes_on(openwop: Cli, host: DevHost) -> None:
    run_id = create(openwop, "conformance-cancellable", "--inputs", '{"delayMs": 60000}')
    code, _, err = openwop("runs", "watch", run_id, "--timeout", "0.5")
    assert code == 2
    assert "Timed out after 0.5s waiting for OpenWOP run" in err
    assert host.get_run(run_id)["status"] == "running"


# ---------------------------------------------------------------------------------------------- errors: exit 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "create", "conformance-identity", "--inputs", "{bad"), "--inputs is not valid JSON"),
        (("runs", "create", "conformance-identity", "--inputs", "[1]"), "inputs must be a JSON object"),
        (("runs", "resolve", "run_x", "gate", "--value", "accept"), "--value is not valid JSON"),
        (("runs", "resolve", "--value", "{}"), "resolve needs RUN_ID NODE_ID, or --token TOKEN"),
        (("runs", "fork", "run_x"), "the following arguments are required: --mode"),
        (("runs", "launch", "x"), "invalid choice: 'launch'"),
        (("runs",), "the following arguments are required: command"),
    ],
)
def test_usage_errors_exit_2(openwop: Cli, host: DevHost, args: tuple[str, ...], message: str) -> None:
    code, out, err = openwop(*args)
    assert code == 2
    assert out == ""
    assert message in err
    assert host.runs_created() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "get", "run_nope"), "HTTP 404 run_not_found"),
        (("runs", "create", "no-such-workflow"), "HTTP 404 workflow_not_found"),
        (("runs", "resolve", "--token", "not-a-token", "--value", "{}"), "interrupt_token_invalid"),
    ],
)
def test_api_errors_exit_2_with_the_hosts_message(openwop: Cli, args: tuple[str, ...], message: str) -> None:
    code, out, err = openwop(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("openwop: ")
    assert message in err


def test_rejected_key_exits_2_and_is_not_printed(
    openwop: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "sk-WRONG-key-that-must-not-leak-1234"
    monkeypatch.setenv("OPENWOP_API_KEY", wrong)
    code = cli.run(["runs", "get", "run_x"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "HTTP 401" in err
    assert "Check the API key" in err
    assert wrong not in out + err


def test_base_url_is_required(openwop: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENWOP_BASE_URL")
    code, _, err = openwop("runs", "get", "run_x")
    assert code == 2
    assert err == "openwop: set --base-url or OPENWOP_BASE_URL to the host's URL.\n"


def test_base_url_flag_on_either_side(openwop: Cli, host: DevHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWOP_BASE_URL", "http://127.0.0.1:9")  # wrong: the flag must win
    run_id = create(openwop, "conformance-noop", "--base-url", host.base_url)
    code, out, _ = openwop("--base-url", host.base_url, "runs", "get", run_id)
    assert code == 0
    assert out.startswith(run_id)


def test_help_exits_0(openwop: Cli) -> None:
    code, out, _ = openwop("runs", "create", "--help")
    assert code == 0
    assert "--inputs" in out


def test_main_exits_with_the_code(
    openwop: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["openwop", "runs", "create", "conformance-failure", "--wait"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    assert API_KEY not in "".join(capsys.readouterr())
