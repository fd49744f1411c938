"""``interrupt_is_open`` / ``InterruptWatch`` against the local host: an interrupt stays open until it is
answered (by anyone), the run ends, or a loop back asks the same node anew."""

from __future__ import annotations

import pytest
from core_helpers import API_KEY

from openwop_core import OpenwopClient, interrupt_is_open, resume


@pytest.fixture
def client(host):
    with OpenwopClient(host.base_url, api_key=API_KEY) as sync_client:
        yield sync_client


def asked(client: OpenwopClient, workflow_id: str):
    """A new run of ``workflow_id``, once it waits on its first interrupt."""
    return client.wait_for_run(client.runs_create(workflow_id).run_id, stop_on_interrupt=True, timeout=30)


def test_an_unanswered_interrupt_is_open(client):
    waiting = asked(client, "conformance-approval")
    assert interrupt_is_open(client, waiting.interrupt, waiting.last_sequence)


def test_answered_elsewhere_it_is_closed(client):
    waiting = asked(client, "conformance-approval")
    client.interrupts_resolve_by_run(waiting.run_id, "gate", resume.approval("accept", decided_by="someone"))
    assert not interrupt_is_open(client, waiting.interrupt, waiting.last_sequence)


def test_a_cancelled_run_closes_it(client):
    waiting = asked(client, "conformance-approval")
    client.runs_cancel(waiting.run_id, reason="not needed")
    assert not interrupt_is_open(client, waiting.interrupt, waiting.last_sequence)


def test_a_loop_back_to_the_same_node_closes_the_first_question(client):
    first = asked(client, "conformance-approval-reject-loopback")
    client.interrupts_resolve_by_run(first.run_id, "gate", resume.approval("reject", decided_by="someone"))
    second = client.wait_for_run(first.run_id, stop_on_interrupt=True, timeout=30, last_sequence=first.last_sequence)
    assert second.interrupt is not None and second.interrupt.node_id == "gate"
    assert not interrupt_is_open(client, first.interrupt, first.last_sequence)
    assert interrupt_is_open(client, second.interrupt, second.last_sequence)
