"""Route matching on the raw request path, so ids are decoded as single path segments.

Starlette matches on the percent-decoded path, where an encoded ``/`` in a run id would split the
segment and ``:fork`` would be part of the id. Here each raw segment is matched literally (the
colon verb is literal path text) and only parameter segments are percent-decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from ..errors import ApiError


@dataclass(frozen=True)
class RouteSpec:
    """One endpoint: method, path template, handler name and access rules."""

    method: str
    template: str
    name: str
    scopes: tuple[str, ...] = ()
    public: bool = False
    admin: bool = False
    #: Serves a human-readable HTML page to browsers (``Accept`` prefers text/html); see ``pages.py``.
    page: bool = False
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.template.strip("/").split("/")))

    @property
    def mutating(self) -> bool:
        """Whether the endpoint changes state (and so honours ``Idempotency-Key``)."""
        return self.method in ("POST", "PUT", "PATCH", "DELETE")

    def match(self, raw_segments: list[str]) -> dict[str, str] | None:
        """Path parameters if the raw segments fit this template, else ``None``."""
        if len(raw_segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, raw in zip(self.segments, raw_segments, strict=True):
            if pattern.startswith("{"):
                name, _, verb = pattern[1:].partition("}")
                if verb:  # "{runId}:fork"
                    if not raw.endswith(verb) or len(raw) == len(verb):
                        return None
                    raw = raw[: -len(verb)]
                if not raw:
                    return None
                value = unquote(raw)
                if len(value) > 1024:
                    return None
                params[name] = value
            elif pattern != raw:
                return None
        return params


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/.well-known/openwop", "discovery", public=True),
    RouteSpec("GET", "/v1/openapi.json", "openapi", public=True),
    RouteSpec("GET", "/v1/workflows/{workflowId}", "get_workflow", ("manifest:read",)),
    RouteSpec("POST", "/v1/runs", "create_run", ("runs:create",)),
    RouteSpec("POST", "/v1/runs:bulk-cancel", "bulk_cancel", ("runs:cancel",)),
    RouteSpec("POST", "/v1/runs/{runId}:cancel", "cancel_run", ("runs:cancel",)),
    RouteSpec("POST", "/v1/runs/{runId}:pause", "pause_run", ("runs:cancel",)),
    RouteSpec("POST", "/v1/runs/{runId}:resume", "resume_run", ("runs:cancel",)),
    RouteSpec("POST", "/v1/runs/{runId}:fork", "fork_run", ("runs:create", "runs:read")),
    RouteSpec("GET", "/v1/runs/{runId}", "get_run", ("runs:read",), page=True),
    RouteSpec("POST", "/v1/runs/{runId}/cancel", "cancel_run", ("runs:cancel",)),
    RouteSpec("GET", "/v1/runs/{runId}/events", "stream_events", ("runs:read",)),
    RouteSpec("GET", "/v1/runs/{runId}/events/poll", "poll_events", ("runs:read",)),
    RouteSpec("POST", "/v1/runs/{runId}/interrupts/{nodeId}", "resolve_by_node", ("approvals:respond",)),
    RouteSpec("GET", "/v1/runs/{runId}/artifacts/{artifactId}", "get_artifact", ("artifacts:read",)),
    RouteSpec("GET", "/v1/interrupts/{token}", "inspect_by_token", public=True),
    RouteSpec("POST", "/v1/interrupts/{token}", "resolve_by_token", public=True),
    RouteSpec("POST", "/v1/webhooks", "register_webhook", ("webhooks:manage",)),
    RouteSpec("DELETE", "/v1/webhooks/{webhookId}", "delete_webhook", ("webhooks:manage",)),
    RouteSpec("GET", "/_devhost/runs/{runId}/interrupts", "admin_interrupts", ("devhost:admin",), admin=True),
    RouteSpec("GET", "/_devhost/faults", "admin_get_faults", ("devhost:admin",), admin=True),
    RouteSpec("POST", "/_devhost/faults", "admin_set_faults", ("devhost:admin",), admin=True),
    RouteSpec("POST", "/_devhost/runs/{runId}/faults", "admin_set_run_faults", ("devhost:admin",), admin=True),
)

_SERVED_ROOTS = (".well-known", "v1", "_devhost")


def split_raw_path(raw_path: str) -> list[str]:
    """Raw (still percent-encoded) path segments without the leading slash."""
    return raw_path.split("?", 1)[0].lstrip("/").split("/")


def resolve(method: str, raw_path: str) -> tuple[RouteSpec, dict[str, str]]:
    """Find the route for a request, or raise the matching 400/404/405 error envelope."""
    segments = split_raw_path(raw_path)
    allowed: list[str] = []
    for route in ROUTES:
        params = route.match(segments)
        if params is None:
            continue
        if route.method == method:
            return route, params
        allowed.append(route.method)
    if allowed:
        methods = sorted(set(allowed))
        raise ApiError(
            405,
            "method_not_allowed",
            f"{method} is not supported on {raw_path.split('?', 1)[0]}; use {', '.join(methods)}.",
            {"allowed": methods},
            {"Allow": ", ".join(methods)},
        )
    root = segments[0] if segments else ""
    if root not in _SERVED_ROOTS and root != "" and not (root.startswith("v") and root[1:].isdigit()):
        # ``/prefix/v1/runs``: a client configured with a path prefix this host does not have
        rest = segments[segments.index("v1") :] if "v1" in segments else ["v1", *segments]
        raise ApiError(
            400,
            "version_required",
            f"This is an OpenWOP v1 host served at its root: use /{'/'.join(rest)} "
            "(discovery is at /.well-known/openwop).",
            {"protocolVersions": ["1.0"]},
        )
    raise ApiError(
        404,
        "not_found",
        f"No route for {method} {raw_path.split('?', 1)[0]} (discovery is at /.well-known/openwop).",
    )
