"""Fault injection switches: make the local host misbehave the way real hosts and networks do.

Defaults are spec-canonical (no faults). Each switch emulates one observed real-world behaviour so
client code can be tested against it: dropped SSE connections, proxy errors, legacy field names,
missing keepalives, and so on. ``docs/devhost.md`` documents every switch.
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

_STATUS_CODES = {
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
_BODY_KINDS = ("json", "html", "text")
#: Values of ``Faults.interrupt_token_shape``.
INTERRUPT_TOKEN_SHAPES = ("reference-host", "app-backend")


class FaultConfigError(ValueError):
    """A fault configuration was malformed; the message names the field and the accepted values."""


@dataclass
class FailRule:
    """Answer the next ``count`` requests matching ``route`` with ``status`` instead of serving them.

    ``route`` is ``"*"`` (everything), ``"METHOD /path"`` or ``"/path"`` (any method). In the path,
    ``{name}`` matches one path segment and ``*`` matches anything, e.g. ``"GET /v1/runs/{runId}"``
    or ``"POST /v1/runs*"``. ``count`` is decremented as matching requests are answered.
    """

    route: str = "*"
    status: int = 503
    count: int = 1
    retry_after: int | None = None
    body: str = "json"

    def __post_init__(self) -> None:
        if not isinstance(self.route, str) or not self.route.strip():
            raise FaultConfigError("fail_requests[].route must be a non-empty string such as 'POST /v1/runs'")
        if self.status not in _STATUS_CODES:
            raise FaultConfigError(
                f"fail_requests[].status must be one of {sorted(_STATUS_CODES)}, got {self.status!r}"
            )
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise FaultConfigError(f"fail_requests[].count must be an integer >= 0, got {self.count!r}")
        if self.retry_after is not None and (
            isinstance(self.retry_after, bool) or not isinstance(self.retry_after, int) or self.retry_after < 0
        ):
            raise FaultConfigError(
                f"fail_requests[].retry_after must be null or an integer >= 0, got {self.retry_after!r}"
            )
        if self.body not in _BODY_KINDS:
            raise FaultConfigError(f"fail_requests[].body must be one of {list(_BODY_KINDS)}, got {self.body!r}")
        self._pattern = _compile_route(self.route)

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with ``method`` on (raw, undecoded) ``path`` is covered by this rule."""
        return bool(self._pattern.fullmatch(f"{method.upper()} {path}"))

    @property
    def error_code(self) -> str:
        """The envelope ``error`` code used for this status."""
        return _STATUS_CODES[self.status]


def _compile_route(route: str) -> re.Pattern[str]:
    text = route.strip()
    if text == "*":
        return re.compile(r".*", re.DOTALL)
    method, _, path = text.partition(" ")
    if not path:  # just a path
        method, path = "*", text
    method_re = r"[A-Z]+" if method == "*" else re.escape(method.upper())
    parts: list[str] = []
    for token in re.split(r"(\{[^}/]*\}|\*)", path.strip()):
        if token == "*":
            parts.append(r".*")
        elif token.startswith("{") and token.endswith("}"):
            parts.append(r"[^/]+")
        else:
            parts.append(re.escape(token))
    return re.compile(method_re + " " + "".join(parts), re.DOTALL)


