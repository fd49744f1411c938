"""Deterministic graph walk: which node runs next, given the outcomes of the nodes so far.

Nodes run one at a time in readiness order. When a node ends (``success`` or ``failed``) each
outgoing edge fires if its trigger rule accepts that outcome. An ``any_*`` edge makes its target
ready at once; ``all_*`` edges make the target ready once every incoming ``all_*`` edge has fired
(then the marks reset, which is what lets loops such as reject -> revise -> gate run again).
A failure that no edge handles fails the run. The walk is pure state, so a fork can rebuild it by
replaying the recorded node outcomes of the inherited event prefix.
"""

from __future__ import annotations

import contextlib
from collections import deque

from ..workflows.model import TRIGGER_RULES, WorkflowDef


class GraphWalk:
    """Ready-queue state of one run over one workflow graph."""

    def __init__(self, workflow: WorkflowDef) -> None:
        self._workflow = workflow
        self._outgoing: dict[str, list[tuple[int, str, str]]] = {node.id: [] for node in workflow.nodes}
        self._all_incoming: dict[str, set[int]] = {node.id: set() for node in workflow.nodes}
        for index, edge in enumerate(workflow.edges):
            self._outgoing[edge.source].append((index, edge.target, edge.trigger_rule))
            if TRIGGER_RULES[edge.trigger_rule][1]:
                self._all_incoming[edge.target].add(index)
        self._fired: dict[str, set[int]] = {node.id: set() for node in workflow.nodes}
        self._ready: deque[str] = deque(workflow.entry_nodes)
        self.executed: set[str] = set()

    def next_ready(self) -> str | None:
        """Pop the next node to execute, or ``None`` when nothing is ready."""
        return self._ready.popleft() if self._ready else None

    def push_front(self, node_id: str) -> None:
        """Put a node back at the head of the queue (it was popped but not executed)."""
        if node_id not in self._ready:
            self._ready.appendleft(node_id)

    def discard(self, node_id: str) -> None:
        """Remove ``node_id`` from the ready queue (used when replaying a recorded prefix)."""
        with contextlib.suppress(ValueError):
            self._ready.remove(node_id)

    def record(self, node_id: str, outcome: str) -> bool:
        """Apply a node outcome (``"success"``/``"failed"``); return whether any edge fired."""
        self.executed.add(node_id)
        fired_any = False
        for index, target, rule in self._outgoing[node_id]:
            outcomes, wait_all = TRIGGER_RULES[rule]
            if outcome not in outcomes:
                continue
            fired_any = True
            if not wait_all:
                self._schedule(target)
                continue
            marks = self._fired[target]
            marks.add(index)
            if marks >= self._all_incoming[target]:
                marks.clear()
                self._schedule(target)
        return fired_any

    def never_executed(self) -> list[str]:
        """Nodes that have not run at all, in declaration order (reported as skipped at the end)."""
        return [node.id for node in self._workflow.nodes if node.id not in self.executed]

    def _schedule(self, node_id: str) -> None:
        if node_id not in self._ready:
            self._ready.append(node_id)
