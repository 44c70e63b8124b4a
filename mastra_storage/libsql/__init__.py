"""The libSQL/SQLite backend: local files and ``:memory:`` on an async SQLite connection, remote
sqld/Turso through libsql-client. Needs ``pip install mastra-storage[libsql]``."""

from .agents import AgentsLibSQL
from .memory import MemoryLibSQL
from .observability import ObservabilityLibSQL
from .scores import ScoresLibSQL
from .store import LibSQLStore
from .workflows import WorkflowsLibSQL

__all__ = [
    "AgentsLibSQL",
    "LibSQLStore",
    "MemoryLibSQL",
    "ObservabilityLibSQL",
    "ScoresLibSQL",
    "WorkflowsLibSQL",
]
