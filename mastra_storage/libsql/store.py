"""``LibSQLStore``: every domain on one libSQL/SQLite database (the embedded default)."""

from __future__ import annotations

from typing import Unpack

from ..backend import BackendStore, Check
from .agents import AgentsLibSQL
from .base import ConnectionHandle, LibSQLOptions, LibSQLSettings
from .connection import local_path
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

    async def _engine_checks(self) -> list[Check]:
        conn = await self.handle.acquire()
        try:
            (version,) = (await conn.query("SELECT sqlite_version()"))[0]
            checks = [
                Check(
                    "sqlite version",
                    tuple(int(part) for part in str(version).split(".")) >= (3, 38),
                    f"SQLite {version} (3.38 or later: JSON functions built in)",
                )
            ]
            try:
                await conn.query("SELECT jsonb('{}')")
                checks.append(Check("jsonb", True, "binary JSON (as Mastra may write it) is readable"))
            except Exception:  # the function is missing before SQLite 3.45
                checks.append(Check("jsonb", False, "SQLite before 3.45 cannot read binary JSON Mastra may write"))
            path = local_path(self.handle.settings.url)
            if path is not None and path != ":memory:":
                (mode,) = (await conn.query("PRAGMA journal_mode"))[0]
                checks.append(
                    Check("journal mode", str(mode).lower() == "wal", f"{mode} (WAL lets reads run beside writes)")
                )
            return checks
        finally:
            await self.handle.release()

    async def size_bytes(self) -> int | None:
        conn = await self.handle.acquire()
        try:
            (pages,) = (await conn.query("PRAGMA page_count"))[0]
            (page_size,) = (await conn.query("PRAGMA page_size"))[0]
        finally:
            await self.handle.release()
        return int(pages) * int(page_size)
