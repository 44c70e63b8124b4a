"""The conformance suite against DynamoDB Local, each test on an empty table of its own (from the
pool in dynamodb_server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mastra_storage.dynamodb import DynamoDBStore
from mastra_storage.testing.suites import *  # noqa: F403 (every suite, collected by pytest)

from .dynamodb_server import CREDENTIALS, DYNAMODB_URL, borrow_table, return_table


def _store(name: str, table: str) -> DynamoDBStore:
    return DynamoDBStore(
        id=name, table_name=table, endpoint_url=DYNAMODB_URL, credentials=CREDENTIALS, create_table=True
    )


async def _give_back(store: DynamoDBStore, table: str) -> None:
    await store.dangerously_clear_all()  # creates the table first if the test never used the store
    await store.close()
    return_table(table)


@pytest.fixture
async def backend() -> AsyncIterator[DynamoDBStore]:
    table = borrow_table()
    store = _store("dynamodb", table)
    await store.init()
    yield store
    await _give_back(store, table)


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[[str], Awaitable[DynamoDBStore]]]:
    made: list[tuple[DynamoDBStore, str]] = []

    async def make(name: str) -> DynamoDBStore:
        table = borrow_table()
        made.append((_store(name, table), table))
        return made[-1][0]

    yield make
    for store, table in made:
        await _give_back(store, table)
