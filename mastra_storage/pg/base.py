"""Connection settings, shared pools, and the base class of the PostgreSQL domain stores."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar, Unpack

from .._sql.domain import SqlSchema
from .._sql.schema import Index
from ..backend import masked_url
from ..core.coalesce import WriteGroups
from ..core.lifecycle import CallTracker, DomainStore, InitOnce, maintenance, operation
from ..core.migrations import MigrationStep, pending
from ..core.paging import Window
from ..core.retention import retention_plan
from ..core.transfer import decode_cursor, key_cursor
from ..errors import BackendError, ValidationError
from ..types import PruneResult
from . import ddl
from .codec import PGRowCodec, json_insert
from .ddl import object_name

T = TypeVar("T")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_RECONNECT_ATTEMPTS = 8  # 0.05 s doubling: ~6 s of waiting in all while a server comes back


def is_connection_error(exc: BaseException) -> bool:
    """The connection is gone or in an unknown protocol state (a restart, a terminated backend, a
    dropped socket, a failover) — never bad input: ``DataError`` is an ``InterfaceError`` too."""
    import asyncpg

    if isinstance(exc, asyncpg.exceptions.DataError):
        return False
    if isinstance(
        exc,
        asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.InternalClientError  # e.g. "cannot switch to state 11" on a terminated backend
        | asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError
        | asyncpg.exceptions.CannotConnectNowError
        | ConnectionError
        | OSError,
    ):
        return True
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and "connection is closed" in str(exc)


def _connection_class() -> type[Any]:
    import asyncpg

    class StatelessConnection(asyncpg.Connection):  # type: ignore[misc]
        """The stores leave no session state (only transaction-scoped locks, no LISTEN or cursors
        outside a transaction), so releasing a connection skips asyncpg's reset round trip."""

        def get_reset_query(self) -> str:
            return ""

    return StatelessConnection


def discard(conn: Any) -> None:
    """Terminates a connection in an unknown state so the pool never hands it out again (asyncpg
    may already have released one whose socket closed: nothing left to do then)."""
    import asyncpg

    with contextlib.suppress(asyncpg.exceptions.InterfaceError):
        conn.terminate()


class CommitOutcomeUnknown(Exception):
    """The connection died after COMMIT was sent and before its answer came back."""


def check_schema_name(name: object) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValidationError(f"schema_name must be an identifier matching {_IDENTIFIER.pattern}, got {name!r}")
    return name


class PGOptions(TypedDict, total=False):
    """How a PostgreSQL store connects (the fields of ``PGSettings``, as constructor keywords)."""

    connection_string: str | None
    pool: Any
    host: str | None
    port: int | None
    database: str | None
    user: str | None
    password: str | None
    min_size: int
    max_size: int
    ssl: Any
    statement_cache_size: int | None
    close_timeout: float


@dataclass(frozen=True, kw_only=True)
class PGSettings:
    """Where a store's pool connects (or the caller-owned ``pool`` it uses), validated before any I/O.
    The password never appears in its repr."""

    connection_string: str | None = None
    pool: Any = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    min_size: int = 1
    max_size: int = 20
    ssl: Any = None
    statement_cache_size: int | None = None
    close_timeout: float = 10.0

    def __repr__(self) -> str:
        if self.pool is not None:
            return "PGSettings(<caller-owned pool>)"
        where = (
            masked_url(self.connection_string) if self.connection_string else f"{self.host}:{self.port}/{self.database}"
        )
        return f"PGSettings({where!r}, user={self.user!r}, min_size={self.min_size}, max_size={self.max_size})"

    def __post_init__(self) -> None:
        timeout = self.close_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise ValidationError(f"close_timeout must be a number of seconds >= 0, got {timeout!r}")
        if self.pool is not None:
            if self.connection_string is not None or self.host is not None:
                raise ValidationError("give either pool or connection settings, not both")
            return
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


