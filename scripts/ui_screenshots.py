"""Retake the screenshots in ``docs/img/`` from the real UIs that ``make ui`` starts (headless Chromium).

Not part of the project's environments: run it from a throwaway virtualenv with Playwright and Pillow, driving
an installed Chromium (no browser download)::

    python3 -m venv /tmp/shots && /tmp/shots/bin/pip install playwright pillow
    make ui                                                  # in another terminal; wait for "UIs are up"
    /tmp/shots/bin/python scripts/ui_screenshots.py         # --chromium PATH, --out DIR, --only NAME...

``example_openwop_run`` runs the local host's ``example-report`` workflow (about 3 s, three nodes), so its task
really defers and the log shows node progress. The script triggers ``example_openwop_run`` through Airflow's
REST API and runs ``example_dags/prefect/run_and_wait.py`` against the Prefect server, then photographs:

    airflow-connection-form.png     Admin -> Connections -> Add, type OpenWOP (standard and extra fields)
    airflow-task-log.png            the deferred task's log, and its "OpenWOP run" extra link
    prefect-block-form.png          Blocks -> OpenWOP Credentials -> Create
    prefect-flow-run-artifact.png   the flow run's logs and its run-summary artifact
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = "http://127.0.0.1:8080"
PREFECT = "http://127.0.0.1:4200"


def http(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    """One JSON request (loopback only)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback URLs
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def wait_until(what: str, check: Callable[[], Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise SystemExit(f"screenshots: timed out waiting for {what}")


def shot(page: Page, clip: dict[str, float] | None = None) -> Image.Image:
    return Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")  # type: ignore[arg-type]


def save(image: Image.Image, path: Path, width: int = 1400) -> None:
    """Save as PNG no wider than ``width`` (quantised: UI screenshots have few colours)."""
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.MEDIANCUT, dither=Image.NONE).save(path, optimize=True)
    print(
        f"    {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {image.width}x{image.height}, "
        f"{path.stat().st_size // 1024} KB"
    )


def side_by_side(images: list[Image.Image], gap: int = 24, background: str = "white") -> Image.Image:
    height = max(i.height for i in images)
    out = Image.new("RGB", (sum(i.width for i in images) + gap * (len(images) - 1), height), background)
    x = 0
    for image in images:
        out.paste(image, (x, 0))
        x += image.width + gap
    return out


def stacked(images: list[Image.Image], gap: int = 16, background: str = "white") -> Image.Image:
    width = max(i.width for i in images)
    out = Image.new("RGB", (width, sum(i.height for i in images) + gap * (len(images) - 1)), background)
    y = 0
    for image in images:
        out.paste(image, (0, y))
        y += image.height + gap
    return out


# ---------------------------------------------------------------------------------------------- Airflow


def airflow_connection_form(page: Page, out: Path) -> None:
    """The Add Connection dialog for type OpenWOP: its standard fields (relabelled) and its extra fields."""
    page.set_viewport_size({"width": 1300, "height": 1300})
    page.goto(f"{AIRFLOW}/connections", wait_until="networkidle")
    page.get_by_role("button", name="Add Connection").click()
    page.locator("input[name=connection_id]").fill("openwop_default")
    kind = page.get_by_role("combobox")
    kind.click()
    kind.type("OpenWOP")
    page.get_by_role("option", name="OpenWOP", exact=True).click()
    page.get_by_placeholder("https://openwop.example.com").fill("http://127.0.0.1:3737")
    page.get_by_placeholder("the host's API key").fill("dev-key")
    page.get_by_text("Description", exact=True).first.wait_for()
    page.wait_for_timeout(800)
    dialog = page.get_by_role("dialog")
    standard = shot(page, dialog.bounding_box())
    page.get_by_text("Extra Fields", exact=True).click()
    page.get_by_text("Event stream idle timeout (s)").wait_for()
    page.wait_for_timeout(800)
    extra = shot(page, dialog.bounding_box())
    save(side_by_side([standard, extra]), out)


def airflow_task_log(page: Page, out: Path) -> None:
    """Trigger example_openwop_run, wait for its deferred task to succeed, photograph its log and link."""
    token = http("GET", f"{AIRFLOW}/auth/token")["access_token"]
    dag = "example_openwop_run"
    run_id = f"screenshot__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    http(
        "POST",
        f"{AIRFLOW}/api/v2/dags/{dag}/dagRuns",
        {"dag_run_id": run_id, "logical_date": datetime.now(timezone.utc).isoformat()},
        token,
    )
    ti_url = f"{AIRFLOW}/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances/run_workflow"
    states: list[str] = []

    def finished() -> bool:
        state = http("GET", ti_url, token=token).get("state")
        if state and (not states or states[-1] != state):
            states.append(state)
        if state in ("failed", "upstream_failed"):
            raise SystemExit(f"screenshots: run_workflow ended {state}; see the task log in the UI")
        return state == "success"

    wait_until("example_openwop_run's run_workflow to succeed", finished, timeout=300)
    print(f"    run_workflow went through: {' -> '.join(states)}")
    if "deferred" not in states:
        print("    (it never showed as deferred: is the local host's example-report workflow the one it ran?)")
    page.set_viewport_size({"width": 1400, "height": 860})
    page.goto(f"{AIRFLOW}/dags/{dag}/runs/{run_id}/tasks/run_workflow", wait_until="networkidle")
    page.get_by_text("run completed").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    log = shot(page)
    page.goto(f"{AIRFLOW}/dags/{dag}/runs/{run_id}/tasks/run_workflow/details", wait_until="networkidle")
    button = page.get_by_role("button", name="OpenWOP run")
    if not button.count():
        button = page.get_by_role("link", name="OpenWOP run")
    button.first.wait_for(timeout=60_000)
    heading = page.get_by_text("Extra Links", exact=True).first.bounding_box()
    box = button.first.bounding_box()
    if not heading or not box:
        raise SystemExit("screenshots: the Extra Links section is not visible")
    top = heading["y"] - 12
    links = shot(page, {"x": heading["x"] - 16, "y": top, "width": 520, "height": box["y"] + box["height"] + 12 - top})
    framed = Image.new("RGB", (links.width + 2, links.height + 2), "#c8ccd2")
    framed.paste(links, (1, 1))
    canvas = log.copy()
    canvas.paste(framed, (canvas.width - framed.width - 40, canvas.height - framed.height - 40))
    save(canvas, out)


