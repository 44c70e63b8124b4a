"""The common workload: its inputs, and the operations as mastra_storage runs them on any backend.

Each backend's benchmark pairs these operations with the raw driver doing the same work (its
floor); ``run_pairs`` times both sides, operation by operation, in one process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from mastra_storage.core.codec import utc_now
from mastra_storage.types import Message, ScorePayload, SpanRecord, StorageThread

from .harness import Result, paired_ops_per_second

Op = Callable[[int], Awaitable[object]]
# name -> (operation, how many calls make one measurement)
Operations = dict[str, tuple[Op, int]]


@dataclass
class Data:
    """Inputs built before any timing, the same for both sides."""

    n: int
    base: datetime = field(default_factory=utc_now)
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    snapshot: dict[str, Any] = field(default_factory=dict)
    score: ScorePayload | None = None
    span_batches: list[list[SpanRecord]] = field(default_factory=list)

    @property
    def spans_n(self) -> int:
        return self.n // 10


def make_data(n: int) -> Data:
    d = Data(n)
    d.batches = [
        [
            {
                "id": f"m{i}-{k}",
                "role": "user",
                "thread_id": "t0",
                "resource_id": "r",
                "content": {"format": 2, "parts": [{"type": "text", "text": f"message {i}-{k} " * 8}]},
                "created_at": d.base + timedelta(milliseconds=i * 10 + k),
            }
            for k in range(10)
        ]
        for i in range(3 * n)
    ]
    d.snapshot = {
        "status": "suspended",
        "context": {f"step-{k}": {"status": "success", "output": {"value": k, "text": "x" * 200}} for k in range(20)},
        "suspendedPaths": {"step-19": [19]},
        "activePaths": [],
    }
    d.score = ScorePayload(
        scorer_id="relevancy", entity_id="agent", entity_type="AGENT", run_id="run", score=0.9,
        scorer={"id": "relevancy"}, entity={"id": "agent"}, source="LIVE", input={"q": "hi"}, output={"a": "hello"},
    )  # fmt: skip
    d.span_batches = [
        [
            SpanRecord(
                trace_id=f"trace-{i}",
                span_id=f"s{k}",
                parent_span_id=None if k == 0 else "s0",
                name=f"span {k}",
                span_type="tool_call",
                started_at=d.base + timedelta(seconds=i, milliseconds=k),
                ended_at=d.base + timedelta(seconds=i + 1),
                attributes={"k": k},
                input={"args": [k]},
                output={"ok": True},
                metadata={"tenant": "t"},
            )
            for k in range(50)
        ]
        for i in range(3 * d.spans_n)
    ]
    return d


def include_target(i: int) -> str:
    return f"m{i % 100}-5"


def ours(store: Any, d: Data) -> Operations:
    """The workload through mastra_storage's public API."""
    memory, workflows, scores, observability = store.memory, store.workflows, store.scores, store.observability
    structs = [[Message(**m) for m in batch] for batch in d.batches]
    assert d.score is not None
    score = d.score

    async def save_thread(i: int) -> None:
        await memory.save_thread(thread=StorageThread(id=f"t{i}", resource_id="r", title="t", metadata={"i": i}))

    async def save_messages(i: int) -> None:
        await memory.save_messages(messages=structs[i])

    async def last20(i: int) -> None:
        await memory.list_messages(thread_id="t0", per_page=20, direction="DESC")

    async def with_include(i: int) -> None:
        await memory.list_messages(
            thread_id="t0",
            per_page=20,
            direction="DESC",
            include=[{"id": include_target(i), "with_previous_messages": 2, "with_next_messages": 2}],
        )

    async def persist(i: int) -> None:
        await workflows.persist_workflow_snapshot(workflow_name="wf", run_id=f"run-{i % 100}", snapshot=d.snapshot)

    async def load(i: int) -> None:
        await workflows.load_workflow_snapshot(workflow_name="wf", run_id=f"run-{i % 100}")

    async def save_score(i: int) -> None:
        await scores.save_score(score=score)

    async def list_scores(i: int) -> None:
        await scores.list_scores_by_scorer_id(scorer_id="relevancy", per_page=20)

    async def create_spans(i: int) -> None:
        await observability.batch_create_spans(spans=d.span_batches[i])

    async def get_trace(i: int) -> None:
        await observability.get_trace(trace_id=f"trace-{i % d.spans_n}")

    return operations(
        save_thread, save_messages, last20, with_include, persist, load, save_score, list_scores, create_spans,
        get_trace, d,
    )  # fmt: skip


def operations(
    save_thread: Op,
    save_messages: Op,
    last20: Op,
    with_include: Op,
    persist: Op,
    load: Op,
    save_score: Op,
    list_scores: Op,
    create_spans: Op,
    get_trace: Op,
    d: Data,
) -> Operations:
    """The workload's operations by name, in order (both sides build theirs with this)."""
    n, m = d.n, d.spans_n
    return {
        "save thread": (save_thread, n),
        "save 10 messages": (save_messages, n),
        "list last 20 messages": (last20, n),
        "list with include context": (with_include, n),
        "persist snapshot": (persist, n),
        "load snapshot": (load, n),
        "save score": (save_score, n),
        "list scores (20)": (list_scores, n),
        "batch-create 50 spans": (create_spans, m),
        "get trace (50 spans)": (get_trace, m),
    }


async def run_pairs(ours_ops: Operations, floor_ops: Operations) -> list[Result]:
    results = []
    for name, (op, count) in ours_ops.items():
        floor_op, _ = floor_ops[name]
        results.append(Result(name, *await paired_ops_per_second(op, floor_op, count)))
    return results


def score_fields(d: Data) -> dict[str, Any]:
    assert d.score is not None
    return msgspec.structs.asdict(d.score)
