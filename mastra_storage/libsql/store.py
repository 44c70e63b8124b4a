"""``LibSQLStore``: every domain on one libSQL/SQLite database (the embedded default)."""

from __future__ import annotations

from typing import Unpack

from ..backend import BackendStore
from .agents import AgentsLibSQL
from .base import ConnectionHandle, LibSQLOptions, LibSQLSettings
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

    memory: MemoryLibSQL
    workflows: WorkflowsLibSQL
    scores: ScoresLibSQL
    observability: ObservabilityLibSQL
    agents: AgentsLibSQL

    def __init__(self, *, id: str, disable_init: bool = False, **options: Unpack[LibSQLOptions]) -> None:
        # The store owns its connection and hands it to its domain stores.
        self.handle = ConnectionHandle(LibSQLSettings(**options))
        domains = (MemoryLibSQL, WorkflowsLibSQL, ScoresLibSQL, ObservabilityLibSQL, AgentsLibSQL)
        stores = [cls(handle=self.handle, disable_init=disable_init) for cls in domains]
        super().__init__(id=id, stores=stores, disable_init=disable_init)
