"""The Python side of ``benchmarks/vs_mastra``: the workload of ``mastra_side.mjs``, operation for
operation and record for record, through mastra_storage.

Usage: ``python -m benchmarks.vs_mastra.python_side '<json plan>'`` (run.py writes the plan). Opens
the store (and seeds it when ``plan["seed"]``, untimed), prints ``ready``, then serves run.py: each
line read names an operation to time, answered by one JSON line ``{"op name": ops per second}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from mastra_storage.domains import MemoryStorage, ObservabilityStorage, ScoresStorage, WorkflowsStorage
from mastra_storage.types import Message, ScorePayload, SpanRecord, StorageResource, StorageThread

Op = Callable[[int], Awaitable[object]]


def open_store(plan: dict[str, Any]) -> Any:
    if plan["backend"] == "libsql":
        from mastra_storage.libsql import LibSQLStore

        return LibSQLStore(id="py", url=plan["url"])
    if plan["backend"] == "pg":
        from mastra_storage.pg import PostgresStore

        return PostgresStore(id="py", connection_string=plan["url"], schema_name=plan["schema"])
    from mastra_storage.dynamodb import DynamoDBStore

    return DynamoDBStore(
        id="py",
        table_name=plan["table"],
        region="us-east-1",
        endpoint_url=plan["url"],
        create_table=True,
        credentials={"aws_access_key_id": "local", "aws_secret_access_key": "local"},
    )


class Workload:
    """The records and operations, named as in ``mastra_side.mjs``."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.p = plan["prefix"]
        self.base = datetime.fromisoformat(plan["base"].replace("Z", "+00:00"))

    def at(self, ms: int) -> datetime:
        return self.base + timedelta(milliseconds=ms)

    def snapshot(self, run_id: str) -> dict[str, Any]:
        return {
            "runId": run_id,
            "status": "suspended",
            "value": {},
            "activePaths": [],
            "activeStepsPath": {},
            "suspendedPaths": {"step-19": [19]},
            "resumeLabels": {},
            "waitingPaths": {},
            "serializedStepGraph": [],
            "timestamp": int(self.base.timestamp() * 1000),
            "context": {
                f"step-{k}": {"status": "success", "output": {"value": k, "text": "x" * 200}} for k in range(20)
            },
        }

    def message(self, id: str, thread_id: str, ms: int) -> Message:
        return Message(
            id=id,
            thread_id=thread_id,
            resource_id=f"{self.p}user",
            role="user",
            type="v2",
            created_at=self.at(ms),
            content={"format": 2, "parts": [{"type": "text", "text": f"message {id} " * 8}]},
        )

    def score(self, scorer_id: str) -> ScorePayload:
        return ScorePayload(
            scorer_id=scorer_id,
            entity_id="agent",
            entity_type="AGENT",
            run_id="run",
            score=0.9,
            scorer={"id": scorer_id},
            entity={"id": "agent"},
            source="LIVE",
            input={"q": "hi"},
            output={"a": "hello"},
        )

    def spans(self, trace_id: str, ms: int) -> list[SpanRecord]:
        return [
            SpanRecord(
                trace_id=trace_id,
                span_id=f"s{k}",
                parent_span_id=None if k == 0 else "s0",
                name=f"span {k}",
                span_type="tool_call",
                is_event=False,
                started_at=self.at(ms + k),
                ended_at=self.at(ms + 1000),
                attributes={"k": k},
                input={"args": [k]},
                output={"ok": True},
            )
            for k in range(10)
        ]

    async def seed(self, store: Any) -> None:
        plan, p = self.plan, self.p
        for i in range(plan["threads"]):
            await store.memory.save_thread(
                thread=StorageThread(
                    id=f"{p}thread-{i}",
                    resource_id=f"{p}user",
                    title=f"thread {i}",
                    metadata={"i": i},
                    created_at=self.at(i),
                    updated_at=self.at(i),
                )
            )
        for i in range(0, plan["messages"], 100):
            await store.memory.save_messages(
                messages=[self.message(f"{p}msg-{i + k}", f"{p}thread-0", (i + k) * 10) for k in range(100)]
            )
        for i in range(plan["resources"]):
            await store.memory.save_resource(
                resource=StorageResource(
                    id=f"{p}res-{i}", working_memory="start", metadata={}, created_at=self.at(i), updated_at=self.at(i)
                )
            )
        for i in range(plan["runs"]):
            await store.workflows.persist_workflow_snapshot(
                workflow_name=f"{p}wf",
                run_id=f"{p}run-{i}",
                snapshot=self.snapshot(f"{p}run-{i}"),
                created_at=self.at(i),
                updated_at=self.at(i),
            )
        for _ in range(plan["scores"]):
            await store.scores.save_score(score=self.score(f"{p}scorer"))
        for i in range(plan["traces"]):
            await store.observability.batch_create_spans(spans=self.spans(f"{p}trace-{i}", i * 1000))

    def operations(self, store: Any) -> dict[str, Op]:
        plan, p = self.plan, self.p
        r = f"{p}r{plan['round']}-"
        memory: MemoryStorage = store.memory
        workflows: WorkflowsStorage = store.workflows
        scores: ScoresStorage = store.scores
        observability: ObservabilityStorage = store.observability
        n_msgs = plan["messages"]

        def save_thread(i: int) -> Awaitable[object]:
            return memory.save_thread(
                thread=StorageThread(
                    id=f"{r}st-{i}",
                    resource_id=f"{p}user2",
                    title="new",
                    metadata={"i": i},
                    created_at=self.at(i),
                    updated_at=self.at(i),
                )
            )

        return {
            "save_thread": save_thread,
            "save_messages_10": lambda i: memory.save_messages(
                messages=[self.message(f"{r}m-{i}-{k}", f"{p}thread-1", i * 10 + k) for k in range(10)]
            ),
            "list_last_20_messages": lambda i: memory.list_messages(
                thread_id=f"{p}thread-0", per_page=20, page=0, direction="DESC"
            ),
            "list_messages_with_include": lambda i: memory.list_messages(
                thread_id=f"{p}thread-0",
                per_page=20,
                page=0,
                direction="DESC",
                include=[
                    {"id": f"{p}msg-{100 + i % (n_msgs - 200)}", "with_previous_messages": 5, "with_next_messages": 5}
                ],
            ),
            "get_thread_by_id": lambda i: memory.get_thread_by_id(thread_id=f"{p}thread-{i % plan['threads']}"),
            "list_threads_page": lambda i: memory.list_threads(resource_id=f"{p}user", page=0, per_page=20),
            "update_working_memory": lambda i: memory.update_resource(
                resource_id=f"{p}res-{i % plan['resources']}", working_memory=f"working memory {i}"
            ),
            "persist_snapshot": lambda i: workflows.persist_workflow_snapshot(
                workflow_name=f"{p}wf2", run_id=f"{r}run-{i}", snapshot=self.snapshot(f"{r}run-{i}")
            ),
            "load_snapshot": lambda i: workflows.load_workflow_snapshot(
                workflow_name=f"{p}wf", run_id=f"{p}run-{i % plan['runs']}"
            ),
            "list_workflow_runs_page": lambda i: workflows.list_workflow_runs(
                workflow_name=f"{p}wf", page=0, per_page=20
            ),
            "list_workflow_runs_pages": lambda i: workflows.list_workflow_runs(
                workflow_name=f"{p}wf", page=i % 16, per_page=20
            ),
            "save_score": lambda i: scores.save_score(score=self.score(f"{p}scorer2")),
            "list_scores_by_scorer": lambda i: scores.list_scores_by_scorer_id(
                scorer_id=f"{p}scorer", page=0, per_page=20
            ),
            "batch_create_spans": lambda i: observability.batch_create_spans(spans=self.spans(f"{r}trace-{i}", i)),
            "get_trace": lambda i: observability.get_trace(trace_id=f"{p}trace-{i % plan['traces']}"),
        }


async def timed(n: int, concurrency: int, op: Op, seconds: float) -> float:
    """``n`` calls, or as many as fit in ``seconds`` (slow operations stay bounded); completed calls per second."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(k: int) -> None:
        nonlocal done
        for i in range(k, n, concurrency):
            if time.perf_counter() >= deadline:
                return
            await op(i)
            done += 1

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return done / (time.perf_counter() - start)


async def main(plan: dict[str, Any]) -> None:
    workload = Workload(plan)
    store = open_store(plan)
    await store.init()
    if plan["seed"]:
        await workload.seed(store)
    ops = workload.operations(store)

    async def measure(name: str) -> float:
        if name == "init":
            start = time.perf_counter()
            for _ in range(plan["inits"]):
                fresh = open_store(plan)
                await fresh.init()
                await fresh.close()
            return float(plan["inits"] / (time.perf_counter() - start))
        await ops[name](0)  # warm-up call, not timed
        return await timed(plan["n"][name], plan["concurrency"], ops[name], plan["seconds"])

    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    # stdin is read on a thread: idle between commands, the process takes no CPU from the other side.
    while name := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        print(json.dumps({name: await measure(name)}), flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
