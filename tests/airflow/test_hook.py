"""``OpenwopHook``: reading ``openwop`` connections (every field, and errors that name the connection and
the field), ``test_connection`` against a real host, and the key never showing in reprs or messages."""

from __future__ import annotations

import asyncio
import json
import socket

import certifi
import pytest
from airflow.sdk import Connection
from airflow_support import API_KEY, AirflowUser, connection_json

from openwop_airflow.exceptions import OpenwopConnectionException
from openwop_airflow.get_provider_info import CONN_FIELDS
from openwop_airflow.hooks.connection import KNOWN_EXTRAS, settings_from_connection
from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_core import RetryPolicy
from openwop_core.settings import CA_BUNDLE, MAX_ATTEMPTS, STREAM_IDLE_TIMEOUT, TIMEOUT, VERIFY


def settings(**fields):
    extra = fields.pop("extra", None)
    conn = Connection(conn_id="my_conn", conn_type="openwop", extra=json.dumps(extra) if extra else None, **fields)
    return settings_from_connection(conn, json.loads(conn.extra) if conn.extra else {})


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({"host": "https://openwop.example.com"}, "https://openwop.example.com"),
        ({"host": "http://127.0.0.1:3737"}, "http://127.0.0.1:3737"),
        ({"host": "openwop.example.com"}, "https://openwop.example.com"),
        ({"host": "localhost", "schema": "http", "port": 3737}, "http://localhost:3737"),
        ({"host": "https://openwop.example.com/prefix", "port": 8443}, "https://openwop.example.com:8443/prefix"),
    ],
)
def test_base_url_from_host_schema_and_port(fields, base_url):
    assert settings(**fields).base_url == base_url


def test_extras_become_client_settings():
    result = settings(
        host="https://h.example",
        password=API_KEY,
        extra={
            "timeout": "12",
            "connect_timeout": 3,
            "stream_idle_timeout": 45,
            "verify": "false",
            "ui_base_url": "https://ui.example/runs/{run_id}/view",
            "retry": {"max_attempts": 2},
            "max_backoff": 7,
            "headers": {"X-Team": "data"},
        },
    )
    kwargs = result.client_kwargs()
    assert kwargs["timeout"] == 12.0
    assert kwargs["connect_timeout"] == 3.0
    assert kwargs["stream_idle_timeout"] == 45.0
    assert kwargs["verify"] is False
    assert kwargs["retry"] == RetryPolicy(max_attempts=2, max_backoff=7)
    assert kwargs["headers"] == {"X-Team": "data"}
    assert kwargs["api_key"] == API_KEY
    assert result.run_url("run_1") == "https://ui.example/runs/run_1/view"
    assert API_KEY not in repr(result)


def test_ca_bundle_and_prefixed_extras_from_older_forms():
    result = settings(host="https://h.example", extra={"extra__openwop__ca_bundle": certifi.where()})
    assert result.verify == certifi.where()


def test_run_url_defaults_to_the_api_document():
    assert settings(host="https://h.example/").run_url("r/1") == "https://h.example/v1/runs/r%2F1"
    assert settings(host="https://h", extra={"ui_base_url": "https://ui/x/"}).run_url("r1") == "https://ui/x/runs/r1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "'my_conn': has no host"),
        ({"host": "h.example", "schema": "ftp"}, "'my_conn': schema 'ftp' is not a URL scheme"),
        ({"host": "https://h", "extra": {"timeout": "soon"}}, "'my_conn': extra \"timeout\" must be a positive number"),
        ({"host": "https://h", "extra": {"timeout": -1}}, "'my_conn': extra \"timeout\" must be a positive number"),
        ({"host": "https://h", "extra": {"timeout": 0}}, "'my_conn': extra \"timeout\" must be a positive number"),
        ({"host": "https://h", "extra": {"timeout": True}}, "'my_conn': extra \"timeout\" must be a positive number"),
        (
            {"host": "https://h", "extra": {"stream_idle_timeout": "0"}},
            "'my_conn': extra \"stream_idle_timeout\" must be a positive number of seconds, got '0'.",
        ),
        (
            {"host": "https://h", "extra": {"verify": False, "ca_bundle": certifi.where()}},
            '\'my_conn\': extra "verify" is off but extra "ca_bundle" is set; they contradict each other, keep one',
        ),
        (
            {"host": "https://h", "extra": {"headers": {"X A": "v"}}},
            "'my_conn': headers: 'X A' is not a valid HTTP header name",
        ),
        ({"host": "https://h", "extra": {"retry": "[1]"}}, "'my_conn': extra \"retry\" must be an object such as"),
        ({"host": "https://h", "extra": {"verify": 3}}, "'my_conn': extra \"verify\" must be true or false"),
        ({"host": "https://h", "extra": {"ca_bundle": "/nope.pem"}}, "'my_conn': extra \"ca_bundle\": no CA bundle"),
        ({"host": "https://h", "extra": {"retry": {"max_attempts": 0}}}, "'my_conn': retry settings are invalid"),
        ({"host": "https://h", "extra": {"retry": "{not json"}}, "'my_conn': extra \"retry\" is not valid JSON"),
        ({"host": "https://h", "extra": {"retry": {"tries": 3}}}, "'my_conn': retry settings are invalid (tries"),
        ({"host": "https://h", "extra": {"ui_base_url": "ui"}}, "'my_conn': extra \"ui_base_url\" must be an http"),
        (
            {"host": "https://h", "extra": {"headers": {"Authorization": "x"}}},
            "'my_conn': extra \"headers\" must not set Authorization",
        ),
    ],
)
def test_bad_connections_name_the_connection_and_the_field(fields, message):
    with pytest.raises(OpenwopConnectionException) as excinfo:
        settings(**fields)
    assert message in str(excinfo.value)


