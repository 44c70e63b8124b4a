"""Async connections to a libSQL/SQLite database that never block the event loop.

* Local files and ``:memory:`` run on one SQLite connection (SQLite >= 3.45 from ``sqlean.py``, so
  Mastra's binary-JSON columns read back) owned by one dedicated thread. An ``asyncio.Lock`` makes
  each statement, batch or transaction one exclusive unit, so within a process nothing ever sees
  ``database is locked``; across processes WAL, ``busy_timeout`` and retry with backoff handle it.
* Remote ``libsql://``, ``http(s)://`` and ``ws(s)://`` URLs go through ``libsql-client`` (Hrana).
  A batch is one request run in a transaction. Hrana over HTTP has no interactive transactions, so a
  remote read-modify-write is serialized per process and its writes land as one atomic batch.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Stmt:
    """One statement of a batch; with ``many=True`` ``params`` is a sequence of parameter rows."""

    sql: str
    params: Sequence[Any] = ()
    many: bool = False


class Tx(Protocol):
    """What a transaction body may do: read, and queue writes that commit together."""

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Connection(Protocol):
    async def open(self) -> None: ...
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    async def read(self, statements: Sequence[Stmt]) -> list[list[Row]]: ...
    async def batch(self, statements: Sequence[Stmt]) -> None: ...
    async def transaction(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    initial_backoff_ms: int = 100

    async def run(self, attempt: Callable[[], Awaitable[T]], is_retryable: Callable[[Exception], bool]) -> T:
        """Runs ``attempt``, retrying lock errors with exponential backoff (other errors propagate)."""
        for n in range(self.max_retries + 1):
            try:
                return await attempt()
            except Exception as exc:
                if n == self.max_retries or not is_retryable(exc):
                    raise
                await asyncio.sleep(self.initial_backoff_ms * (2**n) / 1000)
        raise AssertionError("unreachable")


_LOCK_MARKERS = (
    "database is locked",
    "database table is locked",
    "table is locked",
    "sqlite_busy",
    "sqlite_locked",
)


def is_lock_error(exc: Exception) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
        return True
    text = f"{getattr(exc, 'code', '')} {exc}".lower()
    return any(marker in text for marker in _LOCK_MARKERS)


def local_path(url: str) -> str | None:
    """The SQLite path of a local URL (``:memory:`` for in-memory), or None for a remote URL."""
    if url in (":memory:", "file::memory:"):
        return ":memory:"
    if url.startswith("file:"):
        path = url[len("file:") :].split("?", 1)[0]
        if path.startswith("//"):
            path = path[2:]
        return ":memory:" if path == ":memory:" else path
    return None


class LocalConnection:
    """One SQLite connection on a dedicated thread; every unit of work holds ``_lock``."""

    def __init__(self, path: str, *, busy_timeout_ms: int, retry: RetryPolicy) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.retry = retry
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mastra-sqlite")
        self._lock = asyncio.Lock()
        self._db: Any = None

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _connect(self) -> None:
        import sqlean

        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        db = sqlean.connect(self.path, isolation_level=None, timeout=self.busy_timeout_ms / 1000)
        pragmas = [
            f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA temp_store = MEMORY",
            "PRAGMA cache_size = -16000",
        ]
        if self.path != ":memory:":
            pragmas.insert(0, "PRAGMA journal_mode = WAL")
        for pragma in pragmas:
            db.execute(pragma)
        self._db = db

    async def open(self) -> None:
        if self._db is None:
            await self.retry.run(lambda: self._call(self._connect), is_lock_error)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._lock:
            return await self.retry.run(
                lambda: self._call(lambda: self._db.execute(sql, params).fetchall()), is_lock_error
            )

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            return await self.retry.run(
                lambda: self._call(lambda: self._db.execute(sql, params).rowcount), is_lock_error
            )

    async def read(self, statements: Sequence[Stmt]) -> list[list[Row]]:
        """Several queries in one trip to the database thread (e.g. a page and its total)."""

        def run() -> list[list[Row]]:
            return [self._db.execute(stmt.sql, stmt.params).fetchall() for stmt in statements]

        async with self._lock:
            return await self.retry.run(lambda: self._call(run), is_lock_error)

    def _run_batch(self, statements: Sequence[Stmt]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for stmt in statements:
                if stmt.many:
                    db.executemany(stmt.sql, stmt.params)
                else:
                    db.execute(stmt.sql, stmt.params)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def batch(self, statements: Sequence[Stmt]) -> None:
        if not statements:
            return
        async with self._lock:
            await self.retry.run(lambda: self._call(lambda: self._run_batch(statements)), is_lock_error)

    async def transaction(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        async with self._lock:
            return await self.retry.run(lambda: self._transaction_once(body), is_lock_error)

    async def _transaction_once(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        await self._call(lambda: self._db.execute("BEGIN IMMEDIATE"))
        try:
            result = await body(_LocalTx(self))
            await self._call(lambda: self._db.execute("COMMIT"))
            return result
        except BaseException:
            await self._call(lambda: self._db.execute("ROLLBACK"))
            raise

    async def close(self) -> None:
        if self._db is not None:
            async with self._lock:
                await self._call(self._db.close)
                self._db = None
        self._executor.shutdown(wait=False)


class _LocalTx:
    """Statements inside a local transaction: the lock is already held, so they run directly."""

    def __init__(self, conn: LocalConnection) -> None:
        self._conn = conn

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        db = self._conn._db
        return await self._conn._call(lambda: db.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        db = self._conn._db
        await self._conn._call(lambda: db.execute(sql, params))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        db = self._conn._db
        await self._conn._call(lambda: db.executemany(sql, rows))


class RemoteConnection:
    """A libsql-client connection to sqld/Turso (Hrana over HTTP or WebSocket)."""

    def __init__(self, url: str, *, auth_token: str | None, retry: RetryPolicy) -> None:
        self.url = url
        self.auth_token = auth_token
        self.retry = retry
        self._client: Any = None
        self._rmw_lock = asyncio.Lock()

    async def open(self) -> None:
        if self._client is None:
            import libsql_client

            self._client = libsql_client.create_client(self.url, auth_token=self.auth_token)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        result = await self.retry.run(lambda: self._client.execute(sql, list(params)), is_lock_error)
        return [row.astuple() for row in result.rows]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        result = await self.retry.run(lambda: self._client.execute(sql, list(params)), is_lock_error)
        return int(result.rows_affected)

    async def read(self, statements: Sequence[Stmt]) -> list[list[Row]]:
        """Several queries in one request (a Hrana batch)."""
        results = await self.retry.run(
            lambda: self._client.batch([(stmt.sql, list(stmt.params)) for stmt in statements]), is_lock_error
        )
        return [[row.astuple() for row in result.rows] for result in results]

    async def batch(self, statements: Sequence[Stmt]) -> None:
        if not statements:
            return
        expanded: list[Any] = []
        for stmt in statements:
            if stmt.many:
                expanded.extend((stmt.sql, list(row)) for row in stmt.params)
            else:
                expanded.append((stmt.sql, list(stmt.params)))
        if expanded:
            await self.retry.run(lambda: self._client.batch(expanded), is_lock_error)

    async def transaction(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        async with self._rmw_lock:
            tx = _RemoteTx(self)
            result = await body(tx)
            await self.batch(tx.writes)
            return result

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class _RemoteTx:
    """Reads go straight to the server; writes are queued and committed as one batch."""

    def __init__(self, conn: RemoteConnection) -> None:
        self._conn = conn
        self.writes: list[Stmt] = []

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._conn.query(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.writes.append(Stmt(sql, params))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.writes.append(Stmt(sql, rows, many=True))
