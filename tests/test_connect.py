"""``connect(url)`` opens the backend a URL names, on the real engines, and never shows a secret."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mastra_storage import ValidationError, connect
from mastra_storage.clickhouse import ClickhouseStore
from mastra_storage.dynamodb import DynamoDBStore
from mastra_storage.libsql import LibSQLStore
from mastra_storage.pg import PostgresStore
from mastra_storage.testing.samples import sample_span, sample_thread

from .chdb_engine import chdb_path
from .dynamodb_server import CREDENTIALS, DYNAMODB_URL, drop_table, new_table
from .pg_server import PG_URL, drop_schema, new_schema


async def test_libsql_urls(tmp_path: Path) -> None:
    for url in (f"file:{tmp_path / 'c.db'}", ":memory:"):
        store = connect(url)
        assert isinstance(store, LibSQLStore)
        async with store:
            thread = await store.memory.save_thread(thread=sample_thread())
            assert await store.memory.get_thread_by_id(thread_id=thread.id) == thread


async def test_postgresql_url_with_a_schema() -> None:
    schema = new_schema()
    try:
        store = connect(f"{PG_URL}?schema={schema}", id="mine")
        assert isinstance(store, PostgresStore) and store.id == "mine" and store.memory.schema == schema
        async with store:
            thread = await store.memory.save_thread(thread=sample_thread())
            assert await store.memory.get_thread_by_id(thread_id=thread.id) == thread
    finally:
        await drop_schema(schema)


async def test_dynamodb_url() -> None:
    table = new_table()
    store = connect(
        f"dynamodb://{table}?region=us-east-1&endpoint={DYNAMODB_URL}&create_table=true", credentials=CREDENTIALS
    )
    assert isinstance(store, DynamoDBStore) and store.connection.table == table
    async with store:
        thread = await store.memory.save_thread(thread=sample_thread())
        assert await store.memory.get_thread_by_id(thread_id=thread.id) == thread
    await drop_table(table)


async def test_chdb_url() -> None:
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = connect(f"chdb://{chdb_path()}?database={database}")
    assert isinstance(store, ClickhouseStore)
    async with store:
        span = sample_span()
        await store.observability.create_span(span=span)
        assert await store.observability.get_span(trace_id=span.trace_id, span_id=span.span_id) is not None
        await store.transport.command(f"DROP DATABASE IF EXISTS `{database}`")


def test_bad_urls_and_secrets() -> None:
    with pytest.raises(ValidationError) as err:
        connect("mysql://root:s3cr3t@db/app")
    assert "s3cr3t" not in str(err.value) and "***" in str(err.value)
    with pytest.raises(ValidationError):
        connect("dynamodb://table?colour=blue")
    with pytest.raises(ValidationError):
        connect("")
    store = connect("postgresql://app:s3cr3t@db:5432/app?schema=x")
    assert isinstance(store, PostgresStore) and "s3cr3t" not in repr(store.handle.settings)
    remote = connect("libsql://db.example.test?authToken=t0ken")
    assert isinstance(remote, LibSQLStore) and "t0ken" not in repr(remote.handle.settings)
