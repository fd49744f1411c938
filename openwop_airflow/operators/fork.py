"""``OpenwopForkRunOperator``: fork an OpenWOP run (replay it, or branch from an event) and wait for the fork."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from airflow.providers.common.compat.sdk import AirflowException

from openwop_airflow.operators.base import BaseOpenwopRunOperator
from openwop_airflow.utils.arguments import json_object_argument, string_list_argument
from openwop_core import OpenwopClient


class OpenwopForkRunOperator(BaseOpenwopRunOperator):
    """Fork ``source_run_id`` into a new run and follow it exactly like
    :class:`~openwop_airflow.operators.run.OpenwopRunOperator` follows a new run (XComs, waiting,
    deferral, retries reattaching to the same fork, cancellation).

    :param source_run_id: The run to fork (templated).
    :param mode: ``"replay"`` re-executes from ``from_seq`` with the recorded history; ``"branch"`` starts
        a new branch from that point.
    :param from_seq: The event sequence to fork from (templated). Required with ``branch`` (checked when the
        DAG is parsed); with ``replay``, None means the host's default (0).
    :param configurable: Configuration for the fork (templated; ``branch`` only).
    :param tags: Tags of the fork (templated; ``branch`` only).
    :param metadata: Metadata of the fork (templated; ``branch`` only).
    """

    template_fields: Sequence[str] = (
        *BaseOpenwopRunOperator.template_fields,
        "source_run_id",
        "from_seq",
        "configurable",
        "tags",
        "metadata",
    )
    _request: dict[str, Any]
    template_fields_renderers = {"configurable": "json", "metadata": "json"}

    def __init__(
        self,
        *,
        source_run_id: str,
        mode: Literal["replay", "branch"] = "replay",
        from_seq: int | str | None = None,
        configurable: dict[str, Any] | str | None = None,
        tags: Sequence[str] | str | None = None,
        metadata: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("replay", "branch"):
            raise ValueError(f"mode must be 'replay' or 'branch', got {mode!r}.")
        if mode == "branch" and from_seq is None:
            raise ValueError(
                "mode='branch' needs from_seq: the event sequence to branch from (an integer, or a template that "
                "renders one); mode='replay' may leave it out."
            )
        self.source_run_id = source_run_id
        self.mode = mode
        self.from_seq = from_seq
        self.configurable = configurable
        self.tags = tags
        self.metadata = metadata

    def prepare(self, context: Any) -> None:
        """Check the rendered arguments (``from_seq`` may arrive as text from a template)."""
        from_seq = self.from_seq
        if isinstance(from_seq, str):
            from_seq = int(from_seq) if from_seq.strip().isdigit() else from_seq
        if from_seq is not None and (isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0):
            raise AirflowException(f"from_seq must be an event sequence (an integer >= 0), got {self.from_seq!r}.")
        if not isinstance(self.source_run_id, str) or not self.source_run_id.strip():
            raise AirflowException(f"source_run_id must be a run id, got {self.source_run_id!r}.")
        overlays = [name for name in ("configurable", "tags", "metadata") if getattr(self, name) is not None]
        if overlays and self.mode != "branch":
            raise AirflowException(f"{', '.join(overlays)} can only be changed with mode='branch' (mode is replay).")
        self._request = {
            "from_seq": from_seq,
            "configurable": json_object_argument("configurable", self.configurable),
            "metadata": json_object_argument("metadata", self.metadata),
            "tags": string_list_argument("tags", self.tags),
        }

    def start_run(self, client: OpenwopClient, idempotency_key: str) -> tuple[str, bool]:
        """``POST /v1/runs/{id}:fork`` under ``idempotency_key`` (whether a replayed fork is reattached is
        ``openwop_core.reattach``'s rule)."""
        forked = client.runs_fork(
            self.source_run_id.strip(), mode=self.mode, **self._request, idempotency_key=idempotency_key
        )
        return forked.run_id, forked.replayed

    def describe_start(self) -> str:
        """Names the source run in messages."""
        return f"a {self.mode} fork of OpenWOP run {self.source_run_id!r}"
