"""PostgreSQL under real faults on the shared server: event loops that end with a store still open,
backends terminated under a live pool (``pg_terminate_backend``, as a restart, a failover or
``idle_session_timeout`` would), bad input, and ``close()`` with calls in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from mastra_storage import BackendError
from mastra_storage.pg import PostgresStore
from mastra_storage.testing.samples import sample_thread, timed_messages

from .pg_server import PG_URL, drop_schema, new_schema


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = new_schema()
    yield name
    await drop_schema(name)


def pool_pids(store: PostgresStore) -> list[int]:
    """Server pids of the connections the store's pool holds open."""
    pool = store.memory._pool
    return [h._con.get_server_pid() for h in pool._holders if h._con is not None and not h._con.is_closed()]


async def terminate(pids: list[int]) -> int:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows = await conn.fetch("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
        return sum(1 for row in rows if row[0])
    finally:
        await conn.close()


def test_an_unclosed_store_does_not_break_the_next_event_loop() -> None:
    """A CLI or a Celery task calls ``asyncio.run`` twice and forgets ``close()`` the first time."""
    schema = new_schema()

    async def first() -> PostgresStore:
        store = PostgresStore(id="first", connection_string=PG_URL, schema_name=schema)
        await store.memory.save_thread(thread=sample_thread(id="from-first"))
        return store  # never closed: its pool belongs to a loop that is about to end

    async def second() -> None:
        store = PostgresStore(id="second", connection_string=PG_URL, schema_name=schema)
        assert await store.memory.get_thread_by_id(thread_id="from-first") is not None
        await store.memory.save_thread(thread=sample_thread(id="from-second"))
        await store.close()

    asyncio.run(first())
    asyncio.run(second())
    asyncio.run(second())
    asyncio.run(drop_schema(schema))


async def test_calls_after_idle_connections_were_terminated_all_succeed(schema: str) -> None:
    async with PostgresStore(id="idle", connection_string=PG_URL, schema_name=schema, min_size=4, max_size=4) as store:
        thread = await store.memory.save_thread(thread=sample_thread())
        await asyncio.gather(*(store.memory.get_thread_by_id(thread_id=thread.id) for _ in range(8)))
        pids = pool_pids(store)
        assert len(pids) == 4
        assert await terminate(pids) == 4
        outcomes = await asyncio.gather(
            *(store.memory.get_thread_by_id(thread_id=thread.id) for _ in range(50)),
            *(store.memory.save_messages(messages=timed_messages(thread, 1)) for _ in range(50)),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert not failures, failures[:3]
        assert (await store.memory.list_messages(thread_id=thread.id, per_page=1)).total == 50
        assert not set(pool_pids(store)) & set(pids)  # every dead connection was replaced


async def test_terminating_connections_during_a_workload_loses_no_acknowledged_write(schema: str) -> None:
    async with PostgresStore(id="kill", connection_string=PG_URL, schema_name=schema, min_size=2, max_size=4) as store:
        await store.init()
        acknowledged: list[str] = []
        stop = asyncio.Event()

        async def writer(k: int) -> None:
            for i in range(40):
                thread = await store.memory.save_thread(thread=sample_thread(id=f"w{k}-{i}"))
                await store.workflows.update_workflow_results(
                    workflow_name="wf", run_id=f"run{k}", step_id=f"s{i}", result={"i": i}, request_context={}
                )
                acknowledged.append(thread.id)

        async def killer() -> int:
            killed = 0
            while not stop.is_set():
                killed += await terminate(pool_pids(store))
                await asyncio.sleep(0.02)
            return killed

        kill = asyncio.create_task(killer())
        await asyncio.gather(*(writer(k) for k in range(6)))
        stop.set()
        assert await kill > 0
        assert len(acknowledged) == 240
    async with PostgresStore(id="check", connection_string=PG_URL, schema_name=schema) as store:
        for thread_id in acknowledged:
            assert await store.memory.get_thread_by_id(thread_id=thread_id) is not None
        for k in range(6):
            snapshot = await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id=f"run{k}")
            assert snapshot is not None and all(snapshot["context"][f"s{i}"] == {"i": i} for i in range(40))


async def test_bad_input_is_raised_at_once_not_retried(schema: str) -> None:
    async with PostgresStore(id="bad", connection_string=PG_URL, schema_name=schema) as store:
        calls = 0

        async def work(conn: Any) -> Any:
            nonlocal calls
            calls += 1
            return await conn.fetchval("SELECT $1::int", "not a number")  # asyncpg's DataError

        start = time.perf_counter()
        with pytest.raises(asyncpg.exceptions.DataError):
            await store.memory.run(work)
        assert calls == 1 and time.perf_counter() - start < 0.5


async def test_close_waits_for_calls_in_flight(schema: str) -> None:
    store = PostgresStore(id="close", connection_string=PG_URL, schema_name=schema, max_size=4)
    thread = await store.memory.save_thread(thread=sample_thread())
    batches = [timed_messages(thread, 50) for _ in range(10)]
    calls = [asyncio.create_task(store.memory.save_messages(messages=batch)) for batch in batches]
    await asyncio.sleep(0)  # the calls have started
    await store.close()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, list) and len(r) == 50 for r in results), results
    async with PostgresStore(id="after", connection_string=PG_URL, schema_name=schema) as fresh:
        assert (await fresh.memory.list_messages(thread_id=thread.id, per_page=1)).total == 500


