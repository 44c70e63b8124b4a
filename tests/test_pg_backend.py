"""What only the PostgreSQL backend has: pools, round trips, query plans, migrations, concurrent init."""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import msgspec
import pytest

from mastra_storage import BackendError, StorageInitError, ValidationError
from mastra_storage._sql.schema import THREADS
from mastra_storage.core.coalesce import GROUP_LIMIT
from mastra_storage.core.codec import utc_now
from mastra_storage.pg import MemoryPG, PostgresStore, WorkflowsPG
from mastra_storage.pg.codec import ColumnCodec
from mastra_storage.testing.samples import (
    sample_message,
    sample_score,
    sample_span,
    sample_thread,
    timed_messages,
)
from mastra_storage.types import AgentVersion, StorageThread

from .pg_server import PG_URL, drop_schema, new_schema


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = new_schema()
    yield name
    await drop_schema(name)


async def test_caller_owned_pool_is_shared_and_left_open(schema: str) -> None:
    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=3)
    try:
        store = PostgresStore(id="owned", pool=pool, schema_name=schema)
        await store.init()
        assert store.memory._pool is pool and store.agents._pool is pool
        thread = await store.memory.save_thread(thread=sample_thread())
        await store.close()
        assert not pool._closed
        assert await pool.fetchval(f'SELECT COUNT(*) FROM "{schema}".mastra_threads WHERE id = $1', thread.id) == 1
    finally:
        await pool.close()


async def test_a_store_shares_its_pool_with_its_domains_only(schema: str) -> None:
    store = PostgresStore(id="one", connection_string=PG_URL, schema_name=schema, max_size=2)
    memory = MemoryPG(connection_string=PG_URL, schema_name=schema, max_size=2)
    workflows = WorkflowsPG(connection_string=PG_URL, schema_name=schema, max_size=2)
    await store.init()
    await memory.init()
    await workflows.init()
    try:
        assert store.memory._pool is store.workflows._pool is store.agents._pool
        # Standalone domain stores own their pools: nothing is shared behind the caller's back.
        assert memory._pool is not workflows._pool and memory._pool is not store.memory._pool
        thread = await store.memory.save_thread(thread=sample_thread())
        # Twenty concurrent calls through two domains never need more than the store's two connections.
        await asyncio.gather(
            *(store.memory.get_thread_by_id(thread_id=thread.id) for _ in range(10)),
            *(store.workflows.load_workflow_snapshot(workflow_name="wf", run_id=str(i)) for i in range(10)),
        )
        assert store.memory._pool.get_size() <= 2
    finally:
        await store.close()
        await memory.close()
        await workflows.close()


async def test_statement_cache_off_for_pgbouncer(schema: str) -> None:
    async with PostgresStore(id="pgb", connection_string=PG_URL, schema_name=schema, statement_cache_size=0) as store:
        thread = await store.memory.save_thread(thread=sample_thread())
        await store.memory.save_messages(messages=timed_messages(thread, 3))
        assert (await store.memory.list_messages(thread_id=thread.id)).total == 3


async def test_bad_configuration() -> None:
    with pytest.raises(ValidationError):
        PostgresStore(id="x", connection_string="")
    with pytest.raises(ValidationError):
        PostgresStore(id="x", connection_string=PG_URL, schema_name='bad"; DROP TABLE x; --')
    with pytest.raises(ValidationError):
        PostgresStore(id="x", host="127.0.0.1")
    with pytest.raises(ValidationError):
        PostgresStore(id="x", connection_string=PG_URL, min_size=5, max_size=2)


@contextlib.asynccontextmanager
async def logged_store(schema: str, size: int = 1) -> AsyncIterator[tuple[PostgresStore, list[str]]]:
    """An initialized store on a pool of ``size`` connections that logs every statement it sends."""
    queries: list[str] = []

    async def log_queries(conn: Any) -> None:
        # Only the statements on our tables: asyncpg's own type introspection and reset are not ours.
        conn.add_query_logger(lambda record: queries.append(record.query) if "mastra_" in record.query else None)

    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=size, init=log_queries)
    try:
        async with PostgresStore(id="logged", pool=pool, schema_name=schema) as store:
            yield store, queries
    finally:
        await pool.close()


async def test_an_up_to_date_init_is_one_query_on_one_connection(schema: str) -> None:
    async with PostgresStore(id="first", connection_string=PG_URL, schema_name=schema):
        pass  # creates and records the schema
    async with PostgresStore(id="again", connection_string=PG_URL, schema_name=schema) as store:
        assert store.handle.pool.get_size() == 1  # five concurrent ledger checks opened five
    async with logged_store(schema) as (store, queries):
        assert len(queries) == 1 and "mastra_storage_migrations" in queries[0], queries


