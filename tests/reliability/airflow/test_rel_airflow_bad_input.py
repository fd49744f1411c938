"""Bad input to the Airflow provider, table-driven: connections (missing, malformed, wrong key...), operator
arguments, interrupts answered twice, after expiry or with a bad token, and a malformed trigger event.
Each row names the exception, words naming the cause and words naming the fix; no message may show the
API key or an interrupt token. Operators run their ``execute`` directly with a minimal task-instance stand-in
(the same failures through full ``dag.test()`` runs are in ``tests/airflow/test_bad_input.py``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException
from airflow_support import API_KEY, connection_json
from reliability_support import WORKFLOWS_DIR, free_port, token_secret_part

from openwop_airflow.exceptions import OpenwopConnectionException, OpenwopTriggerEventException
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.operators.fork import OpenwopForkRunOperator
from openwop_airflow.operators.interrupts import OpenwopResolveInterruptOperator
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_core import OpenwopClient, resume
from openwop_devhost import DevHost, FailRule


class StubTI:
    """What the operators use of a task instance: identity (for idempotency keys), try number, XCom push."""

    def __init__(self, task_id: str) -> None:
        self.dag_id = "rel_bad_input"
        self.task_id = task_id
        self.run_id = "manual__rel_bad_input"
        self.map_index = -1
        self.try_number = 1
        self.start_date = None
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


_TRY = itertools.count()


def execute(operator: Any) -> Any:
    """Run ``operator.execute`` as a task instance of its own (its own idempotency key)."""
    return operator.execute({"ti": StubTI(f"{operator.task_id}_{next(_TRY)}")})


class Scene:
    """The hosts, their connections (``AIRFLOW_CONN_*``) and the runs and tokens rows need."""

    def __init__(self, host: DevHost, short_lived: DevHost, patch: pytest.MonkeyPatch) -> None:
        self.host = host
        self.short_lived = short_lived
        self.tokens: list[str] = []
        port = free_port()
        connections: dict[str, Any] = {
            "openwop_default": connection_json(host, max_attempts=1),
            "rel_short": connection_json(short_lived, max_attempts=1),
            "rel_no_host": {"conn_type": "openwop", "password": API_KEY},
            "rel_ftp_schema": {"conn_type": "openwop", "host": "openwop.example.com", "schema": "ftp"},
            "rel_ftp_host": {"conn_type": "openwop", "host": "ftp://openwop.example.com", "password": API_KEY},
            "rel_no_hostname": {"conn_type": "openwop", "host": "http://", "password": API_KEY},
            "rel_bearer": connection_json(host, api_key="Bearer " + API_KEY),
            "rel_no_key": connection_json(host, api_key=None, max_attempts=1),
            "rel_wrong_key": connection_json(host, api_key="wrong-key-2", max_attempts=1),
            "rel_unreachable": {
                "conn_type": "openwop",
                "host": f"http://127.0.0.1:{port}",
                "password": API_KEY,
                "extra": {"max_attempts": 1},
            },
            "rel_timeout": connection_json(host, timeout="soon"),
            "rel_timeout_zero": connection_json(host, timeout=0),
            "rel_no_bundle": connection_json(host, ca_bundle="/nonexistent/ca.pem"),
            "rel_attempts": connection_json(host, max_attempts=101),
            "rel_auth_header": connection_json(host, headers={"Authorization": "Bearer x"}),
            "rel_verify_both": connection_json(host, verify=False, ca_bundle=__file__),
            "rel_retry": connection_json(host, retry={"max_attempts": 0}),
            "rel_ui": connection_json(host, ui_base_url="runs-page"),
        }
        for conn_id, value in connections.items():
            text = value if isinstance(value, str) else json.dumps(value)
            patch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", text)

    def client(self, host: DevHost | None = None) -> OpenwopClient:
        return OpenwopClient((host or self.host).base_url, api_key=API_KEY)

    def waiting_run(self, host: DevHost | None = None) -> str:
        host = host or self.host
        with self.client(host) as client:
            run_id = client.runs_create("conformance-approval").run_id
        host.wait_for_status(run_id, {"waiting-approval"})
        return run_id

    def token(self, host: DevHost | None = None) -> str:
        host = host or self.host
        token = str(host.open_interrupts(self.waiting_run(host))[0]["token"])
        self.tokens.append(token)
        return token

    def finished_run(self) -> str:
        with self.client() as client:
            run_id = client.runs_create("conformance-multi-node").run_id
        self.host.wait_for_status(run_id)
        return run_id

    def resolve(self, **kwargs: Any) -> Any:
        return execute(OpenwopResolveInterruptOperator(task_id="answer", **kwargs))

    def resolve_twice(self) -> Any:
        run_id = self.waiting_run()
        with self.client() as client:
            client.interrupts_resolve_by_run(run_id, "gate", resume.approval("accept"))
        return self.resolve(run_id=run_id, node_id="gate", resume_value={"action": "accept"})

    def forged_token(self) -> Any:
        payload, signature = self.token().rsplit(".", 1)
        forged = payload + "." + signature[::-1]
        self.tokens.append(forged)
        return self.resolve(token=forged, resume_value={"action": "accept"})

    def expired_token(self) -> Any:
        token = self.token(self.short_lived)
        time.sleep(1.2)
        return self.resolve(token=token, resume_value={"action": "accept"}, openwop_conn_id="rel_short")

    def proxy_page(self) -> Any:
        self.host.set_faults(fail_requests=[FailRule(route="POST /v1/runs", status=502, body="html")])
        try:
            return execute(OpenwopRunOperator(task_id="html", workflow_id="conformance-noop"))
        finally:
            self.host.set_faults(fail_requests=[])


@dataclass(frozen=True)
class Row:
    name: str
    act: Callable[[Scene], Any]
    error: type[BaseException]
    cause: tuple[str, ...]
    fix: tuple[str, ...]


def hook(conn_id: str) -> Callable[[Scene], Any]:
    return lambda scene: OpenwopHook(conn_id).get_conn()


def run_op(**kwargs: Any) -> Callable[[Scene], Any]:
    return lambda scene: execute(OpenwopRunOperator(task_id="run", **kwargs))


def fork_op(**kwargs: Any) -> Callable[[Scene], Any]:
    return lambda scene: execute(OpenwopForkRunOperator(task_id="fork", source_run_id=scene.finished_run(), **kwargs))


# fmt: off
ROWS = [
    # -- the connection ---------------------------------------------------------------------------
    Row("connection not defined", hook("rel_nowhere"), OpenwopConnectionException,
        ("'rel_nowhere' is not defined",), ("create it in the UI (type OpenWOP)", "AIRFLOW_CONN_REL_NOWHERE")),
    Row("connection without a host", hook("rel_no_host"), OpenwopConnectionException,
        ("has no host",), ("set host to the OpenWOP base URL",)),
    Row("connection schema that is not a URL scheme", hook("rel_ftp_schema"), OpenwopConnectionException,
        ("schema 'ftp' is not a URL scheme",), ("leave it empty (https) or set http or https",)),
    Row("connection host with a wrong scheme", hook("rel_ftp_host"), OpenwopConnectionException,
        ("'rel_ftp_host' is not usable", "uses 'ftp'"), ("http or https",)),
    Row("connection host that is a malformed URL", hook("rel_no_hostname"), OpenwopConnectionException,
        ("has no host name",), ("write it as 'https://openwop.example.com'",)),
    Row("connection key with a 'Bearer ' prefix", hook("rel_bearer"), OpenwopConnectionException,
        ("starts with 'Bearer '",), ("pass the key alone",)),
    Row("connection timeout that is not a number", hook("rel_timeout"), OpenwopConnectionException,
        ('extra "timeout"', "'soon'"), ("positive number of seconds",)),
    Row("connection headers setting Authorization", hook("rel_auth_header"), OpenwopConnectionException,
        ("must not set Authorization",), ("put the API key in the password field",)),
    Row("connection timeout of zero (the form allowed it)", hook("rel_timeout_zero"), OpenwopConnectionException,
        ('extra "timeout"', "got 0"), ("positive number of seconds",)),
    Row("connection with verify off and a CA bundle", hook("rel_verify_both"), OpenwopConnectionException,
        ('extra "verify" is off but extra "ca_bundle" is set', "contradict each other"),
        ("keep one", 'turn extra "verify" on', 'clear extra "ca_bundle"')),
    Row("connection CA bundle that does not exist", hook("rel_no_bundle"), OpenwopConnectionException,
        ('extra "ca_bundle"', "no CA bundle at '/nonexistent/ca.pem'"), ("pass an existing PEM file",)),
    Row("connection retry policy out of range", hook("rel_retry"), OpenwopConnectionException,
        ("retry settings are invalid", "max_attempts"), ("greater than or equal to 1",)),
    Row("connection retry attempts above the bound", hook("rel_attempts"), OpenwopConnectionException,
        ("retry settings are invalid", "max_attempts"), ("less than or equal to 100",)),
    Row("connection UI link that is not a URL", hook("rel_ui"), OpenwopConnectionException,
        ('extra "ui_base_url"', "'runs-page'"), ("such as https://openwop.example.com/ui",)),
    Row("connection without a key", run_op(workflow_id="conformance-noop", openwop_conn_id="rel_no_key"),
        AirflowException, ("HTTP 401", "Missing credentials"), ("Check the API key",)),
    Row("connection with a wrong key", run_op(workflow_id="conformance-noop", openwop_conn_id="rel_wrong_key"),
        AirflowException, ("Could not start OpenWOP workflow 'conformance-noop'", "HTTP 401"), ("Check the API key",)),
    Row("connection to a host that is down", run_op(workflow_id="conformance-noop", openwop_conn_id="rel_unreachable"),
        AirflowException, ("Could not connect to http://127.0.0.1:",), ("Check that the base URL is right",)),
    # -- operator arguments ------------------------------------------------------------------------
    Row("unknown workflow", run_op(workflow_id="no-such-workflow"), AirflowException,
        ("workflow_not_found", "no-such-workflow"), ("Check the workflow id",)),
    Row("inputs that are not an object", run_op(workflow_id="conformance-noop", inputs="[1, 2]"), AirflowException,
        ("inputs must be a JSON object",), ("(a dict)",)),
    Row("inputs of the wrong type", run_op(workflow_id="conformance-delay", inputs={"delayMs": "soon"}),
        AirflowException, ("Input 'delayMs'",), ("Fix the request",)),
    Row("oversized inputs", run_op(workflow_id="conformance-identity", inputs={"payload": {"b": "x" * 1_100_000}}),
        AirflowException, ("HTTP 413 payload_too_large",), ("maxRequestBodyBytes",)),
    Row("unknown on_interrupt", run_op(workflow_id="conformance-noop", on_interrupt="later"), ValueError,
        ("on_interrupt", "'later'"), ("one of fail, return, wait",)),
    Row("negative timeout", run_op(workflow_id="conformance-noop", timeout=-5), ValueError,
        ("timeout", "-5"), ("positive number of seconds or a timedelta",)),
    Row("HTML error page from a proxy", Scene.proxy_page, AirflowException,
        ("HTTP 502", "non-JSON (text/html"), ("Quote the trace id",)),
    # -- fork --------------------------------------------------------------------------------------
    Row("fork mode that does not exist", fork_op(mode="copy"), ValueError,
        ("mode", "'copy'"), ("'replay' or 'branch'",)),
    Row("negative fork sequence", fork_op(mode="branch", from_seq=-3), AirflowException,
        ("from_seq", "-3"), ("an integer >= 0",)),
    Row("fork overlay with replay", fork_op(mode="replay", tags=["x"]), AirflowException,
        ("tags can only be changed",), ("mode='branch'",)),
    Row("fork sequence past the end", fork_op(mode="branch", from_seq=999), AirflowException,
        ("from_seq_out_of_range",), ("Fix the request",)),
    # -- interrupts ----------------------------------------------------------------------------------
    Row("answer without a node", lambda s: OpenwopResolveInterruptOperator(task_id="a", run_id="r", resume_value={}),
        ValueError, ("Give either token=",), ("both run_id= and node_id=",)),
    Row("answer the gate refuses",
        lambda s: s.resolve(run_id=s.waiting_run(), node_id="gate", resume_value={"action": "maybe"}),
        AirflowException, ("Approval action 'maybe' is not allowed",), ("use one of ['accept', 'reject']",)),
    Row("interrupt answered twice", Scene.resolve_twice, AirflowException,
        ("interrupt_not_found",), ("resolved already",)),
    Row("bad token", Scene.forged_token, AirflowException,
        ("interrupt_token_invalid",), ("exactly as the host issued it",)),
    Row("token used after it expired", Scene.expired_token, AirflowException,
        ("interrupt_expired",), ("resolve it by run and node with an API key",)),
    # -- what the triggerer hands back -----------------------------------------------------------------
    Row("malformed trigger event",
        lambda s: OpenwopRunOperator(task_id="r", workflow_id="w").execute_complete({"ti": StubTI("r")}, {"status": "ok"}),
        OpenwopTriggerEventException, ("OpenWOP trigger event is invalid", "{'status': 'ok'}"),
        ("one of success, error, interrupted, timeout",)),
]
# fmt: on


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    with (
        DevHost(api_key=API_KEY, workflows_dir=WORKFLOWS_DIR) as host,
        DevHost(api_key=API_KEY, token_ttl_seconds=1.0) as short_lived,
        pytest.MonkeyPatch.context() as patch,
    ):
        yield Scene(host, short_lived, patch)


def test_the_table_has_a_row_per_mistake() -> None:
    assert len(ROWS) >= 30
    assert len({row.name for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_bad_input_fails_naming_the_cause_and_the_fix(scene: Scene, row: Row) -> None:
    with pytest.raises(row.error) as caught:
        row.act(scene)

    text = str(caught.value)
    for words in row.cause:
        assert words in text, f"cause {words!r} not named in: {text}"
    for words in row.fix:
        assert words in text, f"fix {words!r} not named in: {text}"
    assert API_KEY not in text
    assert "wrong-key-2" not in text
    for token in scene.tokens:
        assert token_secret_part(token) not in text, "an interrupt token leaked into the message"
