"""Connection settings, shared connection handles, and the base class of the libSQL domain stores."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .._base import DomainBase, InitOnce, operation, retention_plan
from .._codec import iso
from .._sql.pagination import Window
from .._sql.schema import Table
from ..errors import ValidationError
from ..types import PruneResult
from .connection import Connection, LocalConnection, RemoteConnection, RetryPolicy, Stmt, local_path
from .ddl import ensure_schema

_REMOTE_SCHEMES = ("libsql://", "http://", "https://", "ws://", "wss://")


@dataclass(frozen=True)
class LibSQLSettings:
    url: str
    auth_token: str | None = None
    max_retries: int = 5
    initial_backoff_ms: int = 100
    busy_timeout_ms: int = 5000

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not (local_path(self.url) or self.url.startswith(_REMOTE_SCHEMES)):
            raise ValidationError(
                f"url must be file:PATH, :memory:, or a libsql://, http(s):// or ws(s):// URL, got {self.url!r}"
            )
        if self.max_retries < 0 or self.initial_backoff_ms < 0 or self.busy_timeout_ms < 0:
            raise ValidationError("max_retries, initial_backoff_ms and busy_timeout_ms must be >= 0")

    def key(self) -> tuple[object, ...] | None:
        """Identity of the database; None for ``:memory:`` (every in-memory store is its own database)."""
        path = local_path(self.url)
        if path == ":memory:":
            return None
        return (os.path.abspath(path) if path else self.url, self.auth_token)

    def connect(self) -> Connection:
        retry = RetryPolicy(self.max_retries, self.initial_backoff_ms)
        path = local_path(self.url)
        if path is not None:
            return LocalConnection(path, busy_timeout_ms=self.busy_timeout_ms, retry=retry)
        return RemoteConnection(self.url, auth_token=self.auth_token, retry=retry)


class ConnectionHandle:
    """One connection shared by every store of the same database, closed when its last user closes."""

    def __init__(self, settings: LibSQLSettings) -> None:
        self.settings = settings
        self.conn: Connection | None = None
        self._users = 0
        self._open = InitOnce(self._connect)

    async def _connect(self) -> None:
        conn = self.settings.connect()
        await conn.open()
        self.conn = conn

    async def acquire(self) -> Connection:
        await self._open()
        assert self.conn is not None
        self._users += 1
        return self.conn

    async def release(self) -> None:
        self._users -= 1
        if self._users <= 0 and self.conn is not None:
            conn, self.conn = self.conn, None
            self._open.reset()
            _HANDLES.pop(self.settings.key(), None)  # type: ignore[arg-type]
            await conn.close()


_HANDLES: dict[tuple[object, ...], ConnectionHandle] = {}


def handle_for(settings: LibSQLSettings) -> ConnectionHandle:
    """The shared handle for a database, so stores of one file never open competing writers."""
    key = settings.key()
    if key is None:
        return ConnectionHandle(settings)
    handle = _HANDLES.get(key)
    if handle is None or handle.settings != settings:
        handle = _HANDLES[key] = ConnectionHandle(settings)
    return handle


class LibSQLDomain(DomainBase):
    """Base of the libSQL domain stores: owns a use of a shared connection and its tables."""

    store_name = "LIBSQL"
    tables: ClassVar[tuple[Table, ...]] = ()
    indexes: ClassVar[tuple[str, ...]] = ()
    domain: ClassVar[str] = ""
    # retention key -> (table, timestamp column), in the order prune() deletes (children first)
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(
        self,
        *,
        url: str | None = None,
        id: str | None = None,
        auth_token: str | None = None,
        max_retries: int = 5,
        initial_backoff_ms: int = 100,
        busy_timeout_ms: int = 5000,
        disable_init: bool = False,
        handle: ConnectionHandle | None = None,
    ) -> None:
        super().__init__(disable_init=disable_init)
        if handle is None:
            if url is None:
                raise ValidationError(f"{type(self).__name__} needs a url")
            handle = handle_for(LibSQLSettings(url, auth_token, max_retries, initial_backoff_ms, busy_timeout_ms))
        self.id = id
        self._handle = handle
        self._conn: Connection | None = None

    @property
    def db(self) -> Connection:
        if self._conn is None:
            raise ValidationError(f"{type(self).__name__} is closed or not initialized")
        return self._conn

    async def _attach(self) -> None:
        if self._conn is None:
            self._conn = await self._handle.acquire()

    async def _initialize(self) -> None:
        await self._attach()
        await ensure_schema(self.db, self.tables, self.indexes)

    async def _ensure_ready(self) -> None:
        if self.disable_init:
            await self._attach()
        else:
            await super()._ensure_ready()

    async def close(self) -> None:
        if self._conn is not None:
            self._conn = None
            self._init_once.reset()
            await self._handle.release()

    async def dangerously_clear_all(self) -> None:
        """Deletes every row of this domain's tables (tests use it between cases)."""
        await self._ensure_ready()
        await self.db.batch([Stmt(f'DELETE FROM "{table.name}"') for table in self.tables])

    async def paged(self, page_sql: str, count_sql: str, values: list[Any], win: Window) -> tuple[list[Any], int]:
        """One page of rows and the total, in one trip: ``page_sql`` and ``count_sql`` share ``values``."""
        args = list(values)
        if win.limit is not None:
            page_sql += " LIMIT ? OFFSET ?"
            args += [win.limit, win.offset]
        rows, count = await self.db.read([Stmt(page_sql, args), Stmt(count_sql, values)])
        return rows, int(count[0][0])

    @operation
    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        """Deletes rows older than each configured age, in batches, for this store's domain.

        ``retention={"memory": {"messages": "30d"}}``; a policy may also be
        ``{"max_age": timedelta(days=30), "batch_size": 500}``.
        """
        plans = retention_plan(self.domain, self.retention_tables, retention)
        results: list[PruneResult] = []
        for plan in plans:
            table, column = plan.table, plan.column
            await self.db.execute(
                f'CREATE INDEX IF NOT EXISTS "idx_retention_{table}_{column}" ON "{table}" ("{column}")'
            )
            deleted = 0
            while True:
                n = await self.db.execute(
                    f'DELETE FROM "{table}" WHERE rowid IN (SELECT rowid FROM "{table}" WHERE "{column}" < ? LIMIT ?)',
                    (iso(plan.cutoff), plan.batch),
                )
                deleted += n
                if n < plan.batch:
                    break
            results.append(PruneResult(domain=self.domain, table=plan.key, deleted=deleted, done=True))
        return results