GROUPED = 1 + math.ceil(15 / GROUP_LIMIT)  # 16 calls at once: the first alone, then groups


async def test_concurrent_point_reads_share_statements(schema: str) -> None:
    async with logged_store(schema, size=16) as (store, queries):
        threads = [await store.memory.save_thread(thread=sample_thread()) for _ in range(16)]
        for t in threads:
            await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id=t.id, snapshot={"n": t.id})
        queries.clear()
        got = await asyncio.gather(*(store.memory.get_thread_by_id(thread_id=t.id) for t in threads))
        # The first read goes out alone, the 15 that arrive while it runs in groups (16 without grouping).
        assert got == threads and len(queries) == GROUPED, queries
        queries.clear()
        loads = [store.workflows.load_workflow_snapshot(workflow_name="wf", run_id=t.id) for t in threads]
        assert await asyncio.gather(*loads) == [{"n": t.id} for t in threads] and len(queries) == GROUPED, queries
        spans = [sample_span(trace_id=f"trace-{t.id}") for t in threads]
        await store.observability.batch_create_spans(spans=spans)
        queries.clear()
        traces = await asyncio.gather(*(store.observability.get_trace(trace_id=s.trace_id) for s in spans))
        assert [t.spans[0].span_id if t else None for t in traces] == [s.span_id for s in spans]
        assert len(queries) == GROUPED, queries


async def test_concurrent_lists_of_one_page_share_its_statement(schema: str) -> None:
    async with logged_store(schema, size=16) as (store, queries):
        thread = await store.memory.save_thread(thread=sample_thread())
        await store.memory.save_messages(messages=timed_messages(thread, 30))
        for i in range(3):
            await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id=f"r{i}", snapshot={"i": i})
        queries.clear()
        lists = [store.memory.list_messages(thread_id=thread.id, per_page=20) for _ in range(8)]
        runs = [store.workflows.list_workflow_runs(workflow_name="wf", page=0, per_page=2) for _ in range(8)]
        pages = await asyncio.gather(*lists, *runs)
        # Per domain store, the first list alone, the 7 that arrived while it ran as one (16 without).
        assert len(queries) == 4, queries
        assert all(p == pages[0] for p in pages[:8]) and len(pages[0].messages) == 20 and pages[0].total == 30
        assert all(p == pages[8] for p in pages[8:]) and len(pages[8].runs) == 2 and pages[8].total == 3
        queries.clear()
        others = await asyncio.gather(
            *(store.memory.list_messages(thread_id=thread.id, page=p, per_page=20) for p in (0, 1))
        )
        assert [len(p.messages) for p in others] == [20, 10] and len(queries) == 2  # other pages: their own


async def test_an_updated_span_time_fills_its_plain_column_in_utc(schema: str) -> None:
    """Mastra reads the plain ``timestamp`` columns: a time given in another zone lands there as UTC
    wall time, at milliseconds, as a created span's does."""
    async with PostgresStore(id="tz", connection_string=PG_URL, schema_name=schema) as store:
        await store.observability.batch_create_spans(spans=[sample_span(trace_id="t", span_id="s")])
        ended = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
        await store.observability.update_span(trace_id="t", span_id="s", updates={"ended_at": ended})
        rows = await store.observability.fetch(
            f'SELECT "endedAt", "endedAtZ" FROM "{schema}".mastra_ai_spans WHERE "traceId" = \'t\''
        )
        assert rows[0][0] == datetime(2024, 5, 1, 10, 0, 0, 123000), rows
        assert rows[0][1] == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC), rows


async def test_a_created_span_time_fills_its_plain_column_in_utc(schema: str) -> None:
    """A created span goes out as the JSON its validation encoded, a time in another zone as it was
    given (the same instant): the plain column still holds the UTC wall time."""
    span = sample_span(trace_id="t", span_id="s")
    span.started_at = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2)))
    async with PostgresStore(id="tz", connection_string=PG_URL, schema_name=schema) as store:
        await store.observability.batch_create_spans(spans=[span])
        rows = await store.observability.fetch(
            f'SELECT "startedAt", "startedAtZ" FROM "{schema}".mastra_ai_spans WHERE "traceId" = \'t\''
        )
        assert rows[0][0] == datetime(2024, 5, 1, 10, 0, 0, 123000), rows
        assert rows[0][1] == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC), rows


