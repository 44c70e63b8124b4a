"""``LibSQLStore``: every domain on one libSQL/SQLite database (the embedded default)."""

from __future__ import annotations

from ..backend import BackendStore
from .agents import AgentsLibSQL
from .base import ConnectionHandle, LibSQLSettings
from .memory import MemoryLibSQL
from .observability import ObservabilityLibSQL
from .scores import ScoresLibSQL
from .workflows import WorkflowsLibSQL


class LibSQLStore(BackendStore):
    """All five domains on one database: a local file (``file:./mastra.db``), ``:memory:``, or a remote
    sqld/Turso URL (``libsql://``, ``http(s)://``, ``ws(s)://``) with ``auth_token``.

    The domains share one connection (on a local file, the file's engine, which every store of that
    file in the process shares); they initialize one after another.
    """

    def __init__(
        self,
        *,
        id: str,
        url: str,
        auth_token: str | None = None,
        max_retries: int = 5,
        initial_backoff_ms: int = 100,
        busy_timeout_ms: int = 5000,
        disable_init: bool = False,
    ) -> None:
        handle = ConnectionHandle(LibSQLSettings(url, auth_token, max_retries, initial_backoff_ms, busy_timeout_ms))
        options = {"handle": handle, "disable_init": disable_init}
        self.memory = MemoryLibSQL(**options)  # type: ignore[arg-type]
        self.workflows = WorkflowsLibSQL(**options)  # type: ignore[arg-type]
        self.scores = ScoresLibSQL(**options)  # type: ignore[arg-type]
        self.observability = ObservabilityLibSQL(**options)  # type: ignore[arg-type]
        self.agents = AgentsLibSQL(**options)  # type: ignore[arg-type]
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
