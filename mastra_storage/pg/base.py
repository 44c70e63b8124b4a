"""Connection settings, shared pools, and the base class of the PostgreSQL domain stores."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .._base import DomainBase, InitOnce, operation, retention_plan
from .._sql.pagination import Window
from .._sql.schema import Table
from ..errors import ValidationError
from ..types import PruneResult
from .ddl import ensure_schema

T = TypeVar("T")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Errors that mean "this connection is gone" (a server restart, a dropped socket): the unit of
# work never ran to completion, so it is retried on a fresh connection.
_RECONNECT_ATTEMPTS = 8


def _connection_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.ConnectionFailureError,
        asyncpg.exceptions.InterfaceError,
        ConnectionError,
        OSError,
    )


def _connection_class() -> type[Any]:
    import asyncpg

    class StatelessConnection(asyncpg.Connection):  # type: ignore[misc]
        """The stores leave no session state (only transaction-scoped locks, no LISTEN or cursors
        outside a transaction), so releasing a connection skips asyncpg's reset round trip."""

        def get_reset_query(self) -> str:
            return ""

    return StatelessConnection


def check_schema_name(name: object) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValidationError(f"schema_name must be an identifier matching {_IDENTIFIER.pattern}, got {name!r}")
    return name


@dataclass(frozen=True)
class PGSettings:
    """Where the pool connects; identical settings share one pool."""

    connection_string: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    min_size: int = 1
    max_size: int = 20
    ssl: Any = None
    statement_cache_size: int | None = None

    def __post_init__(self) -> None:
        if self.connection_string is not None:
            if not isinstance(self.connection_string, str) or not self.connection_string.strip():
                raise ValidationError("connection_string must be a non-empty string")
        elif not self.host or not self.database or not self.user:
            raise ValidationError("PostgreSQL needs connection_string, pool, or host/port/database/user/password")
        if not 0 <= self.min_size <= self.max_size or self.max_size < 1:
            sizes = f"min_size={self.min_size}, max_size={self.max_size}"
            raise ValidationError(f"need 0 <= min_size <= max_size and max_size >= 1, got {sizes}")

    async def create_pool(self) -> Any:
        import asyncpg

        options: dict[str, Any] = {
            "min_size": self.min_size,
            "max_size": self.max_size,
            "server_settings": {"timezone": "UTC"},
            "connection_class": _connection_class(),
        }
        if self.ssl is not None:
            options["ssl"] = self.ssl
        if self.statement_cache_size is not None:
            options["statement_cache_size"] = self.statement_cache_size
        if self.connection_string is not None:
            return await asyncpg.create_pool(dsn=self.connection_string, **options)
        return await asyncpg.create_pool(
            host=self.host, port=self.port, database=self.database, user=self.user, password=self.password, **options
        )


class PoolHandle:
    """One asyncpg pool shared by every store of the same settings, closed with its last user.
    A caller-owned pool is used as is and never closed."""

    def __init__(self, settings: PGSettings | None, pool: Any = None) -> None:
        self.settings = settings
        self.pool: Any = pool
        self.owned = pool is None
        self._users = 0
        self._open = InitOnce(self._create)

    async def _create(self) -> None:
        if self.pool is None:
            assert self.settings is not None
            self.pool = await self.settings.create_pool()

    async def acquire(self) -> Any:
        await self._open()
        self._users += 1
        return self.pool

    async def release(self) -> None:
        self._users -= 1
        if self._users <= 0 and self.owned and self.pool is not None:
            pool, self.pool = self.pool, None
            self._open.reset()
            _POOLS.pop(self.settings, None)  # type: ignore[arg-type]
            await pool.close()


_POOLS: dict[PGSettings, PoolHandle] = {}


def handle_for(settings: PGSettings) -> PoolHandle:
    handle = _POOLS.get(settings)
    if handle is None:
        handle = _POOLS[settings] = PoolHandle(settings)
    return handle