async def test_concurrent_saves_share_statements(schema: str) -> None:
    async with logged_store(schema, size=16) as (store, queries):
        queries.clear()
        threads = [sample_thread() for _ in range(16)]
        await asyncio.gather(*(store.memory.save_thread(thread=t) for t in threads))
        # The first save goes out alone, the 15 that arrive while it runs in groups (16 without grouping).
        assert len(queries) == GROUPED, queries
        queries.clear()
        await asyncio.gather(*(store.scores.save_score(score=sample_score()) for _ in range(16)))
        assert len(queries) == GROUPED, queries
        queries.clear()
        wf = store.workflows
        await asyncio.gather(
            *(wf.persist_workflow_snapshot(workflow_name="w", run_id=t.id, snapshot={}) for t in threads)
        )
        assert len(queries) == GROUPED, queries
        assert (await store.memory.list_threads(per_page=False)).total == 16
        queries.clear()
        batches = [[sample_message(t) for _ in range(10)] for t in threads]
        await asyncio.gather(*(store.memory.save_messages(messages=b) for b in batches))
        assert len(queries) == GROUPED, queries
        queries.clear()
        await asyncio.gather(*(store.observability.batch_create_spans(spans=[sample_span()]) for _ in range(16)))
        assert len(queries) == GROUPED, queries
        listed = await store.memory.list_messages(thread_id=[t.id for t in threads], per_page=False)
        assert sorted(m.id for m in listed.messages) == sorted(m.id for b in batches for m in b)
        assert (await wf.list_workflow_runs(workflow_name="w")).total == 16


async def test_concurrent_resource_updates_share_statements_and_merge(schema: str) -> None:
    async with logged_store(schema, size=16) as (store, queries):
        mem = store.memory
        ids = [f"res-{i}" for i in range(16)]
        await mem.update_resource(resource_id=ids[0], working_memory="old", metadata={"keep": 1})
        queries.clear()
        got = await asyncio.gather(
            *(mem.update_resource(resource_id=rid, working_memory=f"wm {rid}", metadata={"n": rid}) for rid in ids)
        )
        # The first alone, the 15 that arrive while it runs in groups; each caller gets its own row.
        assert len(queries) == GROUPED, queries
        assert [(r.id, r.working_memory, r.metadata) for r in got] == [
            (rid, f"wm {rid}", {"keep": 1, "n": rid} if rid == ids[0] else {"n": rid}) for rid in ids
        ]
        assert [await mem.get_resource_by_id(resource_id=rid) for rid in ids] == got
        # Updates of one resource at once never share a statement: each merge lands, in order.
        await asyncio.gather(*(mem.update_resource(resource_id=ids[1], metadata={f"k{k}": k}) for k in range(6)))
        merged = await mem.get_resource_by_id(resource_id=ids[1])
        assert merged is not None and merged.metadata == {"n": ids[1], **{f"k{k}": k for k in range(6)}}
        assert merged.working_memory == f"wm {ids[1]}" and merged.updated_at > got[1].updated_at


async def test_a_group_writes_its_rows_in_key_order(schema: str) -> None:
    batches: list[list[str]] = []
    ordered_bumps: list[bool] = []  # per message statement: are the threads it bumps locked in id order?

    def record(q: Any) -> None:
        if "recordset" in q.query:  # a group's statement: its rows are the JSON array in $1
            batches.append([row.get("id") or row["spanId"] for row in msgspec.json.decode(q.args[0])])
        if "WITH saved" in q.query:
            ordered_bumps.append("ORDER BY id FOR UPDATE" in q.query)

    async def log(conn: Any) -> None:
        conn.add_query_logger(record)

    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=4, init=log)
    async with PostgresStore(id="order", pool=pool, schema_name=schema) as store:
        mem = store.memory
        ids = [f"t{i}" for i in range(9, 0, -1)]  # calls arrive in descending order
        await asyncio.gather(*(mem.save_thread(thread=sample_thread(id=i)) for i in ids))
        await asyncio.gather(*(mem.update_resource(resource_id=i, working_memory="w") for i in ids))
        thread = await mem.get_thread_by_id(thread_id="t1")
        assert thread is not None
        messages = [msgspec.structs.replace(sample_message(thread), id=i) for i in ids]
        await asyncio.gather(*(mem.save_messages(messages=[m]) for m in messages))
        threads = [await mem.save_thread(thread=sample_thread()) for _ in range(3)]
        await asyncio.gather(*(mem.save_messages(messages=[sample_message(t)]) for t in threads))
        spans = [sample_span(trace_id="trace", span_id=i) for i in ids]
        await asyncio.gather(*(store.observability.create_span(span=s) for s in spans))
        # Messages and spans are put in key order by the statement itself: a statement writing a
        # few rows into a fresh table puts them on one page, in the order it inserts them.
        messages_in = await pool.fetch(f'SELECT id FROM "{schema}".mastra_messages ORDER BY ctid')
        spans_in = await pool.fetch(f'SELECT "spanId" FROM "{schema}".mastra_ai_spans ORDER BY ctid')
    await pool.close()
    # Messages of one thread bump it without the extra lock; a statement bumping several threads
    # locks them in id order first.
    # (Logged as they complete: a lone call and the group it overlapped may finish in either order.)
    assert sorted(ordered_bumps) == [False, False, False, True], ordered_bumps
    # Rows that lock as they are written go in key order, whatever order the calls came in: two
    # statements in flight that share rows take their locks in the same order and cannot deadlock.
    grouped = [batch for batch in batches if len(batch) > 1]  # (a lone call's messages go as a batch of one)
    assert [grouped[i] for i in (0, 1)] == [sorted(ids[1:])] * 2, batches
    for inserted in (messages_in, spans_in):  # the group's rows (the first call's went alone, beside it)
        assert [row[0] for row in inserted if row[0] in ids[1:]] == sorted(ids[1:]), inserted


