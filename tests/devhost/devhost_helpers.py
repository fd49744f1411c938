"""Tiny SSE client helpers for the devhost tests (frames parsed by hand, on purpose)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from process_hygiene import start_process, stop_process_tree

TERMINAL = {"run.completed", "run.failed", "run.cancelled"}

API_KEY = "devhost-test-key-Q9v2"
READ_ONLY_KEY = "devhost-readonly-key-77"


@dataclass
class Frame:
    """One dispatched SSE frame."""

    id: str | None
    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Stream:
    """Everything one SSE connection delivered."""

    status: int
    headers: httpx.Headers
    frames: list[Frame] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    clean_end: bool = True

    def events(self) -> list[dict[str, Any]]:
        """Frames whose data is a JSON object (skips injected garbage)."""
        out = []
        for frame in self.frames:
            try:
                value = frame.json()
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    def types(self) -> list[str]:
        return [e.get("type", "") for e in self.events()]


def parse_lines(lines: list[str]) -> tuple[list[Frame], list[str]]:
    """Parse SSE lines (without newlines) into frames and comments."""
    frames: list[Frame] = []
    comments: list[str] = []
    event_id: str | None = None
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or event is not None:
                frames.append(Frame(event_id, event, "\n".join(data)))
            event_id, event, data = None, None, []
            continue
        if line.startswith(":"):
            comments.append(line[1:])
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return frames, comments


def read_stream(
    client: httpx.Client,
    run_id: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    max_frames: int | None = None,
    max_seconds: float | None = None,
) -> Stream:
    """Open ``/events`` with ``Accept: text/event-stream`` and read until it closes (or a limit)."""
    request_headers = {"Accept": "text/event-stream", **(headers or {})}
    lines: list[str] = []
    started = time.monotonic()
    with client.stream("GET", f"/v1/runs/{run_id}/events", params=params, headers=request_headers) as response:
        stream = Stream(response.status_code, response.headers)
        if response.status_code != 200:
            response.read()
            return stream
        try:
            for line in response.iter_lines():
                lines.append(line)
                if line == "" and max_frames is not None:
                    frames, _ = parse_lines(lines)
                    if len(frames) >= max_frames:
                        break
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
        except httpx.RemoteProtocolError:
            stream.clean_end = False
    stream.frames, stream.comments = parse_lines(lines)
    return stream


def follow(
    client: httpx.Client, run_id: str, params: dict[str, Any] | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """Reconnect with Last-Event-ID until a terminal event arrives; return (events, connections)."""
    collected: list[dict[str, Any]] = []
    last_id: str | None = None
    for connection in range(1, limit + 1):
        headers = {"Last-Event-ID": last_id} if last_id is not None else {}
        stream = read_stream(client, run_id, params=params, headers=headers)
        for frame in stream.frames:
            try:
                doc = frame.json()
            except ValueError:
                continue
            if frame.id is not None:
                last_id = frame.id
            collected.append(doc)
            if isinstance(doc, dict) and doc.get("type") in TERMINAL:
                return collected, connection
    raise AssertionError(f"no terminal event after {limit} connections")


def create(client: httpx.Client, workflow_id: str, **body: Any) -> str:
    """Create a run and return its id (asserting 201)."""
    response = client.post("/v1/runs", json={"workflowId": workflow_id, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["runId"])


def wait_status(client: httpx.Client, run_id: str, statuses: set[str], timeout: float = 10.0) -> dict[str, Any]:
    """Poll the snapshot until its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = client.get(f"/v1/runs/{run_id}").json()
        if snapshot["status"] in statuses:
            return dict(snapshot)
        assert time.monotonic() < deadline, f"run {run_id} stuck in {snapshot['status']}"
        time.sleep(0.01)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert an error envelope with this status and code; return it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"error", "message", "details"}
    return dict(body)


@contextlib.contextmanager
def cli_host(*args: str) -> Iterator[tuple[str, list[str]]]:
    """Run ``python -m openwop_devhost --port 0 ARGS...`` (its own process group) and yield its base URL and
    the log lines read so far; the process and its children are stopped when the block ends."""
    process = start_process(
        [sys.executable, "-m", "openwop_devhost", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, f"the devhost did not log where it listens: {lines}"
            line = process.stderr.readline().decode(errors="replace")
            assert line, f"the devhost exited early: {lines}"
            lines.append(line)
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                break
        yield found.group(1), lines
    finally:
        stop_process_tree(process, sig=signal.SIGINT, grace=10)
        if process.stderr is not None:
            process.stderr.close()
