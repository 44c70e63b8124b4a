"""The conformance suite against DynamoDB Local, each test on its own table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mastra_storage.dynamodb import DynamoDBStore
from mastra_storage.testing import (
    AgentsConformance,
    CompositeConformance,
    MemoryConformance,
    ObservabilityConformance,
    ScoresConformance,
    WorkflowsConformance,
)

from .dynamodb_server import CREDENTIALS, DYNAMODB_URL, drop_table, new_table


def _store(name: str, table: str) -> DynamoDBStore:
    return DynamoDBStore(
        id=name, table_name=table, endpoint_url=DYNAMODB_URL, credentials=CREDENTIALS, create_table=True
    )


@pytest.fixture
async def backend() -> AsyncIterator[DynamoDBStore]:
    table = new_table()
    store = _store("dynamodb", table)
    await store.init()
    yield store
    await store.close()
    await drop_table(table)


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[[str], Awaitable[DynamoDBStore]]]:
    made: list[tuple[DynamoDBStore, str]] = []

    async def make(name: str) -> DynamoDBStore:
        table = new_table()
        made.append((_store(name, table), table))
        return made[-1][0]

    yield make
    for store, table in made:
        await store.close()
        await drop_table(table)


class TestMemory(MemoryConformance):
    pass


class TestWorkflows(WorkflowsConformance):
    pass


class TestScores(ScoresConformance):
    pass


class TestObservability(ObservabilityConformance):
    pass


class TestAgents(AgentsConformance):
    pass


class TestComposite(CompositeConformance):
    pass
