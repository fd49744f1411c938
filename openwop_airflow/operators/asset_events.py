"""What a run operator with ``outlets`` attaches to its asset events: the run's identity and result.

A DAG scheduled on the asset reads it from ``triggering_asset_events`` (``event.extra["openwop"]``) to know
which OpenWOP run produced the asset. The outputs are summarised within :data:`OUTPUTS_BUDGET` bytes, so the
event stays small in Airflow's database; nothing about the connection (key, headers) is ever included.
"""

from __future__ import annotations

import json
from typing import Any

#: The key of the asset event's ``extra`` holding the run (other keys are left to the user's own code).
EXTRA_KEY = "openwop"
#: The most bytes of JSON the outputs may take in an asset event; beyond it, items are left out and marked.
OUTPUTS_BUDGET = 2048


def _size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (what Airflow stores); values JSON cannot hold count as text."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


def outputs_summary(outputs: Any, budget: int = OUTPUTS_BUDGET) -> dict[str, Any]:
    """``{"outputs": ...}`` when the outputs fit in ``budget`` bytes; else the top-level items that fit, in
    order, with ``outputs_truncated: True`` and the full size (``outputs_bytes``), so a reader never mistakes
    a summary for the whole."""
    if outputs is None:
        return {"outputs": None}
    plain = json.loads(json.dumps(outputs, default=str))
    total = _size(plain)
    if total <= budget:
        return {"outputs": plain}
    kept: dict[str, Any] = {}
    if isinstance(plain, dict):
        for key, value in plain.items():
            if _size({**kept, key: value}) <= budget:
                kept[key] = value
    return {"outputs": kept, "outputs_truncated": True, "outputs_bytes": total}


def run_extra(
    *, run_id: str, status: str | None, run_url: str, workflow_id: str | None, outputs: Any = None
) -> dict[str, Any]:
    """The ``openwop`` entry of an asset event's extra: run id, status, link, workflow and outputs summary."""
    return {
        "run_id": run_id,
        "status": status,
        "run_url": run_url,
        "workflow_id": workflow_id,
        **outputs_summary(outputs),
    }


def attach_to_outlets(context: Any, outlets: Any, extra: dict[str, Any]) -> list[str]:
    """Put ``extra`` under :data:`EXTRA_KEY` in the event of every asset among ``outlets`` (aliases, which
    need an explicit asset, are skipped); returns the names of the assets, for the log. No outlets: nothing
    is read or imported."""
    if not outlets:
        return []
    from airflow.sdk import Asset

    events = context.get("outlet_events") if hasattr(context, "get") else None
    if events is None:
        return []
    named = []
    for outlet in outlets:
        if isinstance(outlet, Asset):
            events[outlet].extra[EXTRA_KEY] = extra
            named.append(outlet.name)
    return named


def publish_run(operator: Any, context: Any, run_id: str, status: str | None, snapshot: Any = None) -> None:
    """Attach the run (its ``snapshot`` when the wait is over) to the asset events of ``operator``'s outlets,
    and say so in the log; an operator without outlets costs nothing."""
    if not operator.outlets:
        return
    extra = run_extra(
        run_id=run_id,
        status=status,
        run_url=operator.hook.run_url(run_id),
        workflow_id=getattr(operator, "workflow_id", None) or getattr(snapshot, "workflow_id", None),
        outputs=snapshot.outputs if snapshot is not None else None,
    )
    named = attach_to_outlets(context, operator.outlets, extra)
    if named:
        operator.log.info("OpenWOP run %s (%s) attached to the asset event of %s.", run_id, status, ", ".join(named))


def produced_by(event: Any) -> dict[str, Any] | None:
    """The OpenWOP run an asset event names (its ``extra["openwop"]``), or None for an event from elsewhere:
    for the DAGs scheduled on an asset a run operator produces."""
    extra = getattr(event, "extra", None) or {}
    entry = extra.get(EXTRA_KEY) if isinstance(extra, dict) else None
    return entry if isinstance(entry, dict) else None