@dataclass
class Faults:
    """Host-wide (or per-run) fault switches. All default to off, i.e. a spec-canonical host.

    * ``drop_sse_after_events``: close each SSE connection abruptly after this many event frames.
    * ``drop_sse_probability`` / ``seed``: close abruptly after each frame with this probability.
    * ``fail_requests``: :class:`FailRule` list answering matching requests with 429/5xx.
    * ``latency_ms``: delay added before every response (inside the idempotency window).
    * ``malformed_sse_frame``: inject one non-JSON frame and one unknown-type frame per stream.
    * ``keepalive``: ``False`` sends no ``:keepalive`` comments (like the real hosts).
    * ``legacy_event_fields``: events carry ``seq``/``data`` instead of ``sequence``/``payload``.
    * ``sse_unavailable``: ``/events`` answers 404 so clients must fall back to polling.
    * ``omit_events_url``: create/fork responses leave out ``eventsUrl``/``statusUrl``.
    * ``duplicate_after_reconnect``: a resumed stream first re-sends the ``Last-Event-ID`` event.
    * ``waiting_status_only``: suspensions emit ``node.suspended`` but no ``interrupt.requested``
      (nor the legacy ``approval.requested``/``clarification.requested`` twins).
    * ``interrupt_token_shape``: where an external-event interrupt's signed token shows, as real hosts put it
      (canonically it reaches only the run's ``callbackUrl``). ``"reference-host"`` (the SQLite/Postgres
      reference hosts): ``interruptToken`` and ``callbackUrl`` in the ``node.suspended`` payload and in the
      snapshot's ``interrupt`` object. ``"app-backend"`` (a full application backend): only in the snapshot's
      ``interrupt`` object; the suspension is a ``node.suspended`` with just ``{interruptId, kind}`` and no
      ``interrupt.requested``.
    """

    drop_sse_after_events: int | None = None
    drop_sse_probability: float = 0.0
    seed: int | None = None
    fail_requests: list[FailRule] = field(default_factory=list)
    latency_ms: int = 0
    malformed_sse_frame: bool = False
    keepalive: bool = True
    legacy_event_fields: bool = False
    sse_unavailable: bool = False
    omit_events_url: bool = False
    duplicate_after_reconnect: bool = False
    waiting_status_only: bool = False
    interrupt_token_shape: str | None = None

    def __post_init__(self) -> None:
        self.fail_requests = [_as_rule(rule) for rule in self.fail_requests]
        _check_optional_int("drop_sse_after_events", self.drop_sse_after_events, minimum=0)
        if isinstance(self.drop_sse_probability, bool) or not isinstance(self.drop_sse_probability, (int, float)):
            raise FaultConfigError("drop_sse_probability must be a number between 0 and 1")
        if not 0.0 <= float(self.drop_sse_probability) <= 1.0:
            raise FaultConfigError(f"drop_sse_probability must be between 0 and 1, got {self.drop_sse_probability!r}")
        _check_optional_int("seed", self.seed, minimum=None)
        _check_optional_int("latency_ms", self.latency_ms, minimum=0)
        for name in (
            "malformed_sse_frame",
            "keepalive",
            "legacy_event_fields",
            "sse_unavailable",
            "omit_events_url",
            "duplicate_after_reconnect",
            "waiting_status_only",
        ):
            if not isinstance(getattr(self, name), bool):
                raise FaultConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.interrupt_token_shape not in (None, *INTERRUPT_TOKEN_SHAPES):
            raise FaultConfigError(
                f"interrupt_token_shape must be null or one of {list(INTERRUPT_TOKEN_SHAPES)}, "
                f"got {self.interrupt_token_shape!r}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Faults | None = None) -> Faults:
        """Build from JSON-like data; keys not given keep ``base``'s values (or the defaults).

        Unknown keys raise :class:`FaultConfigError` naming the key and listing the valid ones.
        """
        if not isinstance(data, dict):
            raise FaultConfigError("fault configuration must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultConfigError(f"unknown fault switch {unknown[0]!r}; valid switches: {sorted(known)}")
        start = copy.deepcopy(base) if base is not None else cls()
        try:
            return replace(start, **data)
        except TypeError as exc:  # pragma: no cover - defensive, keys were checked above
            raise FaultConfigError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (``fail_requests`` show their remaining ``count``)."""
        data = asdict(self)
        data["fail_requests"] = [
            {k: v for k, v in asdict(rule).items() if not k.startswith("_")} for rule in self.fail_requests
        ]
        return data

    def overlay(self, overrides: dict[str, Any]) -> Faults:
        """A copy of these faults with ``overrides`` applied (used for per-run faults)."""
        return Faults.from_dict(overrides, base=self)


def _as_rule(rule: Any) -> FailRule:
    if isinstance(rule, FailRule):
        return rule
    if isinstance(rule, dict):
        known = {f.name for f in fields(FailRule)}
        unknown = sorted(set(rule) - known)
        if unknown:
            raise FaultConfigError(f"unknown fail_requests key {unknown[0]!r}; valid keys: {sorted(known)}")
        return FailRule(**rule)
    raise FaultConfigError("fail_requests entries must be objects like {'route': 'POST /v1/runs', 'status': 503}")


def _check_optional_int(name: str, value: Any, minimum: int | None) -> None:
    if value is None and name != "latency_ms":
        return
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise FaultConfigError(f"{name} must be an integer{bound}, got {value!r}")


class FaultState:
    """The live fault configuration of one host plus the random source used by probabilistic faults."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = copy.deepcopy(faults) if faults is not None else Faults()
        self.run_overrides: dict[str, dict[str, Any]] = {}
        self.rng = random.Random(self.faults.seed)

    def set(self, faults: Faults) -> None:
        """Replace the host-wide faults (resets the random source to the new seed)."""
        self.faults = copy.deepcopy(faults)
        self.rng = random.Random(self.faults.seed)

    def set_run(self, run_id: str, overrides: dict[str, Any] | None) -> None:
        """Set (or with ``None`` clear) overrides for a run id or a workflow id (all its runs)."""
        if overrides is None:
            self.run_overrides.pop(run_id, None)
            return
        self.faults.overlay(overrides)  # validate now, fail early
        self.run_overrides[run_id] = dict(overrides)

    def for_run(self, run_id: str | None, workflow_id: str | None = None) -> Faults:
        """Effective faults of a run: host faults, then workflow-keyed, then run-keyed overrides."""
        merged: dict[str, Any] = {}
        for key in (workflow_id, run_id):
            if key is not None and key in self.run_overrides:
                merged.update(self.run_overrides[key])
        return self.faults.overlay(merged) if merged else self.faults

    def take_failure(self, method: str, path: str) -> FailRule | None:
        """If a fail rule matches this request and has budget left, consume one and return it."""
        for rule in self.faults.fail_requests:
            if rule.count > 0 and rule.matches(method, path):
                rule.count -= 1
                return rule
        return None

    def roll_drop(self, probability: float) -> bool:
        """One Bernoulli draw for ``drop_sse_probability`` (deterministic when a seed is set)."""
        return probability > 0.0 and self.rng.random() < probability
