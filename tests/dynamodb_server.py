"""DynamoDB Local (Amazon's real implementation, started by scripts/services.sh) and the tables the
tests use.

Creating and deleting a table with four GSIs costs DynamoDB Local ~0.4 s, so tests borrow tables
from a pool: a table comes back emptied by the store's own ``dangerously_clear_all`` and is reused."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mastra_storage.dynamodb import DynamoDBStore

DYNAMODB_URL = os.environ.get("DYNAMODB_URL", "http://127.0.0.1:8000")
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}

_free: list[str] = []


def new_table() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


def borrow_table() -> str:
    """A table name from the pool (an empty, existing table) or a new one the store will create."""
    return _free.pop() if _free else new_table()


def return_table(name: str) -> None:
    """Gives back a table the borrower has emptied."""
    _free.append(name)


async def drop_table(name: str) -> None:
    import aioboto3

    async with aioboto3.Session().client(
        "dynamodb", region_name="us-east-1", endpoint_url=DYNAMODB_URL, **CREDENTIALS
    ) as client:
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            await client.delete_table(TableName=name)


async def requests_sent(store: DynamoDBStore) -> Counter[str]:
    """Counts every request the store's client sends from now on, by operation name."""
    sent: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        sent[model.name] += 1

    client = await store.connection.client()
    client.meta.events.register("before-call.dynamodb.*", count)
    return sent