async def test_a_failing_save_in_a_group_fails_alone(schema: str) -> None:
    async with PostgresStore(id="isolated", connection_string=PG_URL, schema_name=schema) as store:
        # A server-side rule the SDK does not know of: the statement holding the row fails.
        async with store.handle.pool.acquire() as conn:
            await conn.execute(
                f"ALTER TABLE \"{schema}\".mastra_threads ADD CONSTRAINT no_reject CHECK (title <> 'reject')"
            )
        with pytest.raises(BackendError) as alone:
            await store.memory.save_thread(thread=sample_thread(title="reject"))
        threads = [sample_thread(title="reject" if i == 5 else f"t{i}") for i in range(12)]
        results = await asyncio.gather(*(store.memory.save_thread(thread=t) for t in threads), return_exceptions=True)
        assert [type(r) for r in results] == [StorageThread] * 5 + [type(alone.value)] + [StorageThread] * 6
        listed = await store.memory.list_threads(per_page=False)
        assert sorted(t.id for t in listed.threads) == sorted(t.id for i, t in enumerate(threads) if i != 5)


async def test_concurrent_first_calls_without_init_leave_the_pool_closable(schema: str) -> None:
    async with PostgresStore(id="first", connection_string=PG_URL, schema_name=schema):
        pass
    store = PostgresStore(id="lazy", connection_string=PG_URL, schema_name=schema, disable_init=True)
    await asyncio.gather(*(store.memory.get_thread_by_id(thread_id="none") for _ in range(10)))
    await store.close()
    assert store.handle.pool is None  # each first call attached once; close() released the pool


async def test_batches_are_single_statements(schema: str) -> None:
    async with logged_store(schema) as (store, queries):
        thread = await store.memory.save_thread(thread=sample_thread())
        queries.clear()
        await store.memory.save_messages(messages=timed_messages(thread, 10))
        assert len(queries) == 1
        fetched = await store.memory.get_thread_by_id(thread_id=thread.id)
        assert fetched is not None and fetched.updated_at > thread.updated_at
        queries.clear()
        # 1,201 spans: validated in three chunks, whose JSON goes out joined as one array
        await store.observability.batch_create_spans(spans=[sample_span() for _ in range(1201)])
        assert len(queries) == 1
        assert (await store.observability.list_traces(per_page=100)).total == 1201


