"""``PostgresStore``: every domain on one PostgreSQL database and schema, over one asyncpg pool."""

from __future__ import annotations

from typing import Unpack

from ..backend import BackendStore
from .agents import AgentsPG
from .base import PGOptions, PGSettings, PoolHandle
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
