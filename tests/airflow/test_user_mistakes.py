"""What Airflow users hit in their first hour (issue 12): the URL shapes they type, a host without a scheme,
a token rendered from None, a question parked under ``dags test``, the connections list's Test button, and
failure messages that read the same in every mode."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pendulum
import pytest
from airflow.sdk import DAG, Connection
from airflow_support import API_KEY, AirflowUser, run_dag, run_operator_dag, unique_dag_id

from openwop_airflow.exceptions import OpenwopConnectionException
from openwop_airflow.get_provider_info import UI_FIELD_BEHAVIOUR, form_field_behaviour
from openwop_airflow.hooks.connection import settings_from_connection
from openwop_airflow.operators.fork import OpenwopForkRunOperator
from openwop_airflow.operators.interrupts import OpenwopResolveInterruptOperator
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_devhost import DevHost

START = pendulum.datetime(2024, 1, 1, tz="UTC")


def settings(**fields):
    extra = fields.pop("extra", None)
    conn = Connection(conn_id="my_conn", conn_type="openwop", extra=json.dumps(extra) if extra else None, **fields)
    return settings_from_connection(conn, json.loads(conn.extra) if conn.extra else {})


# -- item 9: a base URL ending in /v1, or with a path prefix -------------------------------------------


@pytest.mark.parametrize(
    ("host", "link"),
    [
        ("https://h.example/v1", "https://h.example/v1/runs/r1"),
        ("https://h.example/v1/", "https://h.example/v1/runs/r1"),
        ("https://h.example/openwop", "https://h.example/openwop/v1/runs/r1"),
        ("https://h.example/openwop/v1/", "https://h.example/openwop/v1/runs/r1"),
    ],
)
def test_the_run_link_is_built_from_the_base_url_the_client_uses(host, link):
    assert settings(host=host).run_url("r1") == link


def test_a_host_ending_in_v1_gives_a_run_url_xcom_and_extra_link_that_open_the_run(devhost, capfd, monkeypatch):
    """The run succeeds and its ``run_url`` XCom and "OpenWOP run" link point at ``/v1/runs/<id>``, not
    ``/v1/v1/runs/<id>`` (which the host answers 404)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENWOP_DEFAULT",
        json.dumps({"conn_type": "openwop", "host": devhost.base_url + "/v1/", "password": API_KEY}),
    )
    result = run_dag(run_operator_dag("v1_host", workflow_id="conformance-noop"), capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    expected = f"{devhost.base_url}/v1/runs/{run_id}"
    assert result.xcom("run", "run_url") == expected
    assert result.xcom("run", "_link_OpenwopRunLink") == expected
    assert httpx.get(expected, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200


# -- item 10: a host without a scheme on a plain-http host ----------------------------------------------


def test_a_scheme_less_host_on_a_plain_http_host_fails_at_once_naming_the_fix(devhost, capfd, monkeypatch):
    """``"host": "127.0.0.1", "port": N`` means https (as documented); the plain-http host answering the TLS
    handshake fails the task on the first attempt with the URL to use, not after five network retries."""
    port = devhost.base_url.rsplit(":", 1)[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENWOP_DEFAULT",
        json.dumps({"conn_type": "openwop", "host": "127.0.0.1", "port": int(port), "password": API_KEY}),
    )
    result = run_dag(run_operator_dag("no_scheme", workflow_id="conformance-noop", retries=0), capfd)

    assert result.state == "failed"
    assert f"the host has no scheme, so https://127.0.0.1:{port} is used" in result.output
    assert f"https://127.0.0.1:{port} answered the TLS handshake in plain HTTP (POST /v1/runs)" in result.output
    assert f"Use http://127.0.0.1:{port} as the base URL" in result.output
    assert "retrying in" not in result.output
    assert devhost.run_ids() == []


@pytest.mark.parametrize("form", ["schema-as-path", "host-with-scheme"])
def test_the_uri_forms_the_docs_show_reach_a_plain_http_host(devhost, capfd, monkeypatch, form):
    port = devhost.base_url.rsplit(":", 1)[1]
    uri = {
        "schema-as-path": f"openwop://:{API_KEY}@127.0.0.1:{port}/http",
        "host-with-scheme": f"openwop://http://:{API_KEY}@127.0.0.1:{port}",
    }[form]
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", uri)
    result = run_dag(run_operator_dag("uri_form", workflow_id="conformance-noop"), capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    assert result.xcom("run", "run_url") == f"http://127.0.0.1:{port}/v1/runs/{run_id}"


# -- item 14: a token rendered from None ----------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "  ", "None", "null"])
def test_resolve_refuses_an_empty_token_when_the_dag_is_parsed(token):
    with pytest.raises(ValueError, match=r"token is empty .*approvals and clarifications never do"):
        OpenwopResolveInterruptOperator(task_id="answer", token=token, resume_value={"action": "accept"})


def test_resolve_refuses_a_token_a_template_rendered_from_none_before_any_request(devhost, capfd):
    """An approval's ``interrupt`` XCom has token None; ``xcom_pull(...)['token']`` renders it as "None".
    The task fails saying so and what to use instead, and sends nothing to the host."""
    with DAG(unique_dag_id("none_token"), schedule=None, start_date=START, catchup=False) as dag:
        start = OpenwopRunOperator(task_id="start", workflow_id="conformance-approval", on_interrupt="return")
        answer = OpenwopResolveInterruptOperator(
            task_id="answer",
            token="{{ ti.xcom_pull(task_ids='start', key='interrupt')['token'] }}",
            resume_value={"action": "accept"},
            retries=3,
        )
        start >> answer
    result = run_dag(dag, capfd)

    assert result.ti_state("start") == "success"
    assert result.xcom("start", "interrupt")["token"] is None
    assert result.ti_state("answer") == "failed"
    assert result.try_number("answer") == 1  # not retried: a retry renders the same token
    assert "token is empty (got 'None'): the interrupt has no signed token" in result.output
    assert not [r for r in devhost.requests if "/interrupts" in r["path"]]


# -- item 13: a question parked under dags test ---------------------------------------------------------


@pytest.mark.airflow33
def test_a_question_parked_under_dag_test_ends_at_its_response_timeout(devhost, capfd):
    """``dag.test()`` (``airflow dags test``) runs no scheduler, which is what ends a parked question at its
    ``response_timeout``; the task enforces it itself there: the task fails and the run is cancelled."""
    dag = run_operator_dag(
        "parked_timeout", workflow_id="conformance-approval", on_interrupt="ask_in_airflow", response_timeout=3
    )
    result = run_dag(dag, capfd)

    assert result.state == "failed"
    (run_id,) = devhost.run_ids()
    assert "airflow dags test runs no scheduler" in result.output
    assert "OpenwopHumanInputTimeoutException: Nobody answered the question" in result.output
    assert devhost.get_run(run_id)["status"] in ("cancelled", "cancelling")


PARKED_DAG = """
import pendulum
from airflow.sdk import DAG
from openwop_airflow.operators.run import OpenwopRunOperator

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    OpenwopRunOperator(task_id="review", workflow_id="conformance-approval", on_interrupt="ask_in_airflow")
"""


@pytest.mark.airflow33
def test_sigterm_ends_airflow_dags_test_while_a_question_is_parked(devhost, tmp_path):
    """``airflow dags test`` with a parked question and no limit: Airflow's SIGTERM handler there only calls
    ``on_kill``, which cancels the run and ends the test (before, the test went on waiting)."""
    dag_id = unique_dag_id("parked_sigterm")
    dag_file = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    dag_file.write_text(PARKED_DAG.format(dag_id=dag_id))
    output = tmp_path / "dags-test.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "Waiting for Human-in-the-loop input" not in output.read_text(errors="replace"):
            assert process.poll() is None, output.read_text(errors="replace")[-5000:]
            assert time.monotonic() < deadline, output.read_text(errors="replace")[-5000:]
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the whole group, children included
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        dag_file.unlink()
    text = output.read_text(errors="replace")
    assert returncode != 0
    assert "airflow dags test runs no scheduler" in text
    assert "Nothing else ends the wait: neither response_timeout nor timeout is set." in text
    assert "airflow dags test stopped by SIGTERM while the task waited for an answer in Airflow." in text
    (run_id,) = devhost.run_ids()
    assert devhost.get_run(run_id)["status"] in ("cancelled", "cancelling")


# -- item 16: smaller things ----------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["inline", "deferred"])
def test_a_failed_run_names_its_failed_node_in_every_mode(devhost, capfd, deferrable):
    result = run_dag(run_operator_dag("failed_node", workflow_id="conformance-failure", deferrable=deferrable), capfd)

    assert result.state == "failed"
    assert "Intentional conformance failure (node fail)" in result.output


def test_a_branch_fork_without_from_seq_fails_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="mode='branch' needs from_seq"):
        OpenwopForkRunOperator(task_id="fork", source_run_id="run_1", mode="branch")
    OpenwopForkRunOperator(task_id="fork", source_run_id="run_1", mode="branch", from_seq="{{ params.seq }}")
    OpenwopForkRunOperator(task_id="fork", source_run_id="run_1", mode="replay")


def test_a_missing_ca_file_given_in_verify_names_verify():
    with pytest.raises(OpenwopConnectionException, match=r"extra \"verify\": no CA bundle at '/nope\.pem'"):
        settings(host="https://h", extra={"verify": "/nope.pem"})


# -- item 17: the connections list's Test button --------------------------------------------------------


def test_the_form_asks_for_the_port_in_its_own_field():
    assert "port" not in UI_FIELD_BEHAVIOUR["hidden-fields"]
    assert "Test needs it" in UI_FIELD_BEHAVIOUR["relabeling"]["port"]
    assert "without the port" in UI_FIELD_BEHAVIOUR["relabeling"]["host"]
    assert form_field_behaviour()["relabeling"] == UI_FIELD_BEHAVIOUR["relabeling"]


def test_a_port_in_the_base_url_that_disagrees_with_the_port_field_is_refused():
    assert settings(host="http://127.0.0.1:3737", port=3737).base_url == "http://127.0.0.1:3737"
    with pytest.raises(OpenwopConnectionException, match="says port 3737 but the port field says 3738"):
        settings(host="http://127.0.0.1:3737", port=3738)


def test_a_schema_that_contradicts_the_hosts_scheme_is_refused():
    """``openwop://http://:KEY@host:1/openwop`` puts ``openwop`` in the schema; ignoring it lost the prefix."""
    assert settings(host="http://h.example", schema="http").base_url == "http://h.example"
    with pytest.raises(OpenwopConnectionException, match="schema 'openwop' contradicts the scheme written in the host"):
        settings(host="http://h.example", schema="openwop")


def _test_from_the_list(user: AirflowUser, conn_id: str) -> httpx.Response:
    """Press Test in Admin -> Connections: the UI posts the stored row, the empty port as ``Number(null)``."""
    rows = user.api.get("/api/v2/connections", params={"limit": 1000}, headers=user.headers).json()["connections"]
    row = next(r for r in rows if r["connection_id"] == conn_id)
    body = {
        "conn_type": row["conn_type"],
        "connection_id": conn_id,
        "description": row["description"] or "",
        "extra": row["extra"] or "{}",
        "host": row["host"] or "",
        "login": row["login"] or "",
        "password": row["password"] or "",
        "port": row["port"] if row["port"] is not None else 0,
        "schema": row["schema"] or "",
    }
    return user.api.post("/api/v2/connections/test", json=body, headers=user.headers)


def test_a_connection_filled_in_as_the_docs_say_passes_test_in_the_connections_list():
    """Base URL ``http://127.0.0.1``, Port ``<port>``, the API key: saved through the REST API as the form
    does, then tested as the list's Test button does."""
    user = AirflowUser("ada")
    with DevHost(api_key=API_KEY) as host:
        port = int(host.base_url.rsplit(":", 1)[1])
        conn_id = unique_dag_id("openwop_form")
        created = user.api.post(
            "/api/v2/connections",
            json={
                "conn_type": "openwop",
                "connection_id": conn_id,
                "host": "http://127.0.0.1",
                "port": port,
                "password": API_KEY,
            },
            headers=user.headers,
        )
        assert created.status_code == 201, created.text
        try:
            tested = _test_from_the_list(user, conn_id)
        finally:
            user.api.delete(f"/api/v2/connections/{conn_id}", headers=user.headers)
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] is True, tested.text
    assert tested.json()["message"].startswith(f"Connected to http://127.0.0.1:{port}: OpenWOP protocol")
    assert "API key accepted" in tested.json()["message"]


@pytest.mark.airflow33
def test_with_the_port_left_empty_airflow_33_refuses_the_list_test():
    """Why the form asks for the port: Airflow 3.3 sends an empty port as 0 and refuses the test."""
    user = AirflowUser("ada")
    conn_id = unique_dag_id("openwop_no_port")
    user.api.post(
        "/api/v2/connections",
        json={"conn_type": "openwop", "connection_id": conn_id, "host": "http://127.0.0.1:1", "password": API_KEY},
        headers=user.headers,
    )
    try:
        tested = _test_from_the_list(user, conn_id)
    finally:
        user.api.delete(f"/api/v2/connections/{conn_id}", headers=user.headers)
    assert tested.status_code == 400
    assert "differs from the stored connection" in tested.text