async def test_batched_rows_come_back_as_they_went_in(schema: str) -> None:
    """Batches travel as one JSON document read by json_to_recordset: text that looks like JSON,
    escapes, non-ASCII, empty JSON fields and encoded columns (instructions) all come back unchanged."""
    texts = [
        'quote " and \\ back\\slash',
        "new\nline\ttab",
        "é ü 😀 \u2028",
        '{"looks": "like json"}',
        "null",
        "[1, 2]",
        "",
    ]
    async with PostgresStore(id="rt", connection_string=PG_URL, schema_name=schema) as store:
        thread = await store.memory.save_thread(thread=sample_thread(title='a "title"'))
        messages = [sample_message(thread, text=text, metadata={"t": text}) for text in texts]
        await store.memory.save_messages(messages=messages)
        page = await store.memory.list_messages(thread_id=thread.id, per_page=False)
        assert sorted(m.content["content"] for m in page.messages) == sorted(texts)
        assert {m.id: m for m in page.messages} == {m.id: m for m in messages}

        spans = [sample_span(name=text, attributes=None, input=None, output={"text": text}) for text in texts]
        await store.observability.batch_create_spans(spans=spans)
        for span in spans:
            got = await store.observability.get_span(trace_id=span.trace_id, span_id=span.span_id)
            assert got is not None and (got.name, got.attributes, got.input, got.output) == (
                span.name, None, None, {"text": span.name},
            )  # fmt: skip

        agent = await store.agents.create(agent={"id": "json-batch", "name": "a", "instructions": "x", "model": {}})
        instruction_forms: list[str | list[Any]] = ["plain text", [{"role": "system", "content": "be brief"}], "[not"]
        versions = [
            AgentVersion(
                id=f"v{n}",
                agent_id=agent.id,
                version_number=n,
                created_at=utc_now(),
                name="a",
                model={},
                instructions=instructions,
            )
            for n, instructions in enumerate(instruction_forms, 2)
        ]
        await store.agents.import_records(kind="versions", records=versions)
        for version in versions:
            assert await store.agents.get_version(id=version.id) == version

        # input/output are NOT NULL jsonb columns: an absent one is stored as JSON null
        score = await store.scores.save_score(score=sample_score(input=None, output=None))
        copy = msgspec.structs.replace(score, id=f"{score.id}-copy")
        await store.scores.import_records(kind="scores", records=[copy])
        assert await store.scores.get_score_by_id(id=copy.id) == copy


async def test_message_content_as_older_mastra_versions_kept_it(schema: str) -> None:
    """Rows of older Mastra versions hold content as a JSON string or as plain text (and no
    ``createdAtZ``): they read back as a v2 text part — in a page beside this SDK's rows, in an include
    window and by id. Content that is not JSON is a BackendError naming the row."""
    async with PostgresStore(id="legacy", connection_string=PG_URL, schema_name=schema) as store:
        thread = await store.memory.save_thread(thread=sample_thread())
        start = utc_now()
        legacy = [
            ("m-quoted", '"quoted \\"legacy\\" text"', 'quoted "legacy" text'),
            ("m-plain", "plain {text}", "plain {text}"),
        ]
        conn = await asyncpg.connect(PG_URL)
        try:
            for n, (id, stored, _) in enumerate(legacy):
                await conn.execute(
                    f'INSERT INTO "{schema}".mastra_messages (id, thread_id, content, role, type, "createdAt", '
                    '"createdAtZ", "resourceId") VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)',
                    id, thread.id, stored, "user", "v2", (start + timedelta(milliseconds=n)).replace(tzinfo=None),
                )  # fmt: skip
            await store.memory.save_messages(
                messages=[sample_message(thread, text="new", created_at=start + timedelta(milliseconds=5))]
            )
            wrapped = {id: {"format": 2, "content": text, "parts": [{"type": "text", "text": text}]}
                       for id, _, text in legacy}  # fmt: skip
            page = await store.memory.list_messages(thread_id=thread.id)
            assert [m.content for m in page.messages[:2]] == [wrapped["m-quoted"], wrapped["m-plain"]]
            assert page.messages[0].created_at == start and page.messages[0].resource_id is None
            assert page.messages[2].content["parts"] == [{"type": "text", "text": "new"}] and page.total == 3
            window = await store.memory.list_messages(
                thread_id=thread.id, per_page=0, include=[{"id": "m-plain", "with_previous_messages": 1}]
            )
            assert [m.id for m in window.messages] == ["m-quoted", "m-plain"]
            by_id = await store.memory.list_messages_by_id(message_ids=["m-plain", "m-quoted"])
            assert sorted(m.content["content"] for m in by_id) == sorted(text for _, _, text in legacy)

            await conn.execute(
                f'UPDATE "{schema}".mastra_messages SET content = $1 WHERE id = $2', "{not json", "m-plain"
            )
            for read in (
                store.memory.list_messages(thread_id=thread.id),
                store.memory.list_messages_by_id(message_ids=["m-plain"]),
            ):
                with pytest.raises(BackendError, match="m-plain"):
                    await read
        finally:
            await conn.close()


