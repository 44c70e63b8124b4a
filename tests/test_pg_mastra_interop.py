"""On-disk compatibility with Mastra: its own ``@mastra/pg`` (installed from npm into a throwaway
directory, run on the machine's Node) and this package read each other's rows in one schema."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mastra_storage.core.codec import utc_now
from mastra_storage.pg import PostgresStore
from mastra_storage.testing.samples import sample_message, sample_score, sample_span, sample_thread

from .pg_server import PG_URL, drop_schema, new_schema

_HERE = Path(__file__).parent / "mastra_ts"


@pytest.fixture(scope="module")
def mastra_pg() -> Iterator[Path]:
    """A directory with @mastra/pg installed and the round-trip script."""
    workdir = Path(tempfile.mkdtemp(prefix="mastra-ts-"))
    for name in ("package.json", "roundtrip.mjs"):
        shutil.copy(_HERE / name, workdir / name)
    import subprocess

    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=workdir, check=True, capture_output=True
    )
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = new_schema()
    yield name
    await drop_schema(name)


async def _run_mastra(workdir: Path, schema: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        "roundtrip.mjs",
        PG_URL,
        schema,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_mastra_and_this_package_read_each_other(mastra_pg: Path, schema: str) -> None:
    async with PostgresStore(id="py", connection_string=PG_URL, schema_name=schema) as store:
        thread = await store.memory.save_thread(
            thread=sample_thread(id="py-thread", resource_id="py-user", metadata={"origin": "py", "n": 1})
        )
        base = utc_now() - timedelta(minutes=5)
        messages = [
            sample_message(thread, text=f"py text {i}", created_at=base + timedelta(seconds=i)) for i in range(3)
        ]
        await store.memory.save_messages(messages=messages)
        snapshot = {"runId": "py-run", "status": "suspended", "context": {"input": {"order": 7}}, "suspendedPaths": {}}
        await store.workflows.persist_workflow_snapshot(
            workflow_name="py-wf", run_id="py-run", snapshot=snapshot, resource_id="py-user"
        )
        score = await store.scores.save_score(score=sample_score(run_id="py-run", score=0.5))
        root = sample_span(trace_id="py-trace", span_id="py-root")
        child = sample_span(trace_id="py-trace", span_id="py-child", parent_span_id="py-root", name="child")
        await store.observability.batch_create_spans(spans=[root, child])

    read = await _run_mastra(mastra_pg, schema)

    # Mastra read what Python wrote.
    assert read["thread"]["id"] == "py-thread" and read["thread"]["resourceId"] == "py-user"
    assert read["thread"]["metadata"] == {"origin": "py", "n": 1}
    assert [m["id"] for m in read["messages"]] == [m.id for m in messages]
    assert [m["content"]["content"] for m in read["messages"]] == ["py text 0", "py text 1", "py text 2"]
    assert read["snapshot"] == snapshot
    assert [s["id"] for s in read["scores"]] == [score.id] and read["scores"][0]["score"] == 0.5
    assert sorted(s["spanId"] for s in read["trace"]["spans"]) == ["py-child", "py-root"]

    # Python reads what Mastra wrote.
    async with PostgresStore(id="py", connection_string=PG_URL, schema_name=schema) as store:
        ts_thread = await store.memory.get_thread_by_id(thread_id="ts-thread")
        assert ts_thread is not None and ts_thread.metadata == {"origin": "ts"} and ts_thread.title == "From TypeScript"
        assert ts_thread.created_at.isoformat() == "2026-01-02T03:04:05.678000+00:00"
        ts_messages = (await store.memory.list_messages(thread_id="ts-thread")).messages
        assert [m.id for m in ts_messages] == ["ts-message-1", "ts-message-2"]
        assert ts_messages[0].content["parts"] == [{"type": "text", "text": "ts text 1"}]
        assert [
            m.id for m in (await store.memory.list_messages(thread_id="ts-thread", metadata={"n": 2})).messages
        ] == ["ts-message-2"]
        run = await store.workflows.get_workflow_run_by_id(run_id="ts-run", workflow_name="ts-wf")
        assert run is not None and run.resource_id == "ts-user" and run.snapshot["status"] == "suspended"
        ts_scores = (await store.scores.list_scores_by_scorer_id(scorer_id="ts-scorer")).scores
        assert len(ts_scores) == 1 and ts_scores[0].score == 0.25 and ts_scores[0].source == "TEST"
        trace = await store.observability.get_trace(trace_id="ts-trace")
        assert trace is not None and [s.span_id for s in trace.spans] == ["ts-root", "ts-child"]
        assert trace.spans[0].attributes == {"a": 1} and trace.spans[1].parent_span_id == "ts-root"
        roots = await store.observability.list_traces(filters={"trace_id": "ts-trace"})
        assert [s.status for s in roots.spans] == ["success"]


async def test_a_schema_mastra_created_is_adopted_and_mastra_still_opens_it(mastra_pg: Path, schema: str) -> None:
    await _run_mastra(mastra_pg, schema)  # Mastra's own init: its tables, no ledger
    store = PostgresStore(id="py", connection_string=PG_URL, schema_name=schema)
    try:
        planned = await store.migrate(dry_run=True)
        assert {(s.domain, s.version) for s in planned} == {
            (d, v) for d in ("memory", "workflows", "scores", "observability", "agents") for v in (1, 2)
        } | {("workflows", 3)}
        memory_tables = next(s for s in planned if (s.domain, s.version) == ("memory", 1))
        assert not any("CREATE TABLE" in sql and "mastra_threads " in sql for sql in memory_tables.statements)
        await store.init()  # adopts: the ledger starts, Mastra's rows stay
        assert await store.migrate(dry_run=True) == []
        thread = await store.memory.get_thread_by_id(thread_id="ts-thread")
        assert thread is not None and thread.title == "From TypeScript"
    finally:
        await store.close()
    again = await _run_mastra(mastra_pg, schema)  # and Mastra opens the adopted schema as before
    assert again["thread"] is None  # it ran to the end (no py-thread here: Python wrote none)
