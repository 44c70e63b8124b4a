"""Async connections to a libSQL/SQLite database that never block the event loop.

* Local files and ``:memory:`` run on the engine in ``local.py`` (SQLite >= 3.45 from ``apsw``, so
  Mastra's binary-JSON columns read back): whole units of work on a writer thread and readers.
* Remote ``libsql://``, ``http(s)://`` and ``ws(s)://`` URLs go through ``libsql-client`` (Hrana).
  A batch is one request run in a transaction. Hrana over HTTP has no interactive transactions, so a
  remote read-modify-write is serialized per store and its writes land as one atomic batch.

A read-modify-write body is a plain synchronous function of a ``Tx``: locally it runs whole on the
writer thread (one hop, never split by a cancellation); remotely it runs on a worker thread whose
reads are sent by the store's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
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
    """What a transaction body may do: read, and write what commits with the rest of the body."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Connection(Protocol):
    """What the domain stores call; each call returns an awaitable (a coroutine or a future)."""

    async def open(self) -> None: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> Awaitable[list[Row]]: ...
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Awaitable[int]: ...
    def read(self, statements: Sequence[Stmt]) -> Awaitable[list[list[Row]]]: ...
    def batch(self, statements: Sequence[Stmt]) -> Awaitable[None]: ...
    def transaction(self, body: Callable[[Tx], T]) -> Awaitable[T]: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    initial_backoff_ms: int = 100

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        return float(self.initial_backoff_ms * (2**attempt) / 1000)

    async def run(self, attempt: Callable[[], Awaitable[T]], is_retryable: Callable[[Exception], bool]) -> T:
        """Runs ``attempt``, retrying lock errors with exponential backoff (other errors propagate)."""
        for n in range(self.max_retries + 1):
            try:
                return await attempt()
            except Exception as exc:
                if n == self.max_retries or not is_retryable(exc):
                    raise
                await asyncio.sleep(self.backoff(n))
        raise AssertionError("unreachable")

    def run_sync(self, attempt: Callable[[], T], is_retryable: Callable[[Exception], bool]) -> T:
        """``run`` for the engine's threads, which may block while another process holds the lock."""
        for n in range(self.max_retries + 1):
            try:
                return attempt()
            except Exception as exc:
                if n == self.max_retries or not is_retryable(exc):
                    raise
                time.sleep(self.backoff(n))
        raise AssertionError("unreachable")


_LOCK_MARKERS = (
    "database is locked",
    "database table is locked",
    "table is locked",
    "sqlite_busy",
    "sqlite_locked",
)


def is_lock_error(exc: Exception) -> bool:
    code = getattr(exc, "result", None)  # apsw's primary result code
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

    async def transaction(self, body: Callable[[Tx], T]) -> T:
        async with self._rmw_lock:
            tx = _RemoteTx(self, asyncio.get_running_loop())
            try:
                result = await asyncio.to_thread(body, tx)
            finally:
                tx.abandoned = True  # a cancelled caller: the body's next read fails, its writes are dropped
            await self.batch(tx.writes)
            return result

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class _RemoteTx:
    """Reads go to the server through the store's loop; writes are queued and committed as one batch."""

    def __init__(self, conn: RemoteConnection, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self._loop = loop
        self.abandoned = False
        self.writes: list[Stmt] = []

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self.abandoned:
            raise asyncio.CancelledError
        return asyncio.run_coroutine_threadsafe(self._conn.query(sql, params), self._loop).result()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.writes.append(Stmt(sql, params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.writes.append(Stmt(sql, rows, many=True))