async def test_hot_queries_use_indexes(schema: str) -> None:
    async with PostgresStore(id="plans", connection_string=PG_URL, schema_name=schema) as store:
        base = utc_now() - timedelta(days=30)
        threads = [sample_thread(resource_id=f"res-{i % 50}") for i in range(500)]
        for t in threads:
            await store.memory.save_thread(thread=t)
        for t in threads[:50]:
            await store.memory.save_messages(messages=timed_messages(t, 40, start=base))
        for i in range(40):
            await store.observability.batch_create_spans(
                spans=[
                    sample_span(
                        started_at=base + timedelta(minutes=i, seconds=k), parent_span_id=None if k == 0 else "x"
                    )
                    for k in range(50)
                ]
            )
            await store.scores.save_score(score=sample_score(scorer_id=f"scorer-{i % 20}"))
            await store.workflows.persist_workflow_snapshot(
                workflow_name=f"wf-{i % 10}", run_id=f"run-{i}", snapshot={"status": "running"}
            )
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'SET search_path TO "{schema}"')
            await conn.execute("ANALYZE")
            await conn.execute("SET enable_seqscan = off")  # a usable index must exist for each query
            queries: dict[str, tuple[str, list[Any]]] = {
                "messages of a thread": (
                    "SELECT id FROM mastra_messages WHERE thread_id = ANY($1::text[]) "
                    'ORDER BY "createdAt" DESC LIMIT 20',
                    [[threads[0].id]],
                ),
                "threads of a resource": (
                    'SELECT id FROM mastra_threads WHERE "resourceId" = $1 ORDER BY "createdAt" DESC LIMIT 20',
                    ["res-1"],
                ),
                "runs of a workflow": (
                    'SELECT run_id FROM mastra_workflow_snapshot WHERE workflow_name = $1 ORDER BY "createdAt" DESC',
                    ["wf-1"],
                ),
                "runs of a resource": (  # the partial index (runs with a resource) serves "resourceId" = $1
                    'SELECT run_id FROM mastra_workflow_snapshot WHERE "resourceId" = $1 ORDER BY "createdAt" DESC',
                    ["res-1"],
                ),
                "scores of a scorer": (
                    'SELECT id FROM mastra_scorers WHERE "scorerId" = $1 ORDER BY "createdAt" DESC LIMIT 20',
                    ["scorer-1"],
                ),
                "root spans by start": (
                    'SELECT "spanId" FROM mastra_ai_spans WHERE "parentSpanId" IS NULL '
                    'ORDER BY "startedAt" DESC LIMIT 10',
                    [],
                ),
            }
            for name, (sql, args) in queries.items():
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
                assert "Seq Scan" not in plan and "Index" in plan, (name, plan)
                if name == "runs of a resource":
                    assert "mastra_workflow_snapshot_resourceid_createdat_idx" in plan, plan
        finally:
            await conn.close()


async def test_init_migrates_an_older_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(
            f'CREATE TABLE "{schema}".mastra_messages (id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, '
            'content TEXT NOT NULL, role TEXT NOT NULL, type TEXT NOT NULL, "createdAt" TIMESTAMP NOT NULL)'
        )
        await conn.execute(
            f'INSERT INTO "{schema}".mastra_messages VALUES ($1, $2, $3, $4, $5, $6)',
            "old-message",
            "old-thread",
            '{"format": 2, "parts": []}',
            "user",
            "v2",
            utc_now().replace(tzinfo=None),
        )
    finally:
        await conn.close()
    async with PostgresStore(id="old", connection_string=PG_URL, schema_name=schema) as store:
        (message,) = (await store.memory.list_messages(thread_id="old-thread")).messages
        assert message.id == "old-message" and message.resource_id is None
        thread = await store.memory.save_thread(thread=sample_thread(id="old-thread"))
        await store.memory.save_messages(messages=timed_messages(thread, 2))
        assert (await store.memory.list_messages(thread_id="old-thread", resource_id=thread.resource_id)).total == 2


_INIT = """
import asyncio, sys
from mastra_storage.pg import PostgresStore

async def main():
    async with PostgresStore(id="p", connection_string=sys.argv[1], schema_name=sys.argv[2]) as store:
        await store.memory.list_threads()

asyncio.run(main())
"""


async def test_two_processes_can_init_at_once(schema: str) -> None:
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _INIT, PG_URL, schema, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()


async def test_ssl_option_reaches_the_driver(schema: str) -> None:
    """The local server has no TLS: ``ssl="require"`` must fail to connect (so the option is used),
    with a wrapped error; ``ssl=False`` connects."""
    with pytest.raises(StorageInitError) as err:
        async with PostgresStore(id="tls", connection_string=PG_URL, schema_name=schema, ssl="require"):
            pass
    assert isinstance(next(iter(err.value.failures.values())), BackendError)
    async with PostgresStore(id="plain", connection_string=PG_URL, schema_name=schema, ssl=False) as store:
        assert (await store.memory.list_threads()).total == 0


