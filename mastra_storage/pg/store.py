"""``PostgresStore``: every domain on one PostgreSQL database and schema, over one asyncpg pool."""

from __future__ import annotations

from typing import Any

from ..backend import BackendStore
from .agents import AgentsPG
from .base import new_pool_handle
from .memory import MemoryPG
from .observability import ObservabilityPG
from .scores import ScoresPG
from .workflows import WorkflowsPG


class PostgresStore(BackendStore):
    """All five domains in Mastra's ``@mastra/pg`` tables.

    Connect with ``connection_string``, a caller-owned ``pool`` (an ``asyncpg.Pool``, never closed
    here), or ``host``/``port``/``database``/``user``/``password``. ``schema_name`` is created if
    missing. ``statement_cache_size=0`` suits pgbouncer in transaction mode. ``close()`` waits up to
    ``close_timeout`` seconds for calls in flight before it terminates the pool.
    """

    def __init__(
        self,
        *,
        id: str,
        connection_string: str | None = None,
        pool: Any = None,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        user: str | None = None,
        password: str | None = None,
        schema_name: str = "public",
        min_size: int = 1,
        max_size: int = 20,
        ssl: Any = None,
        statement_cache_size: int | None = None,
        close_timeout: float = 10.0,
        disable_init: bool = False,
    ) -> None:
        # The store owns its pool; its domain stores share it (no pool is shared across stores).
        handle = new_pool_handle(
            connection_string=connection_string, pool=pool, host=host, port=port, database=database, user=user,
            password=password, min_size=min_size, max_size=max_size, ssl=ssl,
            statement_cache_size=statement_cache_size, close_timeout=close_timeout,
        )  # fmt: skip
        self.memory = MemoryPG(handle=handle, schema_name=schema_name, disable_init=disable_init)
        self.workflows = WorkflowsPG(handle=handle, schema_name=schema_name, disable_init=disable_init)
        self.scores = ScoresPG(handle=handle, schema_name=schema_name, disable_init=disable_init)
        self.observability = ObservabilityPG(handle=handle, schema_name=schema_name, disable_init=disable_init)
        self.agents = AgentsPG(handle=handle, schema_name=schema_name, disable_init=disable_init)
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
