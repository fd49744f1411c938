"""OpenWOP v1 client: sync and async, with retries, resumable event streams and a run waiter.

The Airflow provider (``openwop_airflow``) and the Prefect integration (``openwop_prefect``) are built on
this package; it imports neither. ``openwop_devhost`` holds a local OpenWOP host for tests.
"""

from __future__ import annotations

from . import resume
from ._base import InsecureTransportWarning
from ._version import __version__
from .aclient import AsyncOpenwopClient
from .client import OpenwopClient
from .errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    GoneError,
    IdempotencyKeyMismatchError,
    InterruptNotFoundError,
    InvalidArgumentError,
    InvalidRequestError,
    NotFoundError,
    OpenwopError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseFormatError,
    RunAlreadyActiveError,
    RunFailedError,
    ServerError,
    TransportError,
    UnsupportedFeatureError,
    WaitTimeoutError,
)
from .interrupt_watch import InterruptWatch, interrupt_is_open
from .models import (
    Artifact,
    BulkCancelResult,
    CancelResult,
    Discovery,
    ErrorInfo,
    EventPage,
    ForkResult,
    InterruptInfo,
    InterruptResolution,
    PendingInterrupt,
    RunCreated,
    RunEvent,
    RunSnapshot,
    RunStateChange,
    RunStatus,
    WebhookRegistration,
    WorkflowDefinition,
)
from .reattach import Attachment, ReattachPlan, astart_or_reattach, start_or_reattach
from .retry import RetryPolicy
from .tracing import TraceContext, current_trace_id, trace_operation
from .waiting import ProgressLines, RunTracker, WaitResult, describe_event
from .webhooks import WebhookVerificationError, sign_webhook, verify_webhook_signature

__all__ = [
    "ApiError",
    "Artifact",
    "AsyncOpenwopClient",
    "Attachment",
    "AuthenticationError",
    "BulkCancelResult",
    "CancelResult",
    "ConfigurationError",
    "ConflictError",
    "Discovery",
    "ErrorInfo",
    "EventPage",
    "ForkResult",
    "GoneError",
    "IdempotencyKeyMismatchError",
    "InsecureTransportWarning",
    "InterruptInfo",
    "InterruptNotFoundError",
    "InterruptResolution",
    "InterruptWatch",
    "InvalidArgumentError",
    "InvalidRequestError",
    "NotFoundError",
    "OpenwopClient",
    "OpenwopError",
    "PendingInterrupt",
    "PermissionDeniedError",
    "ProgressLines",
    "RateLimitedError",
    "ReattachPlan",
    "ResponseFormatError",
    "RetryPolicy",
    "RunAlreadyActiveError",
    "RunCreated",
    "RunEvent",
    "RunFailedError",
    "RunSnapshot",
    "RunStateChange",
    "RunStatus",
    "RunTracker",
    "ServerError",
    "TraceContext",
    "TransportError",
    "UnsupportedFeatureError",
    "WaitResult",
    "WaitTimeoutError",
    "WebhookRegistration",
    "WebhookVerificationError",
    "WorkflowDefinition",
    "__version__",
    "astart_or_reattach",
    "current_trace_id",
    "describe_event",
    "interrupt_is_open",
    "resume",
    "sign_webhook",
    "start_or_reattach",
    "trace_operation",
    "verify_webhook_signature",
]
