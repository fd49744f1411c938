"""A human-readable HTML page for a run, served at ``GET /v1/runs/{runId}`` when a browser asks for it.

Links to a run (the Airflow "OpenWOP run" extra link, the demo's output) point at the REST resource. A browser
sends ``Accept: text/html,...``; it gets this page (status, workflow, timestamps, nodes, pending interrupts,
the events log) instead of JSON it could not authenticate for. API clients (``application/json``, ``*/*`` or no
``Accept``) keep the JSON snapshot and its authentication.

Access (``run_pages``): ``"public"`` serves the page without the API key (a browser cannot send it): the
default of a host on loopback, for development. ``"api-key"`` asks for the key like the API does. Everything
shown is escaped (inputs and outputs are user data), scripts are forbidden by the page's Content-Security-Policy,
and interrupt tokens and fields named like secrets are replaced by ``[redacted]``.
"""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..engine.events import TERMINAL_STATUSES
from ..engine.runs import Run
from ..errors import ApiError
from .auth import require
from .state import HostState

RUN_PAGE_ACCESS = ("public", "api-key")
#: Newest events shown on the page; the API serves the whole log.
MAX_EVENTS_SHOWN = 500
#: Longest JSON text shown for one value (inputs, outputs, an event's payload) before it is cut.
MAX_VALUE_CHARS = 4000
REDACTED = "[redacted]"
_SECRET_KEY_PARTS = ("token", "secret", "password", "apikey", "api_key", "authorization", "credential")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_JSON_TYPES = ("application/json", "application/*", "*/*")
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Vary": "Accept",
}


def validate_access(value: str) -> str:
    """``value`` if it is a valid ``run_pages`` setting, else ``ValueError`` naming the choices."""
    if value not in RUN_PAGE_ACCESS:
        raise ValueError(f"run_pages must be one of {', '.join(RUN_PAGE_ACCESS)}; got {value!r}")
    return value


def prefers_html(accept: str | None) -> bool:
    """Whether an ``Accept`` header ranks HTML above JSON (a browser's navigation does; ``*/*`` does not)."""
    if not accept:
        return False
    best_html = best_json = 0.0
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in _HTML_TYPES:
            best_html = max(best_html, quality)
        elif media in _JSON_TYPES:
            best_json = max(best_json, quality)
    return best_html > 0 and best_html > best_json


async def run_page(request: Request, state: HostState, access: str, run_id: str) -> Response:
    """The HTML page of run ``run_id`` (or an HTML error page with the API's status code)."""
    try:
        if access != "public":
            require(state.keys.authenticate(request.headers.get("authorization")), "runs:read")
        run = state.engine.get(run_id)
        if run is None:
            raise ApiError(404, "run_not_found", f"No run {run_id!r} on this host.")
        return Response(render_run(run, state.engine.snapshot(run)), 200, _HEADERS, "text/html; charset=utf-8")
    except ApiError as exc:
        message = exc.message
        if exc.status == 401:
            message += (
                " This host serves run pages only with the API key (run_pages 'api-key'); a browser cannot send"
                " it. Read the run with the API, or start the local host with --run-pages public (the default"
                " on a loopback address)."
            )
        page = _document(f"{exc.status} {exc.code}", f"<h1>{_e(exc.code)}</h1><p>{_e(message)}</p>", refresh=False)
        return Response(page, exc.status, _HEADERS, "text/html; charset=utf-8")


def render_run(run: Run, snapshot: dict[str, Any]) -> str:
    """The page's HTML for ``run`` (``snapshot`` is its RunSnapshot)."""
    secrets = [interrupt.token for interrupt in run.interrupts_by_id.values()]
    workflow = run.workflow.document
    title = f"Run {run.run_id}"
    summary = [
        ("Status", f'<span class="status s-{_e(run.status)}">{_e(run.status)}</span>'),
        ("Workflow", f"{_e(run.workflow_id)}" + (f" — {_e(workflow['name'])}" if workflow.get("name") else "")),
        ("Started", _e(run.started_at)),
        ("Ended", _e(run.completed_at or "—")),
        ("Current node", _e(run.current_node_id or "—")),
    ]
    if run.paused_at is not None and run.paused:
        summary.append(("Paused at", _e(run.paused_at)))
    if run.error is not None:
        summary.append(("Error", _json_block(_scrub(run.error, secrets))))
    if run.options.tags:
        summary.append(("Tags", _e(", ".join(run.options.tags))))
    parts = [
        f"<h1>{_e(title)}</h1>",
        "<table class='summary'>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in summary) + "</table>",
    ]
    parts.append(_interrupts_section(run, secrets))
    parts.append(_nodes_section(run, secrets))
    parts.append("<h2>Inputs</h2>" + _json_block(_scrub(snapshot.get("inputs", {}), secrets)))
    parts.append("<h2>Variables (outputs)</h2>" + _json_block(_scrub(snapshot.get("variables", {}), secrets)))
    parts.append(_events_section(run, secrets))
    parts.append(
        "<p class='note'>The API serves this run as JSON at the same address (send <code>Accept: "
        "application/json</code> and the API key). This page refreshes every 2 s until the run ends.</p>"
    )
    return _document(title, "".join(parts), refresh=run.status not in TERMINAL_STATUSES)


