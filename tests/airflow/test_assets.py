"""Airflow assets: a run operator with ``outlets`` attaches its run to the asset event, and a DAG scheduled on
the asset reads which run produced it (the example pair, run with ``dag.test()``); the outputs summary is
size-capped and the connection's key never appears."""

from __future__ import annotations

import json
from typing import Any

from airflow_support import API_KEY, EXAMPLE_DAGS, connection_json, dag_bag, run_dag, run_operator_dag, unique_dag_id

from openwop_airflow.operators.asset_events import OUTPUTS_BUDGET, outputs_summary, produced_by, run_extra


def _latest_event(asset_name: str) -> Any:
    """The newest asset event of ``asset_name`` in Airflow's database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        event = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == asset_name)
            .order_by(AssetEvent.id.desc())
        ).first()
        session.expunge(event)
        return event


def _dag(name: str) -> Any:
    return dag_bag(EXAMPLE_DAGS / f"example_openwop_asset_{name}.py").get_dag(f"example_openwop_asset_{name}")


def test_producer_attaches_its_run_and_the_consumer_reads_it(devhost, capfd, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, ui_base_url="https://ui.example.test"))
    produced = run_dag(_dag("producer"), capfd)

    assert produced.state == "success"
    (run_id,) = devhost.run_ids()
    event = _latest_event("openwop_example_report")
    assert event.source_dag_id == "example_openwop_asset_producer" and event.source_task_id == "make_report"
    assert event.extra["openwop"] == {
        "run_id": run_id,
        "status": "completed",
        "run_url": f"https://ui.example.test/runs/{run_id}",
        "workflow_id": "example-report",
        "outputs": produced.xcom("make_report"),
    }
    assert API_KEY not in json.dumps(event.extra) and API_KEY not in produced.output
    assert f"OpenWOP run {run_id} (completed) attached to the asset event of openwop_example_report." in (
        produced.output
    )

    # the consumer, run as the scheduler would run it for that event (dag.test() attaches none by itself)
    import airflow.models.dagrun as dagrun_module
    from airflow.models.asset import AssetEvent

    create = dagrun_module.get_or_create_dagrun

    def triggered_by_the_event(**kwargs: Any) -> Any:
        dag_run = create(**kwargs)
        dag_run.consumed_asset_events.append(kwargs["session"].get(AssetEvent, event.id))
        kwargs["session"].commit()
        return dag_run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", triggered_by_the_event)
    consumed = run_dag(_dag("consumer"), capfd)

    assert consumed.state == "success"
    assert consumed.xcom("which_run") == event.extra["openwop"]
    assert f"Triggered by OpenWOP run {run_id} (completed)" in consumed.output


def test_a_run_not_waited_for_is_attached_without_outputs_and_the_headers_stay_out(devhost, capfd, monkeypatch):
    """``wait_for_completion=False``: the event names the run (no outputs: none are known yet); a secret in the
    connection's headers is not in it either."""
    from airflow.sdk import Asset

    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENWOP_DEFAULT", connection_json(devhost, headers={"X-Tenant-Token": f"{API_KEY}-header"})
    )
    name = unique_dag_id("asset_nowait")
    dag = run_operator_dag(
        "asset_nowait",
        workflow_id="conformance-identity",
        inputs={"payload": {}},
        wait_for_completion=False,
        outlets=[Asset(name=name)],
    )
    result = run_dag(dag, capfd)

    assert result.state == "success"
    (run_id,) = devhost.run_ids()
    extra = _latest_event(name).extra
    assert extra["openwop"]["run_id"] == run_id and extra["openwop"]["outputs"] is None
    assert extra["openwop"]["run_url"] == f"{devhost.base_url}/v1/runs/{run_id}"
    assert API_KEY not in json.dumps(extra)


def test_outputs_summary_is_capped_with_a_marker():
    small = {"answer": 42, "text": "short"}
    assert outputs_summary(small) == {"outputs": small}

    big = {"first": "a" * 100, "huge": "b" * 5000, "last": [1, 2, 3]}
    summary = outputs_summary(big)
    assert summary["outputs"] == {"first": "a" * 100, "last": [1, 2, 3]}
    assert summary["outputs_truncated"] is True
    assert summary["outputs_bytes"] > OUTPUTS_BUDGET
    assert len(json.dumps(summary["outputs"], separators=(",", ":"))) <= OUTPUTS_BUDGET

    extra = run_extra(run_id="r1", status="completed", run_url="u", workflow_id="w", outputs=big)
    assert len(json.dumps(extra)) < OUTPUTS_BUDGET + 500


def test_produced_by_ignores_events_from_elsewhere():
    class Event:
        def __init__(self, extra: Any) -> None:
            self.extra = extra

    assert produced_by(Event({})) is None
    assert produced_by(Event({"openwop": "not a run"})) is None
    assert produced_by(Event({"openwop": {"run_id": "r"}})) == {"run_id": "r"}