async def test_a_step_result_is_one_statement(schema: str) -> None:
    async with logged_store(schema) as (store, queries):
        queries.clear()
        context = await store.workflows.update_workflow_results(
            workflow_name="wf", run_id="r", step_id="a", result={"status": "success"}, request_context={"x": 1}
        )
        assert context == {"a": {"status": "success"}} and len(queries) == 1  # a new run, made by the upsert
        queries.clear()
        context = await store.workflows.update_workflow_results(
            workflow_name="wf", run_id="r", step_id="b", result={"status": "failed"}, request_context={"y": 2}
        )
        assert context == {"a": {"status": "success"}, "b": {"status": "failed"}} and len(queries) == 1
        snapshot = await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id="r")
        assert snapshot is not None and snapshot["requestContext"] == {"x": 1, "y": 2}
        # A snapshot whose context is JSON null still takes the step (as apply_step_result does).
        await store.workflows.persist_workflow_snapshot(
            workflow_name="wf", run_id="n", snapshot={"runId": "n", "status": "running", "context": None}
        )
        context = await store.workflows.update_workflow_results(
            workflow_name="wf", run_id="n", step_id="c", result={"status": "success"}, request_context={}
        )
        assert context == {"c": {"status": "success"}}


async def test_a_message_page_with_its_total_and_includes_is_one_statement(schema: str) -> None:
    async with logged_store(schema) as (store, queries):
        thread = await store.memory.save_thread(thread=sample_thread())
        messages = timed_messages(thread, 30)
        await store.memory.save_messages(messages=messages)
        queries.clear()
        result = await store.memory.list_messages(
            thread_id=thread.id,
            per_page=5,
            direction="DESC",
            include=[{"id": messages[10].id, "with_previous_messages": 2, "with_next_messages": 1}],
        )
        assert len(queries) == 1
        assert result.total == 30
        ids = {m.id for m in result.messages}
        assert ids == {m.id for m in messages[8:12] + messages[25:]}  # the window and the newest page


async def test_the_last_messages_of_a_big_thread_walk_its_index(schema: str) -> None:
    """The statement the store sends for a thread's newest page, planned as PostgreSQL plans it on a
    table where that thread holds most rows: an index walk, no scan and sort of the whole thread."""
    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=1)
    sent: list[tuple[str, tuple[Any, ...]]] = []
    try:
        async with PostgresStore(id="plan", pool=pool, schema_name=schema) as store:
            big = await store.memory.save_thread(thread=sample_thread())
            for _ in range(20):
                await store.memory.save_messages(messages=timed_messages(big, 100))
            small = await store.memory.save_thread(thread=sample_thread())
            await store.memory.save_messages(messages=timed_messages(small, 200))
            async with pool.acquire() as conn:
                await conn.execute(f'ANALYZE "{schema}".mastra_messages')
                conn.add_query_logger(lambda r: sent.append((r.query, r.args)) if "mastra_messages" in r.query else 0)
            await store.memory.list_messages(thread_id=big.id, per_page=20, page=0, direction="DESC")
            ((sql, args),) = sent
            async with pool.acquire() as conn:
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
        page = plan[plan.index("Limit") :]  # the page (the total beside it may count however is cheapest)
        assert "Index Scan" in page and "Seq Scan" not in page and "top-N" not in page, plan
    finally:
        await pool.close()


def _rows_read(node: dict[str, Any]) -> int:
    """Rows the scans of an EXPLAIN (ANALYZE, FORMAT JSON) plan produced, over all their loops."""
    own = node["Actual Rows"] * node["Actual Loops"] if "Scan" in node["Node Type"] else 0
    return own + sum(_rows_read(child) for child in node.get("Plans", []))


async def test_include_windows_of_a_big_thread_read_only_their_rows(schema: str) -> None:
    """Each include window walks the thread's index from its target and stops at its limit: the
    statement sent reads a few rows, not every message of the thread (ordered above a join with
    the target, it sorted them all)."""
    sent: list[tuple[str, tuple[Any, ...]]] = []

    async def log(conn: Any) -> None:
        conn.add_query_logger(lambda q: sent.append((q.query, q.args)) if "tgt" in q.query else None)

    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=1, init=log)
    async with PostgresStore(id="plan", pool=pool, schema_name=schema) as store:
        thread = await store.memory.save_thread(thread=sample_thread())
        messages = timed_messages(thread, 2000)
        for i in range(0, 2000, 500):
            await store.memory.save_messages(messages=messages[i : i + 500])
        await store.memory.execute(f'ANALYZE "{schema}".mastra_messages')
        target = messages[1000].id
        include = [{"id": target, "with_previous_messages": 3, "with_next_messages": 2}]
        page = await store.memory.list_messages(thread_id=thread.id, per_page=0, include=include)
        assert [m.id for m in page.messages] == [m.id for m in messages[997:1003]]
        ((sql, args),) = sent
        plan = await store.memory.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
        assert _rows_read(msgspec.json.decode(plan[0][0])[0]["Plan"]) <= 20, plan[0][0]
    await pool.close()


