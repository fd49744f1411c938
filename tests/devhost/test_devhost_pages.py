"""A browser opening a run's address (``GET /v1/runs/{id}``, as the Airflow "OpenWOP run" link does) gets a
readable HTML page; API clients keep the JSON snapshot and its authentication."""

from __future__ import annotations

import httpx
from devhost_helpers import cli_host

from openwop_devhost import DevHost

#: What Chromium and Firefox send when a person opens a link.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
XSS = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"


def _start(host: DevHost, workflow_id: str, inputs: dict | None = None) -> str:
    response = httpx.post(
        f"{host.base_url}/v1/runs",
        json={"workflowId": workflow_id, "inputs": inputs or {}},
        headers={"Authorization": f"Bearer {host.api_key}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["runId"])


def test_browser_gets_a_page_and_api_clients_keep_json_and_auth() -> None:
    with DevHost() as host:
        run_id = _start(host, "conformance-identity", {"payload": {"note": XSS, "token": "user-field-SECRET"}})
        host.wait_for_status(run_id)
        url = f"{host.base_url}/v1/runs/{run_id}"
        page = httpx.get(url, headers={"Accept": BROWSER_ACCEPT})
        api_answers = [httpx.get(url, headers={"Accept": accept}) for accept in ("application/json", "*/*", "")]
        tie = httpx.get(url, headers={"Accept": "text/html, application/json"})
        with_key = httpx.get(url, headers={"Authorization": f"Bearer {host.api_key}"})

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script runs
    assert page.headers["vary"] == "Accept"
    text = page.text
    for shown in (run_id, "conformance-identity", "completed", "identity", "core.identity", "run.started"):
        assert shown in text, shown
    assert "node.completed" in text and "run.completed" in text
    assert "<script>" not in text and "<img" not in text  # user data is escaped, never markup
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "user-field-SECRET" not in text and "[redacted]" in text  # fields named like secrets are hidden
    assert 'http-equiv="refresh"' not in text  # an ended run's page does not reload

    for answer in [*api_answers, tie]:
        assert answer.status_code == 401 and answer.headers["content-type"] == "application/json"
        assert answer.json()["error"] == "unauthenticated"
    assert with_key.status_code == 200 and with_key.json()["runId"] == run_id
    assert with_key.headers["vary"] == "Accept"


def test_page_of_a_waiting_run_shows_the_question_never_the_token() -> None:
    with DevHost() as host:
        run_id = _start(host, "conformance-interrupt-external-event")
        host.wait_for_status(run_id, {"waiting-external"})
        (interrupt,) = host.open_interrupts(run_id)
        token = interrupt["token"]
        # Reference hosts put the token into the suspension event (``interruptToken`` beside ``callbackUrl``):
        # append one shaped like theirs, to show that the page never prints it.
        run = host.state.engine.get(run_id)
        assert run is not None
        host._call(
            lambda: host.state.engine.append(
                run,
                "node.suspended",
                {
                    "nodeId": "wait-event",
                    "interruptToken": token,
                    "callbackUrl": f"{host.base_url}/v1/interrupts/{token}",
                },
                "wait-event",
            )
        )
        page = httpx.get(f"{host.base_url}/v1/runs/{run_id}", headers={"Accept": BROWSER_ACCEPT})

    assert page.status_code == 200
    text = page.text
    assert "Waiting for an answer" in text and "external-event" in text and "conformance.external.event" in text
    assert "waiting-external" in text and "suspended" in text
    assert token not in text
    assert 'http-equiv="refresh"' in text  # a live run's page follows it


def test_page_access_with_api_key_setting_and_unknown_runs() -> None:
    with DevHost(run_pages="api-key") as host:
        run_id = _start(host, "conformance-noop")
        url = f"{host.base_url}/v1/runs/{run_id}"
        refused = httpx.get(url, headers={"Accept": BROWSER_ACCEPT})
        allowed = httpx.get(url, headers={"Accept": BROWSER_ACCEPT, "Authorization": f"Bearer {host.api_key}"})
        missing = httpx.get(
            f"{host.base_url}/v1/runs/run_<b>nope",
            headers={"Accept": BROWSER_ACCEPT, "Authorization": f"Bearer {host.api_key}"},
        )
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("text/html")
    assert "--run-pages public" in refused.text and run_id not in refused.text
    assert allowed.status_code == 200 and run_id in allowed.text
    assert missing.status_code == 404 and "run_not_found" in missing.text and "<b>nope" not in missing.text


def test_cli_host_on_loopback_serves_pages_without_the_key() -> None:
    key = "pages-cli-key-DO-NOT-SHOW"
    with cli_host("--api-key", key) as (url, _):
        created = httpx.post(
            f"{url}/v1/runs", json={"workflowId": "conformance-noop"}, headers={"Authorization": f"Bearer {key}"}
        )
        run_id = created.json()["runId"]
        page = httpx.get(f"{url}/v1/runs/{run_id}", headers={"Accept": BROWSER_ACCEPT})
        json_answer = httpx.get(f"{url}/v1/runs/{run_id}")
    assert page.status_code == 200 and run_id in page.text and key not in page.text
    assert json_answer.status_code == 401