async def test_close_timeout_ends_calls_that_outlast_it(schema: str) -> None:
    store = PostgresStore(id="slow", connection_string=PG_URL, schema_name=schema, close_timeout=0.2)
    await store.init()
    pool = store.memory._pool
    slow = asyncio.create_task(store.memory.run(lambda conn: conn.fetch("SELECT pg_sleep(5)")))
    await asyncio.sleep(0.2)  # the slow call holds a connection
    start = time.perf_counter()
    await store.close()
    assert time.perf_counter() - start < 2
    with pytest.raises(Exception) as err:
        await slow
    assert not isinstance(err.value, asyncio.CancelledError)
    # Nothing is left open on this side: every connection of the pool is closed.
    assert all(h._con is None or h._con.is_closed() for h in pool._holders)


async def test_a_store_waits_out_its_close_timeout_once_not_once_per_domain(schema: str) -> None:
    store = PostgresStore(id="stuck", connection_string=PG_URL, schema_name=schema, close_timeout=0.3)
    await store.init()  # every domain holds the pool
    thread = await store.memory.save_thread(thread=sample_thread())
    blocker = await asyncpg.connect(PG_URL)
    try:
        # Another session holds the thread's row lock: the store's update_thread waits for it.
        await blocker.execute("BEGIN")
        await blocker.execute(f'SELECT 1 FROM "{schema}".mastra_threads WHERE id = $1 FOR UPDATE', thread.id)
        stuck = asyncio.create_task(store.memory.update_thread(id=thread.id, title="t", metadata={}))
        await asyncio.sleep(0)
        assert store.memory.calls.count == 1  # the call has started
        start = time.perf_counter()
        await store.close()  # five domains close in turn over one pool
        elapsed = time.perf_counter() - start
        # 0.3 s for the calls, then 0.3 s for the pool to close; each domain waiting in turn made it 2.1 s
        assert elapsed < 0.3 * 3, elapsed
        with pytest.raises(BackendError):
            await stuck
    finally:
        await blocker.close()


def test_passwords_never_appear_in_a_repr() -> None:
    store = PostgresStore(id="secret", connection_string="postgresql://app:s3cr3t@db:5432/app")
    handle = store.handle
    for text in (repr(handle.settings), str(vars(handle)), repr(store.handle.settings)):
        assert "s3cr3t" not in text
    other = PostgresStore(id="secret2", host="db", database="app", user="app", password="s3cr3t")
    assert "s3cr3t" not in repr(other.handle.settings)
