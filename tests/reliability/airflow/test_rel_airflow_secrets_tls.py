"""Secrets and TLS through the Airflow provider.

Every example DAG (the human-in-the-loop one answered by a person on Airflow's REST API), plus a DAG that answers an interrupt with its signed token and has tasks that fail, runs
with a distinctive API key. Then everything Airflow kept or printed is searched for the key and for the
tokens' signatures: the captured task and trigger logs, every XCom, the trigger rows and the serialised
triggers, the task instances' resume kwargs, the rendered template fields, the human-in-the-loop requests,
exception texts and reprs.

TLS: a connection to a loopback HTTPS host with a private CA is refused by default, naming the certificate
problem; with the CA in the connection's ``ca_bundle`` extra, a deferrable task runs to success over TLS
(worker and triggerer); a connection with a key to a plain-http remote host warns.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, XComArg, task
from airflow_support import API_KEY, EXAMPLE_DAGS, DagRunResult, dag_bag, run_dag, unique_dag_id
from reliability_support import SecretSearch, TlsHost, TlsMaterial, make_tls_material, token_secret_part
from sqlalchemy import select

from openwop_airflow.hooks.openwop import OpenwopHook
from openwop_airflow.operators.interrupts import OpenwopResolveInterruptOperator
from openwop_airflow.operators.run import OpenwopRunOperator
from openwop_airflow.sensors.run import OpenwopRunSensor
from openwop_airflow.triggers.run import OpenwopRunTrigger
from openwop_core import InsecureTransportWarning
from openwop_devhost import DevHost

START = pendulum.datetime(2024, 1, 1, tz="UTC")
RUN_ID = "{{ ti.xcom_pull(task_ids='start', key='run_id') }}"


def stored_text(dag_ids: list[str]) -> dict[str, str]:
    """What the metadata database holds for these DAGs: XComs, trigger rows, resume kwargs, rendered fields."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = session.scalars(select(XComModel.value).where(XComModel.dag_id.in_(dag_ids))).all()
        requests = session.scalars(select(HITLDetail)).all()
        triggers = session.scalars(select(Trigger)).all()
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id.in_(dag_ids))).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.dag_id.in_(dag_ids))
        ).all()
        return {
            "XComs": "\n".join(json.dumps(v, default=str) for v in xcoms),
            "trigger rows": "\n".join(json.dumps(t.kwargs, default=str) + t.classpath for t in triggers),
            "task instances' next kwargs": "\n".join(json.dumps(ti.next_kwargs, default=str) for ti in tis),
            "rendered template fields": "\n".join(json.dumps(r.rendered_fields, default=str) for r in rendered),
            "human-in-the-loop requests": "\n".join(
                json.dumps([r.subject, r.body, r.options, r.params, r.params_input, r.defaults], default=str)
                for r in requests
            ),
        }


def run_example(dag: DAG, capfd: pytest.CaptureFixture[str]) -> DagRunResult:
    """Run an example DAG; one that asks a person in Airflow (tagged human-in-the-loop) is answered on
    Airflow's REST API by ``ada``, as ``tests/airflow/test_example_dags.py`` does."""
    if "human-in-the-loop" not in (dag.tags or ()):
        return run_dag(dag, capfd)
    from airflow_support import AirflowUser, in_background, wait_for_request

    person = AirflowUser("ada")

    def approve() -> None:
        response = person.respond(wait_for_request(person, dag.dag_id), ["Approve"], {"feedback": "ok"})
        assert response.status_code == 200, response.text

    with in_background(approve):
        return run_dag(dag, capfd)


def token_dag(devhost: DevHost, tokens: list[str]) -> DAG:
    """Answer an approval with its signed token (looked up in a template, as a person would paste it), and
    have tasks fail: a failed run, a forged token."""

    def interrupt_token(run_id: str) -> str:
        token = str(devhost.open_interrupts(run_id)[0]["token"])
        tokens.append(token)
        return token

    def forged_token(run_id: str) -> str:
        payload, signature = interrupt_token(run_id).rsplit(".", 1)
        return payload + "." + signature[::-1]

    with DAG(
        unique_dag_id("rel_secrets_token"),
        schedule=None,
        start_date=START,
        user_defined_macros={"interrupt_token": interrupt_token, "forged_token": forged_token},
    ) as dag:
        start = OpenwopRunOperator(
            task_id="start", workflow_id="conformance-approval", on_interrupt="return", deferrable=True
        )
        second = OpenwopRunOperator(
            task_id="second", workflow_id="conformance-approval", on_interrupt="return", deferrable=True
        )
        forged = OpenwopResolveInterruptOperator(
            task_id="forged",
            token="{{ forged_token(ti.xcom_pull(task_ids='second', key='run_id')) }}",
            resume_value={"action": "accept"},
        )
        answer = OpenwopResolveInterruptOperator(
            task_id="answer",
            token="{{ interrupt_token(ti.xcom_pull(task_ids='start', key='run_id')) }}",
            resume_value={"action": "accept"},
            trigger_rule="all_done",
        )
        wait = OpenwopRunSensor(task_id="wait", run_id=RUN_ID, deferrable=True, timeout=120)
        failing = OpenwopRunOperator(task_id="failing", workflow_id="conformance-failure", deferrable=True)

        @task(trigger_rule="all_done")
        def describe(interrupt: dict[str, Any] | None) -> str:
            hook = OpenwopHook()
            return repr(hook.get_connection_settings()) + repr(hook.get_conn()) + repr(interrupt)

        start >> second >> forged >> answer >> wait >> failing >> describe(XComArg(start, key="interrupt"))  # type: ignore[arg-type]
    return dag