class SharedLedgers:
    """Every domain's migration ledger, read in one query for the domains of one ``PostgresStore``
    initializing together. Five concurrent checks grew the pool to five connections at every
    init (35 ms for an up-to-date database; 14 ms with one query on one connection)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._read: asyncio.Future[dict[str, dict[int, str]] | None] | None = None

    async def of(self, domain: str, run: Callable[[Any], Awaitable[Any]]) -> dict[int, str] | None:
        """``domain``'s ledger, or None before any ledger exists. The first caller's ``run`` reads
        them all; the others wait for that read (shielded: a cancelled domain leaves it running)."""
        if self._read is None:
            self._read = asyncio.ensure_future(run(lambda conn: ddl.all_applied(conn, self.schema)))
        ledgers = await asyncio.shield(self._read)
        return None if ledgers is None else ledgers.get(domain, {})

    def discard(self) -> None:
        """Ends a read nobody waits for any more (the init that started it was cancelled)."""
        if self._read is not None and not self._read.done():
            self._read.cancel()


class PoolHandle:
    """The asyncpg pool of one ``PostgresStore`` (or of one standalone domain store), shared by its
    domain stores and closed with the last of them. A caller-owned pool is used as is, never closed.

    Nothing here is shared between stores: a pool belongs to the event loop it was made in, so a
    new store always makes its own (a store left unclosed in an earlier loop cannot break it).
    ``close`` waits up to ``close_timeout`` seconds for calls in flight, then terminates the pool.
    """

    def __init__(self, settings: PGSettings) -> None:
        self.settings = settings
        self.pool: Any = settings.pool
        self.owned = settings.pool is None
        self.close_timeout = settings.close_timeout
        self.calls = CallTracker()
        self._users = 0
        self._open = InitOnce(self._create)
        self.ledgers: SharedLedgers | None = None  # set while a PostgresStore initializes its domains

    async def _create(self) -> None:
        if self.pool is None:
            self.pool = await self.settings.create_pool()

    async def acquire(self) -> Any:
        self._users += 1  # counted while the pool is being made: a cancelled acquire gives it back
        try:
            await self._open()
        except BaseException:
            await self.release()
            raise
        return self.pool

    async def release(self) -> None:
        self._users -= 1
        if self._users > 0:
            return
        await self._open.stop()  # a pool still being made for nobody is abandoned (asyncpg closes it)
        if self.pool is None:
            return
        pool = self.pool
        await self.calls.settle(self.close_timeout)
        self.pool = None
        if not self.owned:
            return
        try:
            await asyncio.wait_for(pool.close(), self.close_timeout)
        except TimeoutError:
            pool.terminate()  # calls still running past the timeout fail; no connection is left behind
        except asyncio.CancelledError:
            pool.terminate()
            raise


class PGDomain(SqlSchema[PGRowCodec[Any]], DomainStore):
    """Base of the PostgreSQL domain stores: a use of a shared pool, a schema, and its tables."""

    store_name = "PG"
    history = ddl.MIGRATIONS

    def __init__(
        self,
        *,
        id: str | None = None,
        schema_name: str = "public",
        disable_init: bool = False,
        handle: PoolHandle | None = None,
        **options: Unpack[PGOptions],
    ) -> None:
        """A standalone domain store connects with ``options`` (see ``PGOptions``); a
        ``PostgresStore`` hands its domain stores its own pool ``handle`` instead."""
        super().__init__(disable_init=disable_init)
        self.id = id
        self.schema = check_schema_name(schema_name)
        self._handle = handle if handle is not None else PoolHandle(PGSettings(**options))
        self.calls = self._handle.calls
        self._pool: Any = None
        # Index names carry the schema, so two schemas in one database never collide.
        self.prefix = "" if self.schema == "public" else f"{self.schema}_"

    def object_name(self, name: str) -> str:
        """An index or constraint name in this store's schema (unique per schema, within 63 bytes)."""
        return object_name(self.prefix, name)

    def t(self, table: str) -> str:
        """A table name qualified by the store's schema."""
        return f'"{self.schema}".{table}'

    async def _attach(self) -> None:
        if self._pool is None:
            pool = await self._handle.acquire()
            if self._pool is None:
                self._pool = pool
            else:  # concurrent first calls each acquired: one use is kept, so close() releases the pool
                await self._handle.release()

    async def _initialize(self) -> None:
        await self._attach()
        await self._migrate(dry_run=False)

    @maintenance
    async def migrate(self, *, dry_run: bool = False) -> list[MigrationStep]:
        await self._attach()
        return await self._migrate(dry_run)

    async def _migrate(self, dry_run: bool) -> list[MigrationStep]:
        """Up to date, one query. Otherwise each migration is its own ``transaction()`` — the
        mechanism every write here uses: a cancel or failure rolls it back (or the connection is
        discarded), so a version is applied and recorded wholly or not at all."""
        args = (self.schema, self.prefix, self.domain, self.migrations)
        shared = self._handle.ledgers
        if shared is not None and shared.schema == self.schema:
            recorded = await shared.of(self.domain, self.run)
        else:
            recorded = await self.run(lambda conn: ddl.applied(conn, self.schema, self.domain))
        if recorded is not None and not pending(self.domain, self.migrations, recorded):
            return []
        if dry_run:
            return await self.run(lambda conn: ddl.plan(conn, *args, recorded or {}))
        steps: list[MigrationStep] = []
        while (step := await self.transaction(lambda conn: ddl.apply_next(conn, *args))) is not None:
            steps.append(step)
        return steps

    async def _applied(self) -> dict[int, str]:
        await self._attach()
        return await self.run(lambda conn: ddl.applied(conn, self.schema, self.domain)) or {}

    async def _ensure_ready(self) -> None:
        if self.disable_init:
            await self._attach()
        else:
            await super()._ensure_ready()

    async def run(self, work: Callable[[Any], Awaitable[T]], *, idempotent: bool = True) -> T:
        """Runs ``work(connection)`` on a pooled connection.

        A connection found dead — a restarted server, a terminated or idle-timed-out backend, a
        dropped socket — is terminated (never handed back to the pool) and the work runs again on
        a fresh one, with backoff. Work that is not ``idempotent`` is not run again once its COMMIT
        may have reached the server: that raises ``BackendError`` with status ``COMMIT_UNKNOWN``.
        Any other error (bad input included) is raised at once.
        """
        pool = self._pool  # held for the whole call: close() waits for it (see PoolHandle)
        if pool is None:
            raise ValidationError(f"{type(self).__name__} is closed or not initialized")
        for attempt in range(_RECONNECT_ATTEMPTS):
            if attempt:
                await asyncio.sleep(0.05 * 2 ** (attempt - 1))
            try:  # the attempt, written here: a coroutine of its own cost every call ~1 µs
                conn = await pool.acquire()
            except Exception as exc:
                if not is_connection_error(exc) or attempt == _RECONNECT_ATTEMPTS - 1:
                    raise
                continue
            try:
                return await work(conn)
            except CommitOutcomeUnknown as exc:
                discard(conn)
                cause = exc.__cause__ or exc
                if not idempotent:
                    raise BackendError(
                        f"the connection was lost after COMMIT was sent; the change may or may not be stored: {cause}",
                        status="COMMIT_UNKNOWN",
                    ) from cause
                if attempt == _RECONNECT_ATTEMPTS - 1:
                    raise cause from None
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                discard(conn)
                if attempt == _RECONNECT_ATTEMPTS - 1:
                    raise
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return await self.run(lambda conn: conn.fetch(sql, *args))

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.run(lambda conn: conn.execute(sql, *args))

    async def transaction(self, body: Callable[[Any], Awaitable[T]], *, idempotent: bool = True) -> T:
        """``body(connection)`` in one transaction; see ``run`` for what a lost connection does."""

        async def work(conn: Any) -> T:
            tx = conn.transaction()
            await tx.start()
            try:
                result = await body(conn)
            except BaseException:
                try:
                    await tx.rollback()
                except Exception:
                    discard(conn)  # a connection that cannot roll back is never reused
                raise
            try:
                await tx.commit()
            except Exception as exc:
                if is_connection_error(exc):
                    raise CommitOutcomeUnknown() from exc
                raise
            return result

        return await self.run(work, idempotent=idempotent)

    async def _export(self, kind: str, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        spec, codec, keys = self.record_kinds[kind], self.codec(kind), self.key_columns(kind)
        after = decode_cursor(cursor, len(spec.keys))
        args = [*(after or ()), limit]
        after_sql = f" WHERE ({keys}) > ({', '.join(f'${i}' for i in range(1, len(args)))})" if after else ""
        rows = await self.fetch(
            f"SELECT {codec.select} FROM {self.t(codec.table.name)}{after_sql} ORDER BY {keys} LIMIT ${len(args)}",
            *args,
        )
        records = codec.decode_all(rows)
        return records, key_cursor(spec, records, limit)

    async def _import(self, kind: str, records: list[Any]) -> None:
        codec = self.codec(kind)
        sql, args = json_insert(codec, self.t(codec.table.name), records)
        assign = ", ".join(f"{column} = EXCLUDED.{column}" for column in codec.columns.split(", "))
        await self.execute(f"{sql} ON CONFLICT ({self.key_columns(kind)}) DO UPDATE SET {assign}", *args)

    async def _count(self, kind: str) -> int:
        rows = await self.fetch(f"SELECT COUNT(*) FROM {self.t(self.codec(kind).table.name)}")
        return int(rows[0][0])

    def upserts(self, codec: PGRowCodec[Any], conflict: str) -> WriteGroups[Any, Any]:
        """Upserts of ``codec``'s records (``conflict``: the ``ON CONFLICT …`` clause), grouped when
        they arrive together (core/coalesce.py): one ``VALUES`` row alone, one ``json_insert`` for a
        group, its rows in key order (two groups in flight lock shared rows in the same order: no
        deadlock). The caller writes ``(key, record)`` pairs; a key is once per group."""
        table = self.t(codec.table.name)
        one = f"INSERT INTO {table} ({codec.columns}) VALUES ({codec.placeholders()}) {conflict}"

        async def write_one(record: Any) -> None:
            await self.execute(one, *codec.params(record))

        async def write_many(records: Sequence[Any]) -> None:
            sql, args = json_insert(codec, table, list(records))
            await self.execute(f"{sql} {conflict}", *args)

        return WriteGroups(write_one, write_many, ordered=True)

    async def paged(
        self, select: str, table: str, where: str, order: str, args: list[Any], win: Window, *, alias: str = "page"
    ) -> tuple[list[Any], int]:
        """One page of ``SELECT {select} FROM {table} AS {alias}{where} ORDER BY {order}`` and the
        total, in one statement (one round trip): the count joined LATERAL to the page, so an empty
        page still brings the total (as one row with a NULL record).

        The page's rows are picked first and their JSON built after: PostgreSQL rates a select list's
        ``row_to_json`` as cheap and builds it below a sort for every matching row (list workflow
        runs without table statistics: 200 snapshots rendered for a page of 20, 2.6 ms -> 0.5 ms)."""
        source = f"{table} AS {alias}{where}"
        count = f"SELECT COUNT(*) FROM {source}"
        extra: list[Any] = []
        if win.limit is None:
            page = f"SELECT {select} FROM {source} ORDER BY {order}"
        else:
            n = len(args)
            picked = f"SELECT {alias}.*, {alias}.ctid FROM {source} ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}"
            page = f"SELECT {select} FROM ({picked}) AS {alias} ORDER BY {order}"
            extra = [win.limit, win.offset]
        sql = f"SELECT c.total, p.* FROM ({count}) AS c(total) LEFT JOIN LATERAL ({page}) AS p ON true"
        values = [*args, *extra]
        # Concurrent callers of the same page share its statement (core/coalesce.py); each decodes its own.
        found = await self.shared_read(sql, values, lambda: self.fetch(sql, *values))
        # An empty page is the one row whose page columns are all NULL (the first is never NULL).
        return [row[1:] for row in found if row[1] is not None], int(found[0][0])

    async def close(self) -> None:
        await self._init_once.stop()
        if self._pool is not None:
            # Calls in flight finish on the pool first: a grouped write (core/coalesce.py) reaches
            # the pool a loop turn after its call was accepted.
            await self.calls.settle(self._handle.close_timeout)
            self._pool = None
            await self._handle.release()

    @operation
    async def dangerously_clear_all(self) -> None:
        names = ", ".join(self.t(table.name) for table in self.tables)
        await self.execute(f"TRUNCATE {names}")

    @operation
    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        """Deletes rows older than each configured age, in batches, for this store's domain."""
        results: list[PruneResult] = []
        for plan in retention_plan(self.domain, self.retention_tables, retention):
            table = self.t(plan.table)
            retention_index = Index(f"{plan.table}_{plan.key}_retention_idx", plan.table, f'"{plan.column}"')
            await self.execute(ddl.index_sql(self.schema, self.prefix, retention_index))
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
