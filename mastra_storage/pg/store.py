"""``PostgresStore``: every domain on one PostgreSQL database and schema, over one asyncpg pool."""

from __future__ import annotations

from typing import Unpack

from ..backend import BackendStore, Check
from .agents import AgentsPG
from .base import PGOptions, PGSettings, PoolHandle, SharedLedgers
from .memory import MemoryPG
from .observability import ObservabilityPG
from .scores import ScoresPG
from .workflows import WorkflowsPG


class PostgresStore(BackendStore):
    """All five domains in Mastra's ``@mastra/pg`` tables.

    Connect with ``connection_string``, a caller-owned ``pool`` (an ``asyncpg.Pool``, never closed
    here), or ``host``/``port``/``database``/``user``/``password`` (see ``PGOptions``). ``schema_name``
    is created if missing. ``statement_cache_size=0`` suits pgbouncer in transaction mode. ``close()``
    waits up to ``close_timeout`` seconds for calls in flight before it terminates the pool.
    """

    memory: MemoryPG
    workflows: WorkflowsPG
    scores: ScoresPG
    observability: ObservabilityPG
    agents: AgentsPG

    def __init__(
        self, *, id: str, schema_name: str = "public", disable_init: bool = False, **options: Unpack[PGOptions]
    ) -> None:
        # The store owns its pool and hands it to its domain stores (no pool is shared across stores).
        self.handle = PoolHandle(PGSettings(**options))
        domains = (MemoryPG, WorkflowsPG, ScoresPG, ObservabilityPG, AgentsPG)
        stores = [cls(handle=self.handle, schema_name=schema_name, disable_init=disable_init) for cls in domains]
        super().__init__(id=id, stores=stores, disable_init=disable_init)

    async def _initialize(self) -> None:
        # The domains initializing together read every ledger in one query (see SharedLedgers).
        self.handle.ledgers = shared = SharedLedgers(self.memory.schema)
        try:
            await super()._initialize()
        finally:
            self.handle.ledgers = None
            shared.discard()

    async def _engine_checks(self) -> list[Check]:
        pool = await self.handle.acquire()
        schema = self.memory.schema
        try:
            async with pool.acquire() as conn:
                number = int(await conn.fetchval("SELECT current_setting('server_version_num')"))
                exists = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema)
                if exists:
                    allowed = await conn.fetchval(
                        "SELECT has_schema_privilege($1, 'USAGE') AND has_schema_privilege($1, 'CREATE')", schema
                    )
                    what = f"USAGE and CREATE on schema {schema!r}"
                else:
                    allowed = await conn.fetchval("SELECT has_database_privilege(current_database(), 'CREATE')")
                    what = f"CREATE on the database (schema {schema!r} does not exist yet)"
        finally:
            await self.handle.release()
        return [
            Check(
                "postgresql version", number >= 120000, f"PostgreSQL {number // 10000}.{number % 10000} (12 or later)"
            ),
            Check("privileges", bool(allowed), ("has " if allowed else "lacks ") + what),
        ]

    async def size_bytes(self) -> int | None:
        pool = await self.handle.acquire()
        try:
            size = await pool.fetchval(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
                self.memory.schema,
            )
        finally:
            await self.handle.release()
        return int(size)
