"""``DynamoDBStore``: every domain in one DynamoDB table, over one client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from ..backend import BackendStore, Check
from .agents import AgentsDynamoDB
from .connection import Connection, DynamoOptions, DynamoSettings
from .memory import MemoryDynamoDB
from .observability import ObservabilityDynamoDB
from .scores import ScoresDynamoDB
from .table import table_problems
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

    memory: MemoryDynamoDB
    workflows: WorkflowsDynamoDB
    scores: ScoresDynamoDB
    observability: ObservabilityDynamoDB
    agents: AgentsDynamoDB

    def __init__(
        self,
        *,
        id: str,
        ttl: Mapping[str, Any] | None = None,
        create_table: bool = False,
        disable_init: bool = False,
        **options: Unpack[DynamoOptions],
    ) -> None:
        # The store owns its client and hands it to its domain stores.
        self.connection = Connection(DynamoSettings(**options))
        domains = (MemoryDynamoDB, WorkflowsDynamoDB, ScoresDynamoDB, ObservabilityDynamoDB, AgentsDynamoDB)
        stores = [
            cls(connection=self.connection, ttl=ttl, create_table=create_table, disable_init=disable_init)
            for cls in domains
        ]
        super().__init__(id=id, stores=stores, disable_init=disable_init)

    async def close(self) -> None:
        await super().close()
        await self.connection.close()

    async def rebuild_counters(self) -> dict[str, int]:
        """Every domain's ``rebuild_counters()`` (docs/dynamodb.md §4): the list totals recounted from
        the items and rewritten; returns each group's count. Run it with the writers stopped."""
        counts: dict[str, int] = {}
        for domain in (self.memory, self.workflows, self.scores, self.observability, self.agents):
            counts.update(await domain.rebuild_counters())
        return counts

    async def _engine_checks(self) -> list[Check]:
        client = await self.connection.client()
        table = self.connection.table
        try:
            described = (await client.describe_table(TableName=table))["Table"]
        except client.exceptions.ResourceNotFoundException:
            return [
                Check("table", False, f"table {table!r} does not exist (see docs/dynamodb.md, or create_table=true)")
            ]
        problems = table_problems(described)
        checks = [
            Check("table", described.get("TableStatus") == "ACTIVE", f"{table!r} is {described.get('TableStatus')}"),
            Check("layout", not problems, "; ".join(problems) or "keys and GSIs as docs/dynamodb.md lays out"),
        ]
        ttl = (await client.describe_time_to_live(TableName=table)).get("TimeToLiveDescription", {})
        wanted = self.memory.ttl_attribute
        status, attribute = ttl.get("TimeToLiveStatus", "DISABLED"), ttl.get("AttributeName")
        if wanted is None:
            checks.append(Check("ttl", True, f"not configured here (table TTL {status.lower()})"))
        else:
            on = status in ("ENABLED", "ENABLING") and attribute == wanted
            checks.append(Check("ttl", on, f"table TTL {status.lower()} on {attribute!r}, configured {wanted!r}"))
        return checks

    async def size_bytes(self) -> int | None:
        client = await self.connection.client()
        described = await client.describe_table(TableName=self.connection.table)
        return int(described["Table"].get("TableSizeBytes", 0))
