"""Columns, row mapping and the base class of the ClickHouse domain stores."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from .._sql.schema import Table
from ..core.codec import dumps, loads, parse_duration
from ..core.lifecycle import DomainStore, maintenance, operation
from ..core.migrations import LEDGER_TABLE, MigrationStep, StatementMigration, pending
from ..core.retention import retention_plan
from ..core.transfer import decode_cursor, key_cursor
from ..errors import BackendError, ValidationError
from ..types import PruneResult
from .transport import Transport, transport_for

T = TypeVar("T", bound=msgspec.Struct)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_TYPES = {"text": "String", "uuid": "String", "jsonb": "String", "integer": "Int64", "bigint": "Int64",
          "float": "Float64", "boolean": "Bool", "timestamp": "DateTime64(3, 'UTC')"}  # fmt: skip


class CHCodec(Generic[T]):
    """The columns of a record in a ClickHouse table: JSON payloads as String, timestamps as
    DateTime64(3, 'UTC'), optional columns Nullable. Rows decode back into the record."""

    def __init__(self, record: type[T], table: Table, *, not_null: tuple[str, ...] = ()) -> None:
        self.record = record
        self.not_null = not_null
        self.table = table
        names = set(table.column_names)
        self.fields: list[tuple[str, str, str]] = []  # (attribute, wire name = column, kind)
        for info in msgspec.structs.fields(record):
            if info.encode_name in names:
                self.fields.append((info.name, info.encode_name, table.column(info.encode_name).type))
        self.columns = [wire for _, wire, _ in self.fields]
        self.column_of = {attr: wire for attr, wire, _ in self.fields}
        self.select = ", ".join(f"`{c}`" for c in self.columns)

    def column_sql(self) -> list[str]:
        out = []
        for _, wire, kind in self.fields:
            type_ = _TYPES[kind]
            if self.table.column(wire).nullable is not False and wire not in self.not_null:
                type_ = f"Nullable({type_})"
            out.append(f"`{wire}` {type_}")
        return out

    def column_data(self, records: Sequence[T]) -> list[list[Any]]:
        """The records as columns (one list per column), the form a columnar insert sends."""
        data = []
        for attr, _, kind in self.fields:
            values = [getattr(r, attr) for r in records]
            if kind == "jsonb":
                values = [dumps(v) if v is not None else None for v in values]
            data.append(values)
        return data

    def decode(self, names: Sequence[str], row: Sequence[Any]) -> T:
        kinds = {wire: kind for _, wire, kind in self.fields}
        data: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            kind = kinds.get(name)
            if value is not None and kind == "jsonb":
                value = loads(value)
            elif isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)  # chdb returns naive UTC datetimes
            data[name] = value
        try:
            return msgspec.convert(data, self.record)
        except msgspec.ValidationError as exc:
            raise BackendError(
                f"stored {self.table.name} row does not decode as {self.record.__name__}: {exc}"
            ) from exc


class ClickhouseDomain(DomainStore):
    """Base of the ClickHouse domain stores: a transport, a database, and this domain's tables."""

    store_name = "CLICKHOUSE"
    ttl_key: ClassVar[str] = ""  # the ``ttl`` option that applies to this domain's table
    table_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        url: str | None = None,
        id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        database: str = "default",
        ttl: Mapping[str, Any] | None = None,
        disable_init: bool = False,
        transport: Transport | None = None,
    ) -> None:
        super().__init__(disable_init=disable_init)
        if not isinstance(database, str) or not _IDENTIFIER.fullmatch(database):
            raise ValidationError(f"database must be an identifier, got {database!r}")
        self._owns_transport = transport is None
        if transport is None:
            if url is None:
                raise ValidationError(f"{type(self).__name__} needs a url")
            transport = transport_for(url, username, password)
        self.id = id
        self.database = database
        self.transport = transport
        self.ttl_seconds: int | None = None
        if ttl and self.ttl_key in ttl:
            try:
                self.ttl_seconds = int(parse_duration(ttl[self.ttl_key]).total_seconds())
            except (ValueError, TypeError, AttributeError) as exc:
                raise ValidationError(f"ttl[{self.ttl_key!r}]: {exc}") from exc
        self._opened = False

    def t(self, table: str) -> str:
        return f"`{self.database}`.`{table}`"

    def _keyed(self, kind: str) -> tuple[CHCodec[Any], str]:
        codec = self.record_codecs[kind]
        return codec, ", ".join(f"`{codec.column_of[key]}`" for key in self.record_kinds[kind].keys)

    async def _export(self, kind: str, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        spec = self.record_kinds[kind]
        (codec, keys), after = self._keyed(kind), decode_cursor(cursor, len(spec.keys))
        params = {f"k{i}": value for i, value in enumerate(after or ())}
        after_sql = f" WHERE ({keys}) > ({', '.join(f'{{{k}:String}}' for k in params)})" if after else ""
        names, rows = await self.query(
            f"SELECT {codec.select} FROM {self.t(codec.table.name)} FINAL{after_sql} ORDER BY {keys} LIMIT {limit}",
            **params,
        )
        records = [codec.decode(names, row) for row in rows]
        return records, key_cursor(spec, records, limit)

    async def _count(self, kind: str) -> int:
        _, rows = await self.query(f"SELECT count() FROM {self.t(self.record_codecs[kind].table.name)} FINAL")
        return int(rows[0][0])

    record_codecs: ClassVar[dict[str, CHCodec[Any]]] = {}  # record kind -> its table's codec

    def ddl(self) -> list[str]:
        """The domain's tables as this store configures them (its database, its TTL)."""
        return []

    @property
    def migrations(self) -> tuple[StatementMigration, ...]:
        """Version 1 creates the tables (``IF NOT EXISTS``: tables an earlier release made are adopted)."""
        return (StatementMigration(1, f"{self.domain} tables", tuple(self.ddl())),)

    @maintenance
    async def migrate(self, *, dry_run: bool = False) -> list[MigrationStep]:
        """ClickHouse has no transactions or locks: each migration is idempotent DDL and the ledger a
        ReplacingMergeTree, so processes migrating at once all succeed and record each version once."""
        await self._attach()
        return await self._migrate(dry_run)

    async def _applied(self) -> dict[int, str]:
        await self._attach()
        _, found = await self.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {name:String}",
            db=self.database,
            name=LEDGER_TABLE,
        )
        if not found[0][0]:
            return {}
        _, rows = await self.query(
            f"SELECT version, checksum FROM {self.t(LEDGER_TABLE)} FINAL WHERE domain = {{domain:String}}",
            domain=self.domain,
        )
        return {int(version): str(checksum) for version, checksum in rows}

    async def _migrate(self, dry_run: bool) -> list[MigrationStep]:
        ledger = self.t(LEDGER_TABLE)
        todo = pending(self.domain, self.migrations, await self._applied())
        if todo and not dry_run:
            await self.transport.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
            await self.transport.command(
                f"CREATE TABLE IF NOT EXISTS {ledger} (domain String, version UInt32, name String, checksum String, "
                "applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY (domain, version)"
            )
        for migration in todo if not dry_run else ():
            for statement in migration.statements:
                await self.transport.command(statement)
            row: list[list[Any]] = [
                [self.domain],
                [migration.version],
                [migration.name],
                [migration.checksum],
                [datetime.now(UTC)],
            ]
            await self.transport.insert(ledger, row, ["domain", "version", "name", "checksum", "applied_at"])
        return [MigrationStep(self.domain, m.version, m.name, m.statements, applied=not dry_run) for m in todo]

    async def _attach(self) -> None:
        if not self._opened:
            await self.transport.open()
            self._opened = True

    async def _initialize(self) -> None:
        await self._attach()
        await self._migrate(dry_run=False)

    async def _ensure_ready(self) -> None:
        if self.disable_init:
            await self._attach()
        else:
            await super()._ensure_ready()

    async def query(self, sql: str, **params: Any) -> tuple[list[str], list[Sequence[Any]]]:
        return await self.transport.query(sql, params)

    async def close(self) -> None:
        await self._init_once.stop()
        if self._opened:
            self._opened = False
            if self._owns_transport:
                await self.transport.close()

    @operation
    async def dangerously_clear_all(self) -> None:
        for name in self.table_names:
            await self.transport.command(f"TRUNCATE TABLE IF EXISTS {self.t(name)}")

    @operation
    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        """Deletes rows older than each configured age (a lightweight DELETE: ClickHouse applies it as
        one mutation, so no batches). Table TTLs (``ttl``) are the usual way to expire rows here."""
        results: list[PruneResult] = []
        for plan in retention_plan(self.domain, self.retention_tables, retention):
            where = f"`{plan.column}` < {{cutoff:DateTime64(3, 'UTC')}}"
            params = {"cutoff": plan.cutoff}
            _, rows = await self.query(f"SELECT count() FROM {self.t(plan.table)} WHERE {where}", **params)
            await self.transport.command(f"DELETE FROM {self.t(plan.table)} WHERE {where}", params)
            results.append(PruneResult(domain=self.domain, table=plan.key, deleted=int(rows[0][0]), done=True))
        return results
