"""The PostgreSQL backend on asyncpg, in Mastra's ``@mastra/pg`` schema.
Needs ``pip install mastra-storage[pg]``."""

from .agents import AgentsPG
from .memory import MemoryPG
from .observability import ObservabilityPG
from .scores import ScoresPG
from .store import PostgresStore
from .workflows import WorkflowsPG

__all__ = ["AgentsPG", "MemoryPG", "ObservabilityPG", "PostgresStore", "ScoresPG", "WorkflowsPG"]