def test_no_example_dag_or_task_leaks_the_key_or_a_token(devhost: DevHost, capfd: pytest.CaptureFixture[str]) -> None:
    bag = dag_bag(EXAMPLE_DAGS)
    assert bag.import_errors == {}
    tokens: list[str] = []
    outputs: list[str] = []
    dag_ids: list[str] = []
    states: dict[str, str] = {}
    for dag_id in sorted(bag.dag_ids):
        result = run_example(bag.get_dag(dag_id), capfd)
        states[dag_id] = result.state
        outputs.append(result.output)
        dag_ids.append(dag_id)
    extra = token_dag(devhost, tokens)
    result = run_dag(extra, capfd)
    outputs.append(result.output)
    dag_ids.append(extra.dag_id)

    assert set(states.values()) == {"success"}, states
    assert result.ti_state("answer") == "success"  # answered with the token...
    assert result.ti_state("wait") == "success"
    assert result.ti_state("forged") == "failed"  # ...and a forged one refused
    assert result.ti_state("failing") == "failed"
    assert "interrupt_token_invalid" in result.output
    assert "conformance_test_failure" in result.output
    assert len(tokens) >= 2

    search = SecretSearch({"API key": API_KEY, **{f"token {i}": token_secret_part(t) for i, t in enumerate(tokens)}})
    search.add("task and trigger logs", "\n".join(outputs))
    for name, text in stored_text(dag_ids).items():
        search.add(name, text)
    trigger = OpenwopRunTrigger(run_id="run_x", deadline=1.0, retry={"max_attempts": 2}, cancel_on_kill=True)
    search.add("serialised trigger", json.dumps(trigger.serialize()) + repr(trigger))
    search.add("reprs", repr(OpenwopHook().get_connection_settings()) + repr(OpenwopHook().get_conn()))
    assert "describe" in search.surfaces["XComs"] or result.xcom("describe")  # reprs were pushed too
    assert not search.leaks(), search.leaks()


# -- TLS -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsHost, TlsMaterial]]:
    material = make_tls_material(tmp_path_factory.mktemp("tls"))
    with TlsHost(material, api_key=API_KEY) as host:
        yield host, material


def test_a_private_ca_is_refused_by_default_and_trusted_with_ca_bundle(
    tls: tuple[TlsHost, TlsMaterial], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    host, material = tls
    monkeypatch.setenv(
        "AIRFLOW_CONN_REL_TLS_DEFAULT",
        json.dumps({"conn_type": "openwop", "host": host.base_url, "password": API_KEY}),  # default retries
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_REL_TLS_CA",
        json.dumps({"conn_type": "openwop", "host": host.base_url, "password": API_KEY, "extra": {"ca_bundle": str(material.ca_cert)}}),
    )  # fmt: skip
    assert OpenwopHook("rel_tls_default").get_conn().settings.verify is True  # on by default
    with DAG(unique_dag_id("rel_tls"), schedule=None, start_date=START) as dag:
        OpenwopRunOperator(task_id="refused", openwop_conn_id="rel_tls_default", workflow_id="conformance-noop")
        OpenwopRunOperator(
            task_id="trusted",
            openwop_conn_id="rel_tls_ca",
            workflow_id="conformance-identity",
            inputs={"payload": {"over": "tls"}},
            deferrable=True,
        )
    result = run_dag(dag, capfd)

    assert result.ti_state("refused") == "failed"
    assert f"TLS certificate of {host.base_url} was not trusted" in result.output
    assert "CERTIFICATE_VERIFY_FAILED" in result.output
    assert 'the connection\'s extra "ca_bundle"' in result.output  # the fix, in Airflow's terms
    assert "retrying in" not in result.output  # not transient: failed at the first attempt
    assert result.ti_state("trusted") == "success"
    assert result.xcom("trusted") == {"payload": {"over": "tls"}}
    assert API_KEY not in result.output

    # a deferred wait on a host whose certificate is not trusted (the CA replaced after the task deferred, say)
    # ends at once with the reason, instead of retrying until the task's timeout
    run_id = OpenwopHook("rel_tls_ca").get_conn().runs_create("conformance-delay", {"delayMs": 30000}).run_id
    events = asyncio.run(
        asyncio.wait_for(collect(OpenwopRunTrigger(run_id=run_id, openwop_conn_id="rel_tls_default")), 30)
    )
    assert [event.payload["status"] for event in events] == ["error"]
    assert "was not trusted" in events[0].payload["error"]["message"]
    assert API_KEY not in json.dumps(events[0].payload)


async def collect(trigger: OpenwopRunTrigger) -> list[Any]:
    """Every event ``trigger`` fires."""
    return [event async for event in trigger.run()]


def test_a_key_over_plain_http_to_another_machine_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_REL_PLAIN",
        json.dumps({"conn_type": "openwop", "host": "http://openwop.example.com", "password": API_KEY}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_REL_LOCAL", connection_json_for("http://127.0.0.1:3737"))
    with pytest.warns(InsecureTransportWarning, match="sent unencrypted to http://openwop.example.com"):
        OpenwopHook("rel_plain").get_conn()
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureTransportWarning)
        OpenwopHook("rel_local").get_conn()  # loopback: no warning


def connection_json_for(url: str) -> str:
    return json.dumps({"conn_type": "openwop", "host": url, "password": API_KEY})