# ---------------------------------------------------------------------------------------------- Prefect


def prefect_block_form(page: Page, out: Path) -> None:
    """Blocks -> Add -> OpenWOP Credentials: the form the block's fields produce."""
    page.set_viewport_size({"width": 1400, "height": 1250})
    # The block's logo URL points at this repository on GitHub; serve the file from the checkout (works offline).
    logo = (ROOT / "docs" / "openwop-logo.png").read_bytes()
    page.route("**/docs/openwop-logo.png", lambda route: route.fulfill(body=logo, content_type="image/png"))
    page.goto(f"{PREFECT}/blocks/catalog/openwop-credentials/create", wait_until="networkidle")
    page.get_by_text("Block Name", exact=True).wait_for()
    page.get_by_role("textbox").first.fill("openwop-prod")
    page.get_by_placeholder("https://openwop.example.com").fill("https://openwop.example.com")
    page.wait_for_timeout(800)
    save(shot(page), out)


def prefect_flow_run_artifact(page: Page, out: Path) -> None:
    """Run the example flow against the server, then show the subflow run's logs and its artifact."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENWOP_"))}
    env.update({"PREFECT_API_URL": f"{PREFECT}/api", "OPENWOP_BLOCK": "openwop-local"})
    proc = subprocess.run(
        [str(ROOT / ".venv-prefect/bin/python"), str(ROOT / "example_dags/prefect/run_and_wait.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    output = proc.stdout + proc.stderr
    match = re.search(r"Beginning subflow run .*\n.*/runs/flow-run/([0-9a-f-]+)", output)
    if not match:
        raise SystemExit(f"screenshots: could not find the subflow run in:\n{output}")
    flow_run_id = match.group(1)
    artifacts = http("POST", f"{PREFECT}/api/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    if not artifacts:
        raise SystemExit(f"screenshots: flow run {flow_run_id} has no artifact")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.route("**/docs/openwop-logo.png", lambda route: route.fulfill(body=b"", status=404))
    page.goto(f"{PREFECT}/runs/flow-run/{flow_run_id}", wait_until="networkidle")
    page.get_by_text("Finished in state Completed()").first.wait_for(timeout=60_000)
    page.wait_for_timeout(800)
    logs = shot(page)
    page.goto(f"{PREFECT}/artifacts/artifact/{artifacts[0]['id']}", wait_until="networkidle")
    page.get_by_text("Nodes", exact=True).first.wait_for(timeout=60_000)
    page.wait_for_timeout(800)
    artifact = shot(page, {"x": 0, "y": 0, "width": 1400, "height": 840})
    save(stacked([logs, artifact], background="#1c1d20"), out)


SHOTS: dict[str, Callable[[Page, Path], None]] = {
    "airflow-connection-form": airflow_connection_form,
    "airflow-task-log": airflow_task_log,
    "prefect-block-form": prefect_block_form,
    "prefect-flow-run-artifact": prefect_flow_run_artifact,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="browser (default /usr/bin/chromium)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder for the PNGs (default docs/img)")
    parser.add_argument("--only", nargs="*", choices=sorted(SHOTS), help="take only these")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            for name in args.only or SHOTS:
                print(f"==> {name}")
                page = browser.new_page(device_scale_factor=1)
                page.set_default_timeout(60_000)
                try:
                    SHOTS[name](page, out / f"{name}.png")
                finally:
                    page.close()
        finally:
            browser.close()


if __name__ == "__main__":
    main()