def _subplan_loops(node: dict[str, Any]) -> list[int]:
    """How many times each SubPlan of an EXPLAIN (ANALYZE, FORMAT JSON) plan ran."""
    loops = [node["Actual Loops"]] if node.get("Parent Relationship") == "SubPlan" else []
    for child in node.get("Plans", []):
        loops += _subplan_loops(child)
    return loops


async def test_a_page_builds_the_json_of_its_own_rows_only(schema: str) -> None:
    sent: list[tuple[str, tuple[Any, ...]]] = []

    async def log(conn: Any) -> None:
        conn.add_query_logger(lambda q: sent.append((q.query, q.args)) if "LATERAL" in q.query else None)

    pool = await asyncpg.create_pool(PG_URL, min_size=1, max_size=1, init=log)
    async with PostgresStore(id="plan", pool=pool, schema_name=schema) as store:
        table = f'"{schema}".mastra_scorers'
        await store.scores.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")  # no statistics
        for _ in range(200):
            await store.scores.save_score(score=sample_score(scorer_id="s", input={"text": "x" * 3000}))
        page = await store.scores.list_scores_by_scorer_id(scorer_id="s", page=1, per_page=20)
        assert page.total == 200 and len(page.scores) == 20
        ((sql, args),) = sent
        plan = await store.scores.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
        # A score's JSON is built for the 20 rows of the page, not for the 200 the sort went through.
        loops = _subplan_loops(msgspec.json.decode(plan[0][0])[0]["Plan"])
        assert loops and max(loops) <= 20, loops
    await pool.close()


def test_a_column_codec_builds_no_json_object_so_takes_no_object_options() -> None:
    with pytest.raises(TypeError, match="no reads or computed"):
        ColumnCodec(StorageThread, THREADS, computed={"extra": "1"})


async def test_workflow_runs_read_as_columns_take_what_mastra_stored(schema: str) -> None:
    """Runs read as plain columns (``ColumnCodec``): a snapshot Mastra stored as a JSON string of
    JSON reads as the object, in a page and by id; a snapshot that is not an object is a
    BackendError naming the run."""
    async with PostgresStore(id="cols", connection_string=PG_URL, schema_name=schema) as store:
        wf = store.workflows
        table = f'"{schema}".mastra_workflow_snapshot'
        await wf.persist_workflow_snapshot(workflow_name="wf", run_id="ours", snapshot={"status": "running"})
        insert = (
            f'INSERT INTO {table} (workflow_name, run_id, snapshot, "createdAt", "updatedAt") '
            "VALUES ('wf', $1, $2::jsonb, now() AT TIME ZONE 'UTC' - interval '1 hour', now() AT TIME ZONE 'UTC')"
        )
        await wf.execute(insert, "stringified", msgspec.json.encode('{"status": "suspended"}').decode())
        page = await wf.list_workflow_runs(workflow_name="wf", page=0, per_page=10)
        assert page.total == 2
        assert [(r.run_id, r.snapshot, r.created_at.tzinfo is not None) for r in page.runs] == [
            ("ours", {"status": "running"}, True),
            ("stringified", {"status": "suspended"}, True),
        ]
        run = await wf.get_workflow_run_by_id(run_id="stringified", workflow_name="wf")
        assert run is not None and run.snapshot == {"status": "suspended"} and run.resource_id is None
        await wf.execute(insert, "not-an-object", "[1, 2]")
        with pytest.raises(BackendError, match="'wf', 'not-an-object'"):
            await wf.list_workflow_runs(workflow_name="wf")
        await wf.delete_workflow_run_by_id(run_id="not-an-object", workflow_name="wf")
        # A stored timestamp the records refuse is the row's fault: BackendError, not ValidationError.
        old = datetime(500, 1, 1)
        await wf.execute(f'UPDATE {table} SET "createdAt" = $1, "createdAtZ" = NULL WHERE run_id = $2', old, "ours")
        with pytest.raises(BackendError, match="'wf', 'ours'"):
            await wf.get_workflow_run_by_id(run_id="ours", workflow_name="wf")
