"""``DynamoDBStore``: every domain in one DynamoDB table, over one client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..backend import BackendStore
from .agents import AgentsDynamoDB
from .connection import Connection, DynamoSettings
from .memory import MemoryDynamoDB
from .observability import ObservabilityDynamoDB
from .scores import ScoresDynamoDB
from .workflows import WorkflowsDynamoDB


class DynamoDBStore(BackendStore):
    """All five domains in one table of the single-table layout of docs/dynamodb.md.

    ``region``, ``endpoint_url`` and ``credentials`` (boto3's spelling) default to the standard AWS
    environment and config chain. ``create_table=True`` creates the table and its GSIs when missing
    (development); otherwise ``init()`` checks them and says what is missing. ``ttl`` sets per-entity
    expiry (API.md §3.6). ``connect_timeout`` / ``read_timeout`` (seconds, per HTTP attempt) and
    ``max_attempts`` bound how long a call waits on an unreachable or frozen endpoint;
    ``close()`` waits up to ``close_timeout`` seconds for calls in flight.
    """

    def __init__(
        self,
        *,
        id: str,
        table_name: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials: Mapping[str, str] | None = None,
        ttl: Mapping[str, Any] | None = None,
        create_table: bool = False,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
        max_attempts: int = 3,
        close_timeout: float = 10.0,
        disable_init: bool = False,
    ) -> None:
        self.connection = Connection(
            DynamoSettings(
                table_name, region, endpoint_url, credentials, connect_timeout, read_timeout, max_attempts,
                close_timeout,
            )
        )  # fmt: skip
        options: dict[str, Any] = {"connection": self.connection, "ttl": ttl, "create_table": create_table,
                                   "disable_init": disable_init}  # fmt: skip
        self.memory = MemoryDynamoDB(**options)
        self.workflows = WorkflowsDynamoDB(**options)
        self.scores = ScoresDynamoDB(**options)
        self.observability = ObservabilityDynamoDB(**options)
        self.agents = AgentsDynamoDB(**options)
        super().__init__(
            id=id,
            stores={
                "memory": self.memory,
                "workflows": self.workflows,
                "scores": self.scores,
                "observability": self.observability,
                "agents": self.agents,
            },
            disable_init=disable_init,
        )

    async def close(self) -> None:
        await super().close()
        await self.connection.close()
