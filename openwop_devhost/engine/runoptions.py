"""Validation of run options (``configurable``, ``tags``, ``metadata``) for create and fork.

Validation happens at create time, never mid-run, and every refusal is a ``400 validation_error``
whose ``details`` name the key, the value and the accepted range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError

#: key -> (type, minimum, maximum, description); advertised in discovery ``configurable``.
CONFIGURABLE_KEYS: dict[str, tuple[str, float | None, float | None, str]] = {
    "recursionLimit": ("integer", 1, None, "max node executions per run (clamped to limits.maxNodeExecutions)"),
    "runTimeoutMs": ("integer", 1, None, "wall-clock limit per run (clamped to limits.maxRunDurationMs)"),
    "model": ("string", None, None, "accepted and echoed; this host runs no models"),
    "temperature": ("number", 0, 2, "accepted and echoed; this host runs no models"),
    "maxTokens": ("integer", 1, None, "accepted and echoed; this host runs no models"),
    "maxLoopIterations": ("integer", 1, None, "accepted and echoed"),
    "escalationThreshold": ("number", 0, 1, "accepted and echoed"),
    "reasoningVerbosity": ("string", None, None, "accepted and echoed"),
    "promptOverrides": ("object", None, None, "accepted and echoed"),
    "ai": ("object", None, None, "accepted and echoed"),
    "run": ("object", None, None, "v2-style nesting of recursionLimit/runTimeoutMs, accepted for tolerance"),
}
MAX_TAGS = 100
MAX_TAG_LENGTH = 256


@dataclass
class RunOptions:
    """Validated per-run options."""

    configurable: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def recursion_limit(self, ceiling: int) -> int:
        """The effective node-execution limit: ``recursionLimit`` clamped to ``ceiling``."""
        value = self.configurable.get("recursionLimit", self.configurable.get("run", {}).get("recursionLimit"))
        return min(int(value), ceiling) if value is not None else ceiling

    def run_timeout_ms(self, ceiling: int) -> int | None:
        """The effective run timeout in ms, or ``None`` when the caller set none."""
        value = self.configurable.get("runTimeoutMs", self.configurable.get("run", {}).get("runTimeoutMs"))
        return min(int(value), ceiling) if value is not None else None


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    return isinstance(value, dict)


def _check_entry(key: str, value: Any, where: str) -> None:
    kind, low, high, _ = CONFIGURABLE_KEYS[key]
    details: dict[str, Any] = {"key": key, "value": value}
    if low is not None:
        details["min"] = low
    if high is not None:
        details["max"] = high
    if not _type_ok(kind, value):
        raise ApiError(400, "validation_error", f"{where}.{key} must be of type {kind}.", details)
    if kind in ("integer", "number") and ((low is not None and value < low) or (high is not None and value > high)):
        raise ApiError(400, "validation_error", f"{where}.{key} is out of range: {value!r}.", details)


def validate_configurable(value: Any, where: str = "configurable") -> dict[str, Any]:
    """Check a ``configurable`` object: known keys, types and ranges."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "validation_error", f"{where} must be an object.", {"key": where})
    if "mockProvider" in value:
        raise ApiError(
            403,
            "mock_provider_forbidden",
            f"{where}.mockProvider needs a test key and a host with mock providers; this host has none.",
            {"key": "mockProvider"},
        )
    for key, entry in value.items():
        if key not in CONFIGURABLE_KEYS:
            raise ApiError(
                400,
                "validation_error",
                f"Unknown {where} key {key!r}; accepted keys: {sorted(CONFIGURABLE_KEYS)}.",
                {"key": key, "value": entry, "accepted": sorted(CONFIGURABLE_KEYS)},
            )
        _check_entry(key, entry, where)
    nested = value.get("run")
    if isinstance(nested, dict):
        for key, entry in nested.items():
            if key not in ("recursionLimit", "runTimeoutMs"):
                raise ApiError(
                    400,
                    "validation_error",
                    f"Unknown {where}.run key {key!r}; accepted: recursionLimit, runTimeoutMs.",
                    {"key": f"run.{key}", "value": entry},
                )
            _check_entry(key, entry, f"{where}.run")
    return dict(value)


def validate_tags(value: Any, where: str = "tags") -> list[str]:
    """Check ``tags``: at most 100 strings of at most 256 characters."""
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > MAX_TAGS
        or not all(isinstance(tag, str) and 0 < len(tag) <= MAX_TAG_LENGTH for tag in value)
    ):
        raise ApiError(
            400,
            "validation_error",
            f"{where} must be an array of at most {MAX_TAGS} non-empty strings of at most {MAX_TAG_LENGTH} characters.",
            {"key": where, "maxItems": MAX_TAGS, "maxLength": MAX_TAG_LENGTH},
        )
    return list(value)


def validate_metadata(value: Any, where: str = "metadata") -> dict[str, Any]:
    """Check ``metadata``: any JSON object."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "validation_error", f"{where} must be an object.", {"key": where})
    return dict(value)


def parse_run_options(body: dict[str, Any], where: str = "") -> RunOptions:
    """Validate the ``configurable``/``tags``/``metadata`` members of ``body``."""
    prefix = f"{where}." if where else ""
    return RunOptions(
        configurable=validate_configurable(body.get("configurable"), f"{prefix}configurable"),
        tags=validate_tags(body.get("tags"), f"{prefix}tags"),
        metadata=validate_metadata(body.get("metadata"), f"{prefix}metadata"),
    )