def _interrupts_section(run: Run, secrets: list[str]) -> str:
    open_interrupts = list(run.open_interrupts.values())
    if not open_interrupts:
        return ""
    rows = []
    for interrupt in open_interrupts:
        public = _scrub(interrupt.public(), secrets)
        rows.append(
            f"<tr><td>{_e(interrupt.node_id)}</td><td>{_e(interrupt.kind)}</td><td>{_e(interrupt.requested_at)}</td>"
            f"<td>{_json_block(public.get('data', {}))}</td></tr>"
        )
    return (
        "<h2>Waiting for an answer</h2><table><tr><th>Node</th><th>Kind</th><th>Asked at</th><th>Prompt</th></tr>"
        + "".join(rows)
        + "</table><p class='note'>Answer with <code>POST /v1/runs/{runId}/interrupts/{nodeId}</code> "
        "(the API key's <code>approvals:respond</code> scope), or where your scheduler asks.</p>"
    )


def _nodes_section(run: Run, secrets: list[str]) -> str:
    rows = []
    for node in run.workflow.nodes:
        state = run.node_states.get(node.id, {})
        status = str(state.get("status", "pending"))
        detail: Any = state.get("error") if "error" in state else state.get("outputs")
        rows.append(
            f"<tr><td>{_e(node.id)}</td><td>{_e(node.type_id)}</td>"
            f'<td><span class="status s-{_e(status)}">{_e(status)}</span></td>'
            f"<td>{_e(state.get('executions', 0))}</td><td>{_e(state.get('startedAt', ''))}</td>"
            f"<td>{_e(state.get('completedAt', ''))}</td>"
            f"<td>{'' if detail is None else _json_block(_scrub(detail, secrets))}</td></tr>"
        )
    return (
        "<h2>Nodes</h2><table><tr><th>Node</th><th>Type</th><th>State</th><th>Runs</th><th>Started</th>"
        "<th>Ended</th><th>Outputs / error</th></tr>" + "".join(rows) + "</table>"
    )


def _events_section(run: Run, secrets: list[str]) -> str:
    events = run.events[-MAX_EVENTS_SHOWN:]
    note = ""
    if len(run.events) > len(events):
        note = f"<p class='note'>The newest {len(events)} of {len(run.events)} events.</p>"
    rows = []
    for event in events:
        doc = event.doc
        payload = doc.get("payload", {})
        rows.append(
            f"<tr><td>{_e(event.sequence)}</td><td>{_e(doc.get('timestamp', ''))}</td><td>{_e(event.type)}</td>"
            f"<td>{_e(doc.get('nodeId', ''))}</td><td>{_json_block(_scrub(payload, secrets))}</td></tr>"
        )
    return (
        f"<h2>Events ({len(run.events)})</h2>{note}<table class='events'><tr><th>#</th><th>Time</th><th>Type</th>"
        "<th>Node</th><th>Payload</th></tr>" + "".join(rows) + "</table>"
    )


def _scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with fields named like secrets and every occurrence of ``secrets`` replaced by ``[redacted]``."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if any(part in str(key).lower().replace("-", "_") for part in _SECRET_KEY_PARTS)
            else _scrub(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, REDACTED)
        return value
    return value


def _json_block(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"\n… ({len(text) - MAX_VALUE_CHARS} more characters; see the API)"
    return f"<pre>{_e(text)}</pre>"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;margin-bottom:8px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}table.summary{width:auto}table.summary th{width:140px}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,monospace;
max-height:240px;overflow:auto}
.status{display:inline-block;padding:1px 8px;border-radius:10px;background:#eaeef2;font-weight:600}
.s-completed{background:#dafbe1;color:#116329}.s-failed{background:#ffebe9;color:#a40e26}
.s-running,.s-pending{background:#ddf4ff;color:#0550ae}.s-cancelled,.s-skipped,.s-cancelling{background:#eaeef2}
.s-suspended,.s-paused,.s-waiting-approval,.s-waiting-input,.s-waiting-external{background:#fff8c5;color:#7d4e00}
.note{color:#59636e}code{font-family:ui-monospace,monospace}
"""


def _document(title: str, body: str, *, refresh: bool) -> str:
    meta_refresh = '<meta http-equiv="refresh" content="2">' if refresh else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>{meta_refresh}"
        f"<title>{_e(title)} · OpenWOP local host</title><style>{_STYLE}</style></head>"
        f"<body>{body}<p class='note'>OpenWOP local development host</p></body></html>"
    )