def test_the_connection_form_is_derived_from_the_core_description():
    """Label, help, bounds and checkbox default of each form field come from ``openwop_core.settings``."""
    for setting in (TIMEOUT, STREAM_IDLE_TIMEOUT, MAX_ATTEMPTS, VERIFY, CA_BUNDLE):
        field = CONN_FIELDS[setting.name]
        assert field["label"] == setting.label
        assert field["description"].startswith(setting.help)
    assert "Default 30." in CONN_FIELDS["timeout"]["description"]
    # "greater than 0": the exact bound, and the minimum the form's number box reads (it took 0 before)
    assert CONN_FIELDS["timeout"]["schema"]["exclusiveMinimum"] == 0 == CONN_FIELDS["timeout"]["schema"]["minimum"]
    assert CONN_FIELDS["max_attempts"]["schema"]["maximum"] == MAX_ATTEMPTS.le == 100
    assert CONN_FIELDS["verify"]["schema"]["default"] is True
    assert set(CONN_FIELDS) <= KNOWN_EXTRAS


def test_text_from_forms_and_variables_is_read_by_the_same_rules():
    result = settings(host="https://h", extra={"timeout": " 7.5 ", "verify": "off", "max_attempts": "3"})
    assert (result.timeout, result.verify, result.retry.max_attempts) == (7.5, False, 3)


def test_unknown_extras_are_reported(capfd, monkeypatch, devhost):
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, timout=5))
    OpenwopHook().get_connection_settings()
    out, err = capfd.readouterr()
    assert "has extras this provider does not read: timout" in out + err


def test_missing_connection_says_how_to_define_it():
    with pytest.raises(OpenwopConnectionException) as excinfo:
        OpenwopHook("no_such_conn").get_conn()
    assert "OpenWOP connection 'no_such_conn' is not defined" in str(excinfo.value)
    assert "AIRFLOW_CONN_NO_SUCH_CONN" in str(excinfo.value)


def test_extra_that_is_not_json_names_the_connection(monkeypatch):
    """Airflow 3.3 hands the connection over and the hook names the bad extra; Airflow 3.1 already refuses the
    variable (as if it were unset), and the hook says the variable could not be read."""
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", json.dumps({"conn_type": "openwop", "host": "https://h", "extra": "{"}))
    with pytest.raises(
        OpenwopConnectionException,
        match=r"'broken': (extra is not valid JSON|Airflow could not read AIRFLOW_CONN_BROKEN)",
    ):
        OpenwopHook("broken").get_conn()


def test_a_connection_variable_airflow_cannot_parse_is_named_not_called_missing(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GARBLED", '{"conn_type": "openwop", "host": ')
    with pytest.raises(
        OpenwopConnectionException, match="'garbled': Airflow could not read AIRFLOW_CONN_GARBLED; set it"
    ):
        OpenwopHook("garbled").get_conn()


def test_bad_api_key_format_names_the_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPACEY", json.dumps({"conn_type": "openwop", "host": "https://h", "password": "a b"})
    )
    with pytest.raises(OpenwopConnectionException) as excinfo:
        OpenwopHook("spacey").get_conn()
    assert "'spacey' is not usable: api_key contains whitespace" in str(excinfo.value)


def test_sync_client_is_built_once_per_hook(devhost):
    hook = OpenwopHook()
    assert hook.get_conn() is hook.get_conn()
    assert hook.get_conn().base_url == devhost.base_url
    assert API_KEY not in repr(hook.get_conn())


def test_async_client_reads_the_connection_without_blocking_calls(devhost):
    async def main() -> str:
        async with OpenwopHook().async_client() as client:
            return (await client.discovery_capabilities()).protocol_version

    assert asyncio.run(main()) == "1.0"


def test_test_connection_proves_the_key_is_accepted(devhost):
    ok, message = OpenwopHook().test_connection()
    assert ok, message
    assert message == (
        f"Connected to {devhost.base_url}: OpenWOP protocol 1.0 (openwop-devhost 0.1.0); API key accepted."
    )


def test_test_connection_reports_a_rejected_key(devhost, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, api_key="not-the-key"))
    ok, message = OpenwopHook().test_connection()
    assert not ok
    assert "rejected the API key: HTTP 401" in message
    assert "not-the-key" not in message


def test_test_connection_reports_an_unreachable_host(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENWOP_DEFAULT",
        json.dumps(
            {
                "conn_type": "openwop",
                "host": f"http://127.0.0.1:{port}",
                "password": API_KEY,
                "extra": {"max_attempts": 1},
            }
        ),
    )
    ok, message = OpenwopHook().test_connection()
    assert not ok
    assert f"Cannot reach the OpenWOP host: Could not connect to http://127.0.0.1:{port}" in message


def test_the_ui_test_button_works_for_an_unsaved_connection(devhost):
    """The UI's Test button posts the form to ``/api/v2/connections/test``: Airflow runs ``test_connection()`` on
    a connection that is not stored anywhere yet."""
    ada = AirflowUser("ada")

    def test(password: str) -> dict:
        form = {"connection_id": "not_saved_yet", "conn_type": "openwop", "host": devhost.base_url}
        response = ada.api.post("/api/v2/connections/test", json={**form, "password": password}, headers=ada.headers)
        assert response.status_code == 200, response.text
        return response.json()

    accepted = test(API_KEY)
    assert accepted["status"], accepted["message"]
    assert "API key accepted" in accepted["message"]
    rejected = test("wrong")
    assert not rejected["status"]
    assert "rejected the API key" in rejected["message"]
