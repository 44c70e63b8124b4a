"""The conformance suite against the real PostgreSQL server, each test in a throwaway schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mastra_storage.pg import PostgresStore
from mastra_storage.testing.suites import *  # noqa: F403 (every suite, collected by pytest)

from .pg_server import PG_URL, drop_schema, new_schema


@pytest.fixture
async def backend() -> AsyncIterator[PostgresStore]:
    schema = new_schema()
    store = PostgresStore(id="pg", connection_string=PG_URL, schema_name=schema, max_size=10)
    await store.init()
    yield store
    await store.close()
    await drop_schema(schema)


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[[str], Awaitable[PostgresStore]]]:
    made: list[tuple[PostgresStore, str]] = []

    async def make(name: str) -> PostgresStore:
        schema = new_schema()
        made.append((PostgresStore(id=name, connection_string=PG_URL, schema_name=schema, max_size=5), schema))
        return made[-1][0]

    yield make
    for store, schema in made:
        await store.close()
        await drop_schema(schema)