class PGDomain(DomainBase):
    """Base of the PostgreSQL domain stores: a use of a shared pool, a schema, and its tables."""

    store_name = "PG"
    tables: ClassVar[tuple[Table, ...]] = ()
    domain: ClassVar[str] = ""
    # retention key -> (table, timestamp column), in the order prune() deletes (children first)
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(
        self,
        *,
        id: str | None = None,
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
        disable_init: bool = False,
        handle: PoolHandle | None = None,
    ) -> None:
        super().__init__(disable_init=disable_init)
        self.id = id
        self.schema = check_schema_name(schema_name)
        if handle is None:
            if pool is not None:
                if connection_string is not None or host is not None:
                    raise ValidationError("give either pool or connection settings, not both")
                handle = PoolHandle(None, pool)
            else:
                handle = handle_for(
                    PGSettings(
                        connection_string,
                        host,
                        port,
                        database,
                        user,
                        password,
                        min_size,
                        max_size,
                        ssl,
                        statement_cache_size,
                    )
                )
        self._handle = handle
        self._pool: Any = None
        # Index names carry the schema, so two schemas in one database never collide.
        self.prefix = "" if self.schema == "public" else f"{self.schema}_"

    @property
    def pool_handle(self) -> PoolHandle:
        """The pool this store uses, for other stores of the same database to share."""
        return self._handle

    def t(self, table: str) -> str:
        """A table name qualified by the store's schema."""
        return f'"{self.schema}".{table}'

    def indexes(self) -> list[str]:
        """CREATE INDEX statements of this domain (every list query is served by one)."""
        return []

    async def _attach(self) -> None:
        if self._pool is None:
            self._pool = await self._handle.acquire()

    async def _initialize(self) -> None:
        await self._attach()
        await self.run(lambda conn: ensure_schema(conn, self.schema, self.tables, self.indexes(), self.prefix))

    async def _ensure_ready(self) -> None:
        if self.disable_init:
            await self._attach()
        else:
            await super()._ensure_ready()

    async def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Runs ``work(connection)`` on a pooled connection; if the connection turns out dead (the
        server restarted), the work is retried on a fresh one with backoff."""
        if self._pool is None:
            raise ValidationError(f"{type(self).__name__} is closed or not initialized")
        errors = _connection_errors()
        for attempt in range(_RECONNECT_ATTEMPTS):
            try:
                async with self._pool.acquire() as conn:
                    return await work(conn)
            except errors:
                if attempt == _RECONNECT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return await self.run(lambda conn: conn.fetch(sql, *args))

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.run(lambda conn: conn.execute(sql, *args))

    async def transaction(self, body: Callable[[Any], Awaitable[T]]) -> T:
        async def work(conn: Any) -> T:
            async with conn.transaction():
                return await body(conn)

        return await self.run(work)

    async def paged(self, page_sql: str, count_sql: str, args: list[Any], win: Window) -> tuple[list[Any], int]:
        """One page and the total on one connection: the count, then the page with LIMIT/OFFSET."""
        n = len(args)
        if win.limit is not None:
            page_sql += f" LIMIT ${n + 1} OFFSET ${n + 2}"

        async def work(conn: Any) -> tuple[list[Any], int]:
            total = await conn.fetchval(count_sql, *args)
            extra = [win.limit, win.offset] if win.limit is not None else []
            return await conn.fetch(page_sql, *args, *extra), int(total)

        return await self.run(work)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool = None
            self._init_once.reset()
            await self._handle.release()

    async def dangerously_clear_all(self) -> None:
        await self._ensure_ready()
        names = ", ".join(self.t(table.name) for table in self.tables)
        await self.execute(f"TRUNCATE {names}")

    @operation
    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        """Deletes rows older than each configured age, in batches, for this store's domain."""
        results: list[PruneResult] = []
        for plan in retention_plan(self.domain, self.retention_tables, retention):
            table = self.t(plan.table)
            await self.execute(
                f'CREATE INDEX IF NOT EXISTS "{self.prefix}{plan.table}_{plan.key}_retention_idx" '
                f'ON {table} ("{plan.column}")'
            )
            deleted = 0
            while True:
                status = await self.execute(
                    f'DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE "{plan.column}" < $1 LIMIT $2)',
                    plan.cutoff.replace(tzinfo=None),
                    plan.batch,
                )
                n = int(status.split()[-1])
                deleted += n
                if n < plan.batch:
                    break
            results.append(PruneResult(domain=self.domain, table=plan.key, deleted=deleted, done=True))
        return results
