"""The discovery document (``/.well-known/openwop``) and the served OpenAPI document.

Capabilities are honest: they advertise exactly what this host implements. Every family sits at
the document root and is mirrored under the deprecated ``capabilities`` wrapper, like the
reference hosts do.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from ..engine.runoptions import CONFIGURABLE_KEYS
from ..errors import dumps
from ..workflows.model import WorkflowDef


def _implementation_version() -> str:
    try:
        from importlib.metadata import version

        return version("openwop-integrations")
    except Exception:  # not installed (e.g. vendored): still a valid document
        return "0.0.0"


def build_discovery(
    workflows: dict[str, WorkflowDef],
    *,
    max_node_executions: int,
    max_run_duration_ms: int,
    max_request_body_bytes: int,
) -> dict[str, Any]:
    """The capability document for a host serving ``workflows``."""
    configurable: dict[str, Any] = {}
    for key, (kind, low, high, description) in CONFIGURABLE_KEYS.items():
        entry: dict[str, Any] = {"type": kind, "description": description}
        if low is not None:
            entry["min"] = low
        if high is not None:
            entry["max"] = high
        configurable[key] = entry
    families: dict[str, Any] = {
        "supportedTransports": ["rest"],
        "limits": {
            "clarificationRounds": 3,
            "schemaRounds": 3,
            "envelopesPerTurn": 1,
            "maxNodeExecutions": max_node_executions,
            "maxRunDurationMs": max_run_duration_ms,
            "maxRequestBodyBytes": max_request_body_bytes,
        },
        "configurable": configurable,
        "fixtures": sorted(wf_id for wf_id in workflows if wf_id.startswith("conformance-")),
        "replay": {"supported": True, "modes": ["replay", "branch"], "sideEffectSuppression": "recorded-outcome"},
        "runs": {
            "pauseResume": {"supported": True, "drainPolicies": ["immediate", "drain-current-node"]},
            "bulkCancel": {"supported": True, "maxRunIds": 100},
        },
        "idempotency": {"supported": True, "layer1RetentionSeconds": 86400},
        "webhooks": {"supported": True, "signatureAlgorithms": ["v1"], "durable": False},
        "extensions": {
            "interrupts": {
                "profiles": ["openwop-interrupt-external-event"],
                "signedCallbackTokens": True,
                "externalEventRetentionSeconds": 86400,
            }
        },
        "restTransport": {"conditionalRunGet": True, "contentEncodings": []},
        "auth": {"profiles": []},
    }
    document: dict[str, Any] = {
        "protocolVersion": "1.0",
        "protocolVersions": ["1.0"],
        "implementation": {
            "name": "openwop-devhost",
            "version": _implementation_version(),
            "vendor": "openwop-integrations",
        },
        "engineVersion": 1,
        "eventLogSchemaVersion": 2,
        "supportedEnvelopes": ["clarification.request"],
        "schemaVersions": {"clarification.request": 1},
    }
    document.update(families)
    document["capabilities"] = copy.deepcopy(families)
    return document


def discovery_etag(document: dict[str, Any]) -> str:
    """``Capabilities-Etag``: changes whenever the document changes."""
    return '"' + hashlib.sha256(dumps(document).encode("utf-8")).hexdigest()[:16] + '"'


@lru_cache(maxsize=1)
def openapi_bytes() -> bytes:
    """The packaged OpenAPI JSON (the v1 spec's operations this host serves), compact."""
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    return dumps(json.loads(text)).encode("utf-8")
