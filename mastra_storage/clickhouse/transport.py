"""Two ways to reach ClickHouse behind one async interface.

* ``http(s)://host:8123`` — clickhouse-connect's async HTTP client.
* ``chdb://path`` — the real ClickHouse engine embedded in this process (clickhouse-connect's chdb
  interface). It is synchronous, so every call runs on one dedicated thread, never on the loop.
  chdb opens one data path per process: stores of the same path share one engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from ..errors import ValidationError

T = TypeVar("T")


class Transport(Protocol):
    async def open(self) -> None: ...
    async def query(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[Sequence[Any]]]: ...
    async def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...
    async def insert(self, table: str, data: list[list[Any]], columns: list[str]) -> None:
        """Inserts ``data`` given as columns (one list per column name)."""
        ...

    async def close(self) -> None: ...


_INSERT_BLOCK_ROWS = 2048


def _small_blocks(context: Any) -> None:
    """Serialize an insert in blocks of a few thousand rows. It stays one INSERT statement (one part),
    but the driver holds the GIL for one block at a time, so the event loop's thread keeps running
    while a big batch is encoded on another thread."""
    context.req_block_size = context.block_row_count = _INSERT_BLOCK_ROWS


class HttpTransport:
    def __init__(self, url: str, username: str | None, password: str | None) -> None:
        self.url, self.username, self.password = url, username, password
        self._client: Any = None

    async def open(self) -> None:
        if self._client is None:
            import clickhouse_connect

            self._client = await clickhouse_connect.get_async_client(
                dsn=self.url, username=self.username or "default", password=self.password or "", compress=False
            )

    async def query(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[list[str], list[Sequence[Any]]]:
        result = await self._client.query(sql, parameters=dict(params or {}))
        return list(result.column_names), list(result.result_rows)

    async def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        await self._client.command(sql, parameters=dict(params or {}))

    async def insert(self, table: str, data: list[list[Any]], columns: list[str]) -> None:
        context = await self._client.create_insert_context(table, column_names=columns, data=data, column_oriented=True)
        _small_blocks(context)
        await self._client.data_insert(context)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class _Engine:
    """One embedded chdb engine per data path, on its own thread, shared by every store of the path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.users = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mastra-chdb")
        self.client: Any = None

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)


_ENGINES: dict[str, _Engine] = {}


class ChdbTransport:
    def __init__(self, path: str) -> None:
        if not path:
            raise ValidationError("chdb:// needs a data path, e.g. chdb:///var/lib/mastra/clickhouse")
        self.path = path
        self._engine: _Engine | None = None

    async def open(self) -> None:
        if self._engine is not None:
            return
        other = next((p for p in _ENGINES if p != self.path), None)
        if other is not None:
            raise ValidationError(f"chdb already runs on {other!r} in this process; one data path per process")
        engine = _ENGINES.setdefault(self.path, _Engine(self.path))
        if engine.client is None:
            import clickhouse_connect

            engine.client = await engine.call(lambda: clickhouse_connect.get_client(dsn=f"chdb://{self.path}"))
        engine.users += 1
        self._engine = engine

    def _eng(self) -> _Engine:
        if self._engine is None:
            raise ValidationError("the ClickHouse store is closed or not initialized")
        return self._engine

    async def query(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[list[str], list[Sequence[Any]]]:
        engine = self._eng()
        result = await engine.call(lambda: engine.client.query(sql, parameters=dict(params or {})))
        return list(result.column_names), list(result.result_rows)

    async def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        engine = self._eng()
        await engine.call(lambda: engine.client.command(sql, parameters=dict(params or {})))

    async def insert(self, table: str, data: list[list[Any]], columns: list[str]) -> None:
        engine = self._eng()

        def run() -> None:
            context = engine.client.create_insert_context(table, column_names=columns, data=data, column_oriented=True)
            _small_blocks(context)
            engine.client.data_insert(context)

        await engine.call(run)

    async def close(self) -> None:
        # The embedded engine stays up for the process (chdb cannot reopen another path anyway).
        if self._engine is not None:
            self._engine.users -= 1
            self._engine = None


def transport_for(url: str, username: str | None, password: str | None) -> Transport:
    if url.startswith("chdb://"):
        return ChdbTransport(url[len("chdb://") :])
    if url.startswith(("http://", "https://")):
        return HttpTransport(url, username, password)
    raise ValidationError(f"url must be http(s)://host:8123 or chdb://path, got {url!r}")
